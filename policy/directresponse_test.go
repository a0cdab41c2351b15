package policy

import "testing"

func TestDirectResponse_Plan(t *testing.T) {
	tests := []struct {
		name, direct, wantBody string
		wantStatus             uint32
	}{
		{name: "string", direct: `{"status": 503, "body": {"string": "unknown error"}}`, wantStatus: 503, wantBody: "unknown error"},
		{name: "bytes", direct: `{"status": 200, "body": {"bytes": "AAFoaQ=="}}`, wantStatus: 200, wantBody: "\x00\x01hi"},
		{name: "no body", direct: `{"status": 204}`, wantStatus: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"name": "fixed", "headers": {"response": {"add": {"x-a": "%ROUTE_NAME%"}}},
			  "directResponse": `+tc.direct+`}]}`)
			var plan Plan
			req := &Request{Path: "/x"}
			p.Decide(req, newTestEnv(), &plan)
			r := plan.Reply
			if r == nil || r.Status != tc.wantStatus || r.Body != tc.wantBody || r.Details != DirectResponseDetails {
				t.Fatalf("reply = %+v; want %d %q", r, tc.wantStatus, tc.wantBody)
			}
			if len(r.Headers) != 1 || r.Headers[0] != [2]string{"x-a", "fixed"} {
				t.Fatalf("headers = %v; want the route's response header", r.Headers)
			}
			if got := counterNames(p, &plan); len(got) != 2 || got[1] != "route.fixed.direct_response" {
				t.Fatalf("counters = %v", got)
			}
			if line := plan.Describe(req); line != `request "/x" route=fixed direct_response` {
				t.Fatalf("Describe = %s", line)
			}
		})
	}
}

func TestDirectResponse_Allocs(t *testing.T) {
	p := mustParse(t, `{"routes": [{"directResponse": {"status": 503, "body": {"string": "down"}}}]}`)
	req := &Request{Path: "/x"}
	env := newTestEnv()
	var plan Plan
	if allocs := testing.AllocsPerRun(1000, func() { p.Decide(req, env, &plan) }); allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
}

// TestLocalReply_AfterLocalLimit: a local reply is decided after the
// route's local limit, which still answers 429 first.
func TestLocalReply_AfterLocalLimit(t *testing.T) {
	p := mustParse(t, `{"routes": [{"rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1h"}},
	  "directResponse": {"status": 200}}]}`)
	env := newTestEnv()
	var plan Plan
	for i, want := range []uint32{200, 429} {
		p.Decide(&Request{Path: "/"}, env, &plan)
		if plan.Reply == nil || plan.Reply.Status != want {
			t.Fatalf("request %d: reply = %+v; want %d", i, plan.Reply, want)
		}
	}
}
