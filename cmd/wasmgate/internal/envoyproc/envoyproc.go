// Package envoyproc mirrors what Envoy's HTTP/1.1 codec and HTTP connection
// manager do to a request before the first HTTP filter (the plugin) sees it:
// the codec's refusals, header value trimming, the Host header as the
// authority, path normalization (normalize_path, merge_slashes,
// path_with_escaped_slashes_action) and the edge handling of x-envoy-*,
// x-forwarded-* and x-request-id (use_remote_address, xff_num_trusted_hops).
//
// Each step names the Envoy setting it mirrors; every behaviour was measured
// against Envoy 1.40 (the refusals with their status and response code
// details).
package envoyproc

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// EscapedSlashes is the HCM's path_with_escaped_slashes_action: what Envoy
// does with %2F and %5C in the path.
type EscapedSlashes string

const (
	KeepUnchanged       EscapedSlashes = "KEEP_UNCHANGED"
	RejectRequest       EscapedSlashes = "REJECT_REQUEST"
	UnescapeAndRedirect EscapedSlashes = "UNESCAPE_AND_REDIRECT"
	UnescapeAndForward  EscapedSlashes = "UNESCAPE_AND_FORWARD"
)

// Config is the request-side part of an HTTP connection manager.
type Config struct {
	NormalizePath     bool           // normalize_path
	MergeSlashes      bool           // merge_slashes
	EscapedSlashes    EscapedSlashes // path_with_escaped_slashes_action
	UseRemoteAddress  bool           // use_remote_address
	XFFNumTrustedHops int            // xff_num_trusted_hops
	GenerateRequestID bool           // generate_request_id (default true)
}

// Request is a request as a client wrote it on an HTTP/1.1 connection.
type Request struct {
	Method string
	// Target is the request target: origin form "/p?q", or absolute form
	// "http://host/p?q".
	Target string
	// Headers are the header lines in order, names as written; Host among
	// them.
	Headers [][2]string
	// Client is the TCP peer, "ip:port".
	Client string
}

// Reject is Envoy's answer to a request it refuses before any filter runs.
type Reject struct {
	Status int `json:"status"`
	// Details is Envoy's %RESPONSE_CODE_DETAILS%.
	Details string `json:"details"`
	// Location is set on a redirect (UNESCAPE_AND_REDIRECT).
	Location string `json:"location,omitempty"`
}

// Result is the request as the first HTTP filter sees it.
type Result struct {
	Method, Path, Authority string
	// Headers are the regular headers, names lower-case, in Envoy's order.
	Headers [][2]string
	// Source is the downstream address Envoy reports (source.address).
	Source string
	// Set are the headers Envoy set or appended, Removed the names it
	// removed; Generated names those in Set whose value Envoy makes up
	// (x-request-id; x-forwarded-for behind a loopback peer, which gets
	// Envoy's own address).
	Set       [][2]string
	Removed   []string
	Generated []string
	// Reject is non-nil when Envoy answers the request itself.
	Reject *Reject
}

// Details Envoy reports for the refusals below (%RESPONSE_CODE_DETAILS%).
const (
	DetailCodecError        = "http1.codec_error"
	DetailInvalidURL        = "http1.invalid_url"
	DetailInvalidCharacters = "http1.invalid_characters"
	DetailHTTPSOnPlaintext  = "http1.https_url_on_plaintext_connection"
	DetailMissingHost       = "missing_host_header"
	DetailPathNormalization = "path_normalization_failed"
)

// Process applies the codec and the connection manager to r. requestID is
// the x-request-id Envoy would generate (deterministic in the simulator).
func (c Config) Process(r Request, requestID string) Result {
	var res Result
	reject := func(status int, details string) Result {
		return Result{Reject: &Reject{Status: status, Details: details}}
	}
	// Codec (http1), in the order Envoy reports faults: a control byte in
	// a header value (values lose leading and trailing spaces and tabs, RFC
	// 9110 OWS); a space, control or non-ASCII byte in the target; a header
	// name that is not a token; a method the parser does not know
	// (lower case included); a target that is neither "/…" nor absolute.
	var hosts []string
	for _, h := range r.Headers {
		v := strings.Trim(h[1], " \t")
		for i := 0; i < len(v); i++ {
			if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
				return reject(400, DetailInvalidCharacters)
			}
		}
		name := strings.ToLower(h[0])
		if name == "host" {
			hosts = append(hosts, v)
			continue
		}
		res.Headers = append(res.Headers, [2]string{name, v})
	}
	for i := 0; i < len(r.Target); i++ {
		if b := r.Target[i]; b <= ' ' || b >= 0x7f {
			return reject(400, DetailCodecError)
		}
	}
	for _, h := range r.Headers {
		if !isToken(h[0]) {
			return reject(400, DetailCodecError)
		}
	}
	if !knownMethods[r.Method] {
		return reject(400, DetailCodecError)
	}
	path, authority, hasAuthority := r.Target, "", false
	switch {
	case r.Target == "*":
		return reject(400, DetailInvalidURL)
	case strings.HasPrefix(r.Target, "https://"):
		// The connection is plain HTTP (Envoy: 403).
		return reject(403, DetailHTTPSOnPlaintext)
	case strings.HasPrefix(r.Target, "http://"):
		rest := r.Target[len("http://"):]
		i := strings.IndexAny(rest, "/?")
		if i < 0 || rest[i] != '/' {
			return reject(400, DetailInvalidURL)
		}
		authority, path, hasAuthority = rest[:i], rest[i:], true
	case !strings.HasPrefix(r.Target, "/"):
		return reject(400, DetailCodecError)
	}
	// HTTP/1.1: the Host header is the authority (repeated lines joined
	// with ","); the absolute form's host wins over it.
	if !hasAuthority {
		if len(hosts) == 0 {
			return reject(400, DetailMissingHost)
		}
		authority = strings.Join(hosts, ",")
	}
	res.Method, res.Authority = r.Method, authority
	p, rej := c.normalize(path)
	if rej != nil {
		return Result{Reject: rej}
	}
	res.Path = p
	c.sanitize(&res, r.Client, requestID)
	return res
}

