package policy

import "testing"

func TestRoute_Match(t *testing.T) {
	p := mustParse(t, `{"routes": [
	  {"name": "exact", "match": [{"uri": {"exact": "/exact"}}]},
	  {"name": "seg", "match": [{"uri": {"pathPrefix": "/seg/"}}]},
	  {"name": "plain", "match": [{"uri": {"prefix": "/plain"}}]},
	  {"name": "regex", "match": [{"uri": {"regex": "/re/[0-9]+"}}]},
	  {"name": "nocase", "match": [{"uri": {"prefix": "/Case"}, "ignoreUriCase": true}]},
	  {"name": "method", "match": [{"uri": {"prefix": "/m"}, "method": {"exact": "POST"}}]},
	  {"name": "host", "match": [{"authority": {"exact": "api.example.com"}}]},
	  {"name": "wild", "match": [{"authority": {"exact": "*.example.org"}}]},
	  {"name": "hdr", "match": [{"headers": {"X-Env": {"exact": "prod"}}}]},
	  {"name": "hdrpresent", "match": [{"headers": {"x-flag": {"present": true}}}]},
	  {"name": "query", "match": [{"queryParams": {"debug": {"present": true}, "v": {"regex": "[0-9]"}}}]},
	  {"name": "either", "match": [{"uri": {"exact": "/a"}}, {"uri": {"exact": "/b"}}]},
	  {"name": "without", "match": [{"uri": {"prefix": "/w"}, "withoutHeaders": {"x-block": {"present": true}}}]},
	  {"name": "fallback"}
	]}`)
	tests := []struct {
		name      string
		method    string
		path      string
		authority string
		headers   headerMap
		want      string
	}{
		{name: "exact", path: "/exact", want: "exact"},
		{name: "exact ignores query", path: "/exact?x=1", want: "exact"},
		{name: "exact is not prefix", path: "/exact/1", want: "fallback"},
		{name: "path prefix itself", path: "/seg", want: "seg"},
		{name: "path prefix segment", path: "/seg/1", want: "seg"},
		{name: "path prefix not partial segment", path: "/segX", want: "fallback"},
		{name: "plain prefix is partial", path: "/plainX", want: "plain"},
		{name: "regex whole path", path: "/re/42", want: "regex"},
		{name: "regex anchored", path: "/re/42/x", want: "fallback"},
		{name: "ignore case", path: "/cASE/x", want: "nocase"},
		{name: "method match", method: "POST", path: "/m", want: "method"},
		{name: "method mismatch", method: "GET", path: "/m", want: "fallback"},
		{name: "authority ignores port and case", path: "/", authority: "API.example.com:8443", want: "host"},
		{name: "authority wildcard", path: "/", authority: "a.b.example.org", want: "wild"},
		{name: "authority wildcard needs a label", path: "/", authority: "example.org", want: "fallback"},
		{name: "header names are case-insensitive", path: "/", headers: headerMap{"x-env": "prod"}, want: "hdr"},
		{name: "header value mismatch", path: "/", headers: headerMap{"x-env": "dev"}, want: "fallback"},
		{name: "header present", path: "/", headers: headerMap{"x-flag": ""}, want: "hdrpresent"},
		{name: "query params all hold", path: "/q?debug&v=1", want: "query"},
		{name: "query param missing", path: "/q?v=1", want: "fallback"},
		{name: "second block", path: "/b", want: "either"},
		{name: "without header absent", path: "/w", want: "without"},
		{name: "without header present", path: "/w", headers: headerMap{"x-block": "1"}, want: "fallback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Method: tc.method, Path: tc.path, Authority: tc.authority, Headers: tc.headers}
			var d Decision
			p.Choose(req, 0, &d)
			if d.Route == nil || d.Route.Name != tc.want {
				t.Fatalf("route = %v, want %q", d.Route, tc.want)
			}
		})
	}
}

func TestPolicy_Decide_NoMatch(t *testing.T) {
	p := mustParse(t, `{"routes": [{"match": [{"uri": {"exact": "/x"}}], "rewrite": {"uri": "/y"}}]}`)
	d := Decision{Path: "/stale", LimitKey: 7}
	p.Choose(&Request{Path: "/z"}, 0, &d)
	if d != (Decision{}) {
		t.Fatalf("Decision = %+v, want zero", d)
	}
}

func TestStripPort(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "host:port", in: "a.example:80", want: "a.example"},
		{name: "host", in: "a.example", want: "a.example"},
		{name: "ipv6 with port", in: "[::1]:80", want: "[::1]"},
		{name: "bare ipv6", in: "::1", want: "::1"},
		{name: "empty", in: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stripPort(tc.in); got != tc.want {
				t.Fatalf("stripPort(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMatch_SchemeAndPort(t *testing.T) {
	p := mustParse(t, `{"routes": [
	  {"name": "tls-api", "match": [{"scheme": {"exact": "https"}, "port": 8443}]},
	  {"name": "plain", "match": [{"scheme": {"exact": "http"}}]},
	  {"name": "admin-port", "match": [{"port": 9000}]}]}`)
	if !p.UsesScheme() || !p.UsesPort() {
		t.Fatalf("UsesScheme, UsesPort = %v, %v; want both", p.UsesScheme(), p.UsesPort())
	}
	tests := []struct {
		name   string
		scheme string
		port   uint32
		want   string
	}{
		{name: "both hold", scheme: "https", port: 8443, want: "tls-api"},
		{name: "scheme is case-sensitive", scheme: "HTTPS", port: 9000, want: "admin-port"},
		{name: "other port", scheme: "https", port: 443, want: "-"},
		{name: "plain", scheme: "http", port: 8443, want: "plain"},
		{name: "port alone", scheme: "", port: 9000, want: "admin-port"},
		{name: "port unknown", scheme: "", port: 0, want: "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			p.Choose(&Request{Path: "/", Scheme: tc.scheme, Port: tc.port}, 0, &d)
			got := "-"
			if d.Route != nil {
				got = d.Route.Name
			}
			if got != tc.want {
				t.Fatalf("route = %s, want %s", got, tc.want)
			}
		})
	}
	plain := mustParse(t, `{"routes": [{"match": [{"uri": {"prefix": "/"}}]}]}`)
	if plain.UsesScheme() || plain.UsesPort() {
		t.Fatal("a policy without scheme or port conditions reads them")
	}
}
