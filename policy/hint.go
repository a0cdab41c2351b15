package policy

import "strings"

// The request headers a route table routes on, besides each split's
// hintHeader. The plugin removes a client-sent one from every request, so
// only the plugin writes them.
const (
	// ShippedHintHeader is the hint header of the shipped Envoy
	// configurations; it is removed even when no split writes it, so a route
	// table left routing on it cannot be steered by a client.
	ShippedHintHeader = "x-route-to"
	// KeyHeader carries the policy's hintKey beside every hint, so a route
	// table that requires it follows a hint only when the plugin wrote it.
	KeyHeader = "x-wasmgate-key"
)

// hintKeyPattern is what a hintKey may hold: a secret of at least 16
// characters that needs no quoting in a header or in YAML.
const hintKeyPattern = "^[A-Za-z0-9_-]{16,256}$"

// validHintKey reports whether key matches hintKeyPattern. The message
// of a refused key gives its length only: the key is a secret.
func validHintKey(key string) bool {
	if len(key) < 16 || len(key) > 256 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// HintKey returns the policy's "hintKey", "" when it has none.
func (p *Policy) HintKey() string { return p.hintKey }

// collectHintHeaders sets the headers Decide removes: every split's hint
// header in route order, then the fixed ones not among them.
func (p *Policy) collectHintHeaders() {
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			p.hintHeaders = append(p.hintHeaders, name)
		}
	}
	for _, r := range p.routes {
		if s := r.Split; s != nil {
			add(s.HintHeader)
			s.key = p.hintKey
		}
	}
	for _, name := range []string{ShippedHintHeader, DefaultHintHeader, RouteHeader, KeyHeader} {
		add(name)
	}
}

// FirstHeaderGetter is a HeaderGetter of headers that may repeat: where
// Header returns every value of a repeated header joined with "," (as
// Envoy's router matches it), FirstHeader returns the first value alone
// (as Envoy's %REQ()% and rate limit actions read it).
type FirstHeaderGetter interface {
	FirstHeader(name string) (value string, ok bool)
}

// firstHeader returns the first value of a request header: through
// FirstHeader when req.Headers has it, else Header.
func firstHeader(req *Request, name string) (string, bool) {
	if g, ok := req.Headers.(FirstHeaderGetter); ok {
		return g.FirstHeader(name)
	}
	return header(req, name)
}

// trimOWS removes the optional whitespace (spaces and tabs) HTTP allows
// around a header value.
func trimOWS(s string) string { return strings.Trim(s, " \t") }