// normalize applies the connection manager's path steps in Envoy's order:
// the fragment refusal, path_with_escaped_slashes_action, normalize_path,
// merge_slashes. The query string is left as it is.
func (c Config) normalize(target string) (string, *Reject) {
	if strings.Contains(target, "#") {
		// Envoy refuses a fragment whatever the settings
		// (envoy.reloadable_features.http_reject_path_with_fragment).
		return "", &Reject{Status: 400, Details: DetailPathNormalization}
	}
	path, query, hasQuery := strings.Cut(target, "?")
	unescaped := false
	if hasEscapedSlash(path) {
		switch c.EscapedSlashes {
		case RejectRequest:
			return "", &Reject{Status: 400, Details: DetailPathNormalization}
		case UnescapeAndRedirect, UnescapeAndForward:
			path, unescaped = unescapeSlashes(path), true
		}
	}
	if c.NormalizePath {
		var ok bool
		if path, ok = CanonicalPath(path); !ok {
			return "", &Reject{Status: 400, Details: DetailPathNormalization}
		}
	}
	if c.MergeSlashes {
		path = MergeSlashes(path)
	}
	if hasQuery {
		path += "?" + query
	}
	if unescaped && c.EscapedSlashes == UnescapeAndRedirect {
		return "", &Reject{Status: 307, Details: DetailPathNormalization, Location: path}
	}
	return path, nil
}

func hasEscapedSlash(path string) bool {
	l := strings.ToLower(path)
	return strings.Contains(l, "%2f") || strings.Contains(l, "%5c")
}

// unescapeSlashes decodes %2F to "/" and %5C to "\" (either case).
func unescapeSlashes(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && i+2 < len(path) {
			switch strings.ToLower(path[i+1 : i+3]) {
			case "2f":
				b.WriteByte('/')
				i += 2
				continue
			case "5c":
				b.WriteByte('\\')
				i += 2
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

// CanonicalPath is normalize_path: Envoy's URL canonicalizer (Chromium's)
// on the path. "\" becomes "/"; %XX of an unreserved character (RFC 3986:
// ALPHA DIGIT - . _ ~) is decoded, other %XX and malformed escapes are kept
// as written; " < > ^ ` { | } are percent-encoded; then the dot segments
// "." and ".." (also spelled %2e) are removed as RFC 3986 5.2.4 says. It
// fails (Envoy answers 400 path_normalization_failed) on an escaped NUL.
func CanonicalPath(path string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		ch := path[i]
		switch {
		case ch == '\\':
			b.WriteByte('/')
		case ch == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]):
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			switch {
			case v == 0:
				return "", false
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				b.WriteString(path[i : i+3])
			}
			i += 2
		case strings.IndexByte("\"<>^`{|}", ch) >= 0:
			fmt.Fprintf(&b, "%%%02X", ch)
		default:
			b.WriteByte(ch)
		}
	}
	return removeDotSegments(b.String()), true
}

