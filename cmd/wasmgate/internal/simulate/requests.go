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
	Method    string
	Path      string // with the query string
	Authority string
	// Headers are the regular request headers, names lower-case, in order.
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

// jsonLine is the JSON-lines form of a request.
type jsonLine struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Authority string            `json:"authority"`
	Headers   map[string]string `json:"headers"`
	Client    string            `json:"client"`
	At        string            `json:"at"`
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
// "method" defaults to GET, "authority" to "localhost", "client" to
// DefaultClient, "at" (a Go duration since the first request) to the
// previous request's. Blank lines and lines starting with # are skipped.
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
		var l jsonLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		if l.At != "" {
			d, err := time.ParseDuration(l.At)
			if err != nil || d < at {
				return nil, fmt.Errorf("%s: at: %q is not a duration at or after the previous request's (%s)", where, l.At, at)
			}
			at = d
		}
		if !strings.HasPrefix(l.Path, "/") {
			return nil, fmt.Errorf("%s: path: %q must start with \"/\"", where, l.Path)
		}
		r := Request{Method: l.Method, Path: l.Path, Authority: l.Authority, Client: l.Client, At: at, Line: where}
		for _, k := range sortedKeys(l.Headers) {
			r.Headers = append(r.Headers, [2]string{strings.ToLower(k), l.Headers[k]})
		}
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
		r := Request{Method: e.Request.Method, Path: u.RequestURI(), Authority: u.Host, At: at, Line: where}
		for _, hd := range e.Request.Headers {
			name := strings.ToLower(hd.Name)
			switch {
			case name == ":authority":
				r.Authority = hd.Value
			case strings.HasPrefix(name, ":"), name == "host":
				// pseudo-headers and Host are carried by the fields above
			default:
				r.Headers = append(r.Headers, [2]string{name, hd.Value})
			}
		}
		out = append(out, withDefaults(r))
	}
	return out, nil
}

func withDefaults(r Request) Request {
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Authority == "" {
		r.Authority = "localhost"
	}
	if r.Client == "" {
		r.Client = DefaultClient
	}
	return r
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
