package simulate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Request is one recorded request to replay.
type Request struct {
	Method string
	// Path is the request target as the client wrote it: path and query.
	Path string
	// Authority is the Host header, written before Headers; "" when Headers
	// hold the Host lines themselves.
	Authority string
	// Headers are the header lines in order, names as written; a name may
	// repeat.
	Headers [][2]string
	// Client is the downstream address, "ip:port".
	Client string
	// At is the request's time since the first request; it drives the
	// plugin's clock, so rate limits replay exactly.
	At time.Duration
	// Line locates the request in its file, for messages.
	Line string
}

// DefaultClient is the client address of a request that names none.
const DefaultClient = "127.0.0.1:40000"

// jsonLine is the JSON-lines form of a request; headers are read apart.
type jsonLine struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Authority string `json:"authority"`
	Client    string `json:"client"`
	At        string `json:"at"`
}

// har is the part of an HTTP Archive (HAR 1.2) that describes requests.
type har struct {
	Log *struct {
		Entries []struct {
			StartedDateTime time.Time `json:"startedDateTime"`
			Request         struct {
				Method  string `json:"method"`
				URL     string `json:"url"`
				Headers []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"headers"`
			} `json:"request"`
		} `json:"entries"`
	} `json:"log"`
}

// ReadRequests reads requests from JSON lines or from a HAR file, told apart
// by the HAR's top-level "log" object.
//
// A JSON line is an object: {"method": "GET", "path": "/a?b=1",
// "authority": "shop.example", "headers": {"x-user-id": "7"},
// "client": "10.0.0.1:5555", "at": "1.5s"}. Only "path" is required;
// "method" defaults to GET, "authority" to "localhost" (unless headers hold
// a Host line), "client" to DefaultClient, "at" (a Go duration since the
// first request) to the previous request's. "headers" is an object whose
// values are strings or lists of strings (one line each), or a list of
// [name, value] pairs; either way lines keep their order. A key written
// twice in an object is an error. Blank lines and lines starting with # are
// skipped.
//
// A HAR entry's time is its startedDateTime less the first entry's.
func ReadRequests(name string, data []byte) ([]Request, error) {
	var h har
	if err := json.Unmarshal(data, &h); err == nil && h.Log != nil {
		return harRequests(name, &h)
	}
	var out []Request
	var at time.Duration
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		r, err := readLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		if r.At >= 0 {
			if r.At < at {
				return nil, fmt.Errorf("%s: at: %s is before the previous request's (%s)", where, r.At, at)
			}
			at = r.At
		}
		r.At, r.Line = at, where
		out = append(out, withDefaults(r))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no requests", name)
	}
	return out, nil
}

func harRequests(name string, h *har) ([]Request, error) {
	if len(h.Log.Entries) == 0 {
		return nil, fmt.Errorf("%s: no requests in log.entries", name)
	}
	first := h.Log.Entries[0].StartedDateTime
	var out []Request
	var at time.Duration
	for i, e := range h.Log.Entries {
		where := fmt.Sprintf("%s: log.entries[%d]", name, i)
		u, err := url.Parse(e.Request.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%s.request.url: %q is not an absolute URL", where, e.Request.URL)
		}
		if d := e.StartedDateTime.Sub(first); d > at {
			at = d // entries a browser started in parallel may be out of order
		}
		r := Request{Method: e.Request.Method, Path: harTarget(e.Request.URL), Authority: u.Host, At: at, Line: where}
		for _, hd := range e.Request.Headers {
			name := strings.ToLower(hd.Name)
			switch {
			case name == ":authority":
				r.Authority = hd.Value
			case strings.HasPrefix(name, ":"), name == "host":
				// pseudo-headers and Host are carried by the fields above
			default:
				r.Headers = append(r.Headers, [2]string{hd.Name, hd.Value})
			}
		}
		out = append(out, withDefaults(r))
	}
	return out, nil
}

// harTarget is the request target of an absolute URL as written (url.URL
// would re-escape it), without the fragment a browser does not send.
func harTarget(rawURL string) string {
	rest := rawURL[strings.Index(rawURL, "://")+3:]
	rest, _, _ = strings.Cut(rest, "#")
	i := strings.IndexAny(rest, "/?")
	switch {
	case i < 0:
		return "/"
	case rest[i] == '?':
		return "/" + rest[i:]
	}
	return rest[i:]
}

func withDefaults(r Request) Request {
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Authority == "" && !slices.ContainsFunc(r.Headers, isHost) {
		r.Authority = "localhost"
	}
	if r.Client == "" {
		r.Client = DefaultClient
	}
	return r
}

func isHost(h [2]string) bool { return strings.EqualFold(h[0], "host") }

// member is one key of a JSON object, in file order.
type member struct {
	key   string
	value json.RawMessage
}

// objectMembers reads a JSON object keeping its keys' order, and fails on a
// key written twice (encoding/json would keep the last silently).
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		if slices.ContainsFunc(out, func(m member) bool { return m.key == key }) {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		out = append(out, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the object")
	}
	return out, nil
}

// readLine reads one JSON line; At is -1 when the line names no time.
func readLine(line []byte) (Request, error) {
	members, err := objectMembers(line)
	if err != nil {
		return Request{}, err
	}
	var l jsonLine
	var headers json.RawMessage
	rest := map[string]json.RawMessage{}
	for _, m := range members {
		if m.key == "headers" {
			headers = m.value
			continue
		}
		rest[m.key] = m.value
	}
	fields, _ := json.Marshal(rest)
	dec := json.NewDecoder(bytes.NewReader(fields))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Request{}, err
	}
	r := Request{Method: l.Method, Path: l.Path, Authority: l.Authority, Client: l.Client, At: -1}
	if l.At != "" {
		d, err := time.ParseDuration(l.At)
		if err != nil || d < 0 {
			return Request{}, fmt.Errorf("at: %q is not a duration since the first request", l.At)
		}
		r.At = d
	}
	if l.Path == "" {
		// Any other target is Envoy's to refuse or accept, as it would.
		return Request{}, fmt.Errorf("path: required")
	}
	if headers != nil && string(headers) != "null" {
		if r.Headers, err = readHeaders(headers); err != nil {
			return Request{}, fmt.Errorf("headers: %v", err)
		}
	}
	if r.Authority != "" && slices.ContainsFunc(r.Headers, isHost) {
		return Request{}, fmt.Errorf("authority and a host header: give one")
	}
	return r, nil
}

// readHeaders reads {"name": "value" | ["v1", "v2"]} or [["name", "value"]].
func readHeaders(data json.RawMessage) ([][2]string, error) {
	var out [][2]string
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		var pairs [][]string
		if err := json.Unmarshal(data, &pairs); err != nil {
			return nil, fmt.Errorf("want [name, value] pairs: %v", err)
		}
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("[%d]: want [name, value], got %d strings", i, len(p))
			}
			out = append(out, [2]string{p[0], p[1]})
		}
		return out, nil
	}
	members, err := objectMembers(data)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		var one string
		if err := json.Unmarshal(m.value, &one); err == nil {
			out = append(out, [2]string{m.key, one})
			continue
		}
		var many []string
		if err := json.Unmarshal(m.value, &many); err != nil {
			return nil, fmt.Errorf("%s: want a string or a list of strings", m.key)
		}
		for _, v := range many {
			out = append(out, [2]string{m.key, v})
		}
	}
	return out, nil
}
