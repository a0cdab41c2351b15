package filter

import (
	"strings"
	"testing"
)

// hostilePolicy uses every request-derived input: templates from request
// headers and the client address, regex and prefix rewrites, sticky and keyed
// rate limits.
const hostilePolicy = `{"routes": [
  {"name": "legacy", "match": [{"uri": {"regex": "/legacy/([0-9]+)"}}],
   "rewrite": {"uriRegexRewrite": {"match": "^/legacy/([0-9]+)$", "rewrite": "/items/\\1"}}},
  {"name": "all",
   "rewrite": {"uri": "/x"},
   "headers": {"request": {"set": {"x-echo": "u=%REQ(x-user-id)%", "x-ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}},
               "response": {"set": {"x-echo-back": "%REQ(x-user-id)%"}}},
   "route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "b"}, "weight": 1}],
   "split": {"stickyBy": {"header": "x-user-id"}, "overrideHeader": "x-canary"},
   "rateLimit": {"tokenBucket": {"maxTokens": 1000000, "fillInterval": "1s"},
                 "key": {"header": "x-api-key"}, "maxKeys": 100000}}
]}`

// TestWorkers_HostileRequests sends malformed and hostile requests through
// each module: the VM must survive every one, never forward CR or LF from a
// request into a header it writes, and then serve a normal request.
func TestWorkers_HostileRequests(t *testing.T) {
	long := strings.Repeat("a", 64<<10)
	manyHeaders := request("/p")
	for i := range 500 {
		manyHeaders = append(manyHeaders, [2]string{"x-h" + strings.Repeat("x", i%7), long[:i]})
	}
	tests := []struct {
		name    string
		headers [][2]string
	}{
		{name: "no pseudo-headers", headers: [][2]string{{"x-user-id", "u"}}},
		{name: "empty path", headers: request("")},
		{name: "path without slash", headers: request("products?x")},
		{name: "asterisk path", headers: request("*")},
		{name: "only a query", headers: request("?a=b")},
		{name: "invalid UTF-8 path", headers: request("/legacy/\xff\xfe?\x00")},
		{name: "64 KiB path", headers: request("/legacy/" + long)},
		{name: "64 KiB sticky and limit keys", headers: request("/p", [2]string{"x-user-id", long}, [2]string{"x-api-key", long})},
		{name: "CR LF in a templated header", headers: request("/p", [2]string{"x-user-id", "u\r\nx-injected: 1"})},
		{name: "NUL in a templated header", headers: request("/p", [2]string{"x-user-id", "u\x00v"})},
		{name: "override naming no destination", headers: request("/p", [2]string{"x-canary", "../../etc"})},
		{name: "500 headers", headers: manyHeaders},
		{name: "repeated pseudo-headers", headers: append(request("/a"), [2]string{":path", "/b"}, [2]string{":authority", "c:99999999"})},
	}
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			vm := w.worker(t, hostilePolicy)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := serve(t, vm, tt.headers) // fails the test if the VM traps
					for _, hs := range [][][2]string{s.Request(), s.Response()} {
						for _, h := range hs {
							if strings.ContainsAny(h[1], "\r\n") && !strings.ContainsAny(valueIn(tt.headers, h[0]), "\r\n") {
								t.Errorf("the plugin wrote %s: %q", h[0], h[1])
							}
						}
					}
				})
			}
			s := serve(t, vm, request("/p", [2]string{"x-user-id", "u\r\nx-injected: 1"}))
			if got, ok := s.Request().Get("x-echo"); ok {
				t.Errorf("x-echo = %q from a CR LF value; want it dropped", got)
			}
			s = serve(t, vm, request("/p", [2]string{"x-user-id", "alice"}))
			if got, _ := s.Request().Get("x-echo"); got != "u=alice" {
				t.Errorf("after the hostile requests: x-echo = %q, want u=alice", got)
			}
			// Request headers are gone once the response passes (as in
			// Envoy), so the plugin renders response values early.
			if got, _ := s.Response().Get("x-echo-back"); got != "alice" {
				t.Errorf("response x-echo-back = %q, want alice", got)
			}
			s = serve(t, vm, request("/legacy/42", [2]string{"x-user-id", "alice"}))
			if got, _ := s.Request().Get(":path"); got != "/items/42" {
				t.Errorf("after the hostile requests: :path = %q, want /items/42", got)
			}
		})
	}
}

// valueIn is the value of name in the request the test sent.
func valueIn(hs [][2]string, name string) string {
	v, _ := header(hs, name)
	return v
}
