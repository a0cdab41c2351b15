package policy

import "testing"

func TestRedirect_Location(t *testing.T) {
	tests := []struct {
		name     string
		redirect string
		req      Request
		want     string
	}{
		{name: "uri keeps the query", redirect: `{"uri": "/new"}`,
			req: Request{Scheme: "http", Authority: "shop.example.com", Path: "/old?x=1"}, want: "http://shop.example.com/new?x=1"},
		{name: "uri with its own query", redirect: `{"uri": "/new?y=2"}`,
			req: Request{Scheme: "http", Authority: "shop.example.com", Path: "/old?x=1"}, want: "http://shop.example.com/new?y=2"},
		{name: "authority keeps path and query", redirect: `{"authority": "other.example"}`,
			req: Request{Scheme: "https", Authority: "shop.example.com:8443", Path: "/a?b"}, want: "https://other.example/a?b"},
		{name: "https drops the old default port", redirect: `{"scheme": "https"}`,
			req: Request{Scheme: "http", Authority: "shop.example.com:80", Path: "/a"}, want: "https://shop.example.com/a"},
		{name: "https keeps another port", redirect: `{"scheme": "https"}`,
			req: Request{Scheme: "http", Authority: "shop.example.com:8080", Path: "/a"}, want: "https://shop.example.com:8080/a"},
		{name: "no scheme known is http", redirect: `{"uri": "/b"}`,
			req: Request{Authority: "shop", Path: "/a"}, want: "http://shop/b"},
		{name: "port replaces the request's", redirect: `{"scheme": "https", "port": 8443}`,
			req: Request{Scheme: "http", Authority: "shop.example.com:8080", Path: "/a"}, want: "https://shop.example.com:8443/a"},
		{name: "default port left out", redirect: `{"scheme": "https", "port": 443}`,
			req: Request{Scheme: "http", Authority: "shop.example.com:8080", Path: "/a"}, want: "https://shop.example.com/a"},
		{name: "port 80 of http left out", redirect: `{"port": 80}`,
			req: Request{Scheme: "http", Authority: "shop:8080", Path: "/a"}, want: "http://shop/a"},
		{name: "port from the request", redirect: `{"derivePort": "FROM_REQUEST_PORT", "uri": "/b"}`,
			req: Request{Scheme: "http", Authority: "shop", Port: 10000, Path: "/a"}, want: "http://shop:10000/b"},
		{name: "port from the protocol", redirect: `{"scheme": "https", "derivePort": "FROM_PROTOCOL_DEFAULT"}`,
			req: Request{Scheme: "http", Authority: "shop:8080", Path: "/a"}, want: "https://shop/a"},
		{name: "IPv6 literal", redirect: `{"port": 9000}`,
			req: Request{Scheme: "http", Authority: "[::1]:8080", Path: "/a"}, want: "http://[::1]:9000/a"},
		{name: "IPv6 literal without port", redirect: `{"scheme": "https"}`,
			req: Request{Scheme: "http", Authority: "[::1]", Path: "/a"}, want: "https://[::1]/a"},
		{name: "everything fixed", redirect: `{"scheme": "https", "authority": "b.example", "port": 8443, "uri": "/x?y"}`,
			req: Request{Scheme: "http", Authority: "a", Path: "/a?z"}, want: "https://b.example:8443/x?y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"name": "moved", "redirect": `+tc.redirect+`}]}`)
			var plan Plan
			p.Decide(&tc.req, newTestEnv(), &plan)
			r := plan.Reply
			if r == nil || r.Status != 301 || r.Details != RedirectDetails || len(r.Headers) != 1 || r.Headers[0][0] != "location" {
				t.Fatalf("reply = %+v; want a 301 with a location", r)
			}
			if got := r.Headers[0][1]; got != tc.want {
				t.Fatalf("location = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRedirect_Plan(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "moved", "match": [{"uri": {"prefix": "/old"}}],
	  "headers": {"request": {"set": {"x-a": "1"}}, "response": {"set": {"x-served-by": "gw"}, "remove": ["server"]}},
	  "redirect": {"uri": "/new", "redirectCode": 308}}]}`)
	req := &Request{Scheme: "https", Authority: "shop", Path: "/old/1?q"}
	var plan Plan
	p.Decide(req, newTestEnv(), &plan)
	r := plan.Reply
	if r == nil || r.Status != 308 || r.Body != "" {
		t.Fatalf("reply = %+v; want 308 without body", r)
	}
	want := [][2]string{{"location", "https://shop/new?q"}, {"x-served-by", "gw"}}
	if len(r.Headers) != len(want) || r.Headers[0] != want[0] || r.Headers[1] != want[1] {
		t.Fatalf("headers = %v; want %v (the route's response headers apply to the redirect)", r.Headers, want)
	}
	if got := counterNames(p, &plan); len(got) != 2 || got[1] != "route.moved.redirected" {
		t.Fatalf("counters = %v; want matched, redirected", got)
	}
	if line := plan.Describe(req); line != `request "/old/1?q" route=moved redirect="https://shop/new?q"` {
		t.Fatalf("Describe = %s", line)
	}
	if !p.UsesScheme() || p.UsesPort() {
		t.Fatalf("UsesScheme, UsesPort = %v, %v; want true, false", p.UsesScheme(), p.UsesPort())
	}
	fixed := mustParse(t, `{"routes": [{"redirect": {"scheme": "https", "authority": "b", "uri": "/?x"}},
	  {"redirect": {"derivePort": "FROM_REQUEST_PORT"}}]}`)
	if !fixed.UsesPort() {
		t.Fatal("UsesPort = false; want true for FROM_REQUEST_PORT")
	}
}

// TestRedirect_Allocs: a Location fixed by the policy costs nothing; one
// built from the request costs its one string.
func TestRedirect_Allocs(t *testing.T) {
	req := &Request{Scheme: "http", Authority: "shop", Path: "/a?q"}
	for _, tc := range []struct {
		name     string
		redirect string
		want     float64
	}{
		{name: "fixed", redirect: `{"scheme": "https", "authority": "b", "uri": "/?x"}`, want: 0},
		{name: "from the request", redirect: `{"scheme": "https"}`, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"redirect": `+tc.redirect+`}]}`)
			env := newTestEnv()
			var plan Plan
			if allocs := testing.AllocsPerRun(1000, func() { p.Decide(req, env, &plan) }); allocs != tc.want {
				t.Fatalf("allocs per request = %v, want %v", allocs, tc.want)
			}
		})
	}
}