// removeDotSegments drops "." segments and a ".." with the segment before
// it (never above the root); a path ending in one ends in "/".
func removeDotSegments(path string) string {
	segs := strings.Split(path[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}

// MergeSlashes is merge_slashes as Envoy does it: a path holding "//"
// becomes its non-empty segments joined by "/", with the leading and the
// trailing "/" it had; so "//" (and "///") stays "//".
func MergeSlashes(path string) string {
	if !strings.Contains(path, "//") {
		return path
	}
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	out := strings.Join(segs, "/")
	if strings.HasPrefix(path, "/") {
		out = "/" + out
	}
	if strings.HasSuffix(path, "/") {
		out += "/"
	}
	return out
}

// Headers the connection manager removes from every request: hop-by-hop
// headers (and those the Connection header names), and x-forwarded-client-cert
// on a connection without a client certificate (forward_client_cert_details
// SANITIZE).
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "x-forwarded-client-cert"}

// Headers removed from a request that is not internal. Envoy 1.40 treats no
// address as internal unless internal_address_config says so.
var externalRemoved = []string{
	"x-envoy-internal", "x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries",
	"x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-ms",
	"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response",
	"x-envoy-expected-rq-timeout-ms", "x-envoy-force-trace", "x-envoy-ip-tags",
	"x-envoy-original-url", "x-envoy-original-path", "x-envoy-hedge-on-per-try-timeout",
	"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
}

// Headers removed from an edge request (use_remote_address, not internal).
var edgeRemoved = []string{"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"}

// sanitize is the connection manager's header handling (Envoy's
// mutateRequestHeaders): cleaning, x-forwarded-for, x-forwarded-proto,
// x-envoy-external-address, x-request-id. Requests are never internal
// (Envoy 1.40's default internal_address_config).
func (c Config) sanitize(res *Result, client, requestID string) {
	peer, _, err := net.SplitHostPort(client)
	if err != nil {
		peer = client
	}
	remove := slices.Clone(hopByHop)
	for _, h := range res.Headers {
		if h[0] == "connection" {
			for _, n := range strings.Split(h[1], ",") {
				remove = append(remove, strings.ToLower(strings.TrimSpace(n)))
			}
		}
	}
	// TE keeps only "trailers" (RFC 9110 7.6.1): one line of it, or none.
	var te []string
	for _, h := range res.Headers {
		if h[0] == "te" {
			te = append(te, h[1])
		}
	}
	keepTE := false
	for _, t := range strings.Split(strings.Join(te, ","), ",") {
		keepTE = keepTE || strings.EqualFold(strings.TrimSpace(t), "trailers")
	}
	switch {
	case len(te) == 0, len(te) == 1 && strings.EqualFold(te[0], "trailers"):
	case keepTE:
		res.set("te", "trailers")
	default:
		remove = append(remove, "te")
	}
	remove = append(remove, externalRemoved...)
	edge := c.UseRemoteAddress
	if edge {
		remove = append(remove, edgeRemoved...)
	}
	res.removeAll(remove)

	xff := joined(res.Headers, "x-forwarded-for")
	source := peer
	if c.UseRemoteAddress {
		if c.XFFNumTrustedHops > 0 {
			if a := fromXFF(xff, c.XFFNumTrustedHops-1); a != "" {
				source = a
			}
		}
		appended := peer
		if ip := net.ParseIP(peer); ip != nil && ip.IsLoopback() {
			// Envoy appends its own address behind a loopback peer.
			res.Generated = append(res.Generated, "x-forwarded-for")
		}
		if xff != "" {
			appended = xff + "," + appended
		}
		res.set("x-forwarded-for", appended)
		res.set("x-forwarded-proto", "http")
	} else {
		if a := fromXFF(xff, c.XFFNumTrustedHops); a != "" {
			source = a
		}
		if _, ok := get(res.Headers, "x-forwarded-proto"); !ok {
			res.set("x-forwarded-proto", "http")
		}
	}
	if edge {
		res.set("x-envoy-external-address", source)
	}
	if _, ok := get(res.Headers, "x-request-id"); c.GenerateRequestID && (edge || !ok) {
		res.set("x-request-id", requestID)
		res.Generated = append(res.Generated, "x-request-id")
	}
	res.Source = net.JoinHostPort(source, "0")
	if source == peer {
		res.Source = client
	}
}

// fromXFF returns the address hops entries from the right of
// X-Forwarded-For, "" when there is none or it is not an IP.
func fromXFF(xff string, hops int) string {
	if xff == "" {
		return ""
	}
	parts := strings.Split(xff, ",")
	if hops >= len(parts) {
		return ""
	}
	a := strings.TrimSpace(parts[len(parts)-1-hops])
	if net.ParseIP(a) == nil {
		return ""
	}
	return a
}

func (res *Result) removeAll(names []string) {
	kept := res.Headers[:0]
	for _, h := range res.Headers {
		if slices.Contains(names, h[0]) {
			if !slices.Contains(res.Removed, h[0]) {
				res.Removed = append(res.Removed, h[0])
			}
			continue
		}
		kept = append(kept, h)
	}
	res.Headers = kept
}

// set replaces every line of name with one (at the first one's place), or
// appends it.
func (res *Result) set(name, value string) {
	res.Set = append(res.Set, [2]string{name, value})
	i := slices.IndexFunc(res.Headers, func(h [2]string) bool { return h[0] == name })
	if i < 0 {
		res.Headers = append(res.Headers, [2]string{name, value})
		return
	}
	res.Headers[i][1] = value
	rest := slices.DeleteFunc(res.Headers[i+1:], func(h [2]string) bool { return h[0] == name })
	res.Headers = res.Headers[:i+1+len(rest)]
}

func get(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// joined is the header's lines joined with "," (how Envoy reads a repeated
// X-Forwarded-For).
func joined(hs [][2]string, name string) string {
	var vs []string
	for _, h := range hs {
		if h[0] == name {
			vs = append(vs, h[1])
		}
	}
	return strings.Join(vs, ",")
}

// knownMethods are the methods Envoy's HTTP/1.1 parser accepts; any other
// spelling (lower case included) is a codec error.
var knownMethods = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE
		PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE
		NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE`) {
		knownMethods[m] = true
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
