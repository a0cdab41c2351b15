package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testEnv is an Env with a fixed clock and one in-memory store per limit.
type testEnv struct {
	now    int64
	random uint64
	stores map[*RateLimit]*memStore
	nows   int // Now calls
}

func newTestEnv() *testEnv {
	return &testEnv{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), stores: map[*RateLimit]*memStore{}}
}

func (e *testEnv) Now() int64     { e.nows++; return e.now }
func (e *testEnv) Random() uint64 { return e.random }
func (e *testEnv) Buckets(rl *RateLimit) BucketStore {
	s, ok := e.stores[rl]
	if !ok {
		s = newMemStore()
		e.stores[rl] = s
	}
	return s
}

// counterNames returns the names of a plan's counters.
func counterNames(p *Policy, plan *Plan) []string {
	var names []string
	for _, c := range plan.Counters {
		names = append(names, strings.TrimPrefix(p.Counters()[c], MetricPrefix))
	}
	return names
}

func editList(edits []Edit) string {
	var b strings.Builder
	for _, e := range edits {
		switch e.Kind {
		case HeaderSet:
			fmt.Fprintf(&b, "set %s=%s; ", e.Name, e.Value)
		case HeaderAdd:
			fmt.Fprintf(&b, "add %s=%s; ", e.Name, e.Value)
		case HeaderRemove:
			fmt.Fprintf(&b, "remove %s; ", e.Name)
		}
	}
	return b.String()
}

func TestPolicy_Decide(t *testing.T) {
	const limited = `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}],
	  "headers": {"request": {"add": {"x-via": "gw"}}},
	  "route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "b"}, "weight": 1}],
	  "split": {"hintHeader": "x-route-to", "overrideHeader": "x-canary"},
	  "rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1m"}, "fieldsOnAllowed": true}}]}`
	tests := []struct {
		name         string
		policy       string
		req          Request
		requests     int // the plan of the last of this many (default 1)
		wantRequest  string
		wantResponse string
		wantCounters string
		wantReply    string // "status details headers body" of the reply, "" for none
		wantNows     int
	}{
		{
			name:   "seed request",
			policy: seedPolicy,
			req: Request{Path: "/products/123?x=1", Headers: headerMap{
				"x-user-id": "user-1", "x-internal-debug": "1", "x-route-to": "attacker"}},
			wantRequest: "remove x-route-to; set :path=/123?x=1; set x-envoy-original-path=/products/123?x=1; " +
				"remove x-internal-debug; set x-forwarded-proto=https; set x-route-to=product-service; ",
			wantResponse: "set x-served-by=product-service; ",
			wantCounters: "[route.products.matched route.products.rewritten route.products.destination.product-service.picked]",
			wantNows:     1,
		},
		{
			name:         "absent headers are not removed",
			policy:       seedPolicy,
			req:          Request{Path: "/products/1", Headers: headerMap{"x-canary": "product-service-v2"}},
			wantRequest:  "set :path=/1; set x-envoy-original-path=/products/1; set x-forwarded-proto=https; set x-route-to=product-service-v2; ",
			wantResponse: "set x-served-by=product-service-v2; ",
			wantCounters: "[route.products.matched route.products.rewritten route.products.destination.product-service-v2.picked]",
			wantNows:     1,
		},
		{
			name:         "unmatched: only the client's hint goes",
			policy:       seedPolicy,
			req:          Request{Path: "/orders", Headers: headerMap{"x-route-to": "product-service-v2"}},
			wantRequest:  "remove x-route-to; ",
			wantCounters: "[]",
		},
		{
			name:         "admitted with fields",
			policy:       limited,
			req:          Request{Path: "/api/x", Headers: headerMap{"x-canary": "b"}},
			wantRequest:  "add x-via=gw; set x-route-to=b; ",
			wantResponse: `set ratelimit="api";r=0;t=60; set ratelimit-policy="api";q=1;w=60; `,
			wantCounters: "[route.api.matched route.api.destination.b.picked]",
			wantNows:     1,
		},
		{
			name:         "denied: no pick counted, a reply",
			policy:       limited,
			req:          Request{Path: "/api/x", Headers: headerMap{"x-canary": "b"}},
			requests:     2,
			wantRequest:  "add x-via=gw; set x-route-to=b; ",
			wantCounters: "[route.api.matched route.api.rate_limited]",
			wantReply: `429 wasmgate_rate_limited [[retry-after 60] [ratelimit "api";r=0;t=60] ` +
				`[ratelimit-policy "api";q=1;w=60] [x-envoy-ratelimited true]] ""`,
			wantNows: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			env := newTestEnv()
			var plan Plan
			for range max(tc.requests, 1) {
				p.Decide(&tc.req, env, &plan)
			}
			if got := editList(plan.Request); got != tc.wantRequest {
				t.Errorf("request edits:\n got %s\nwant %s", got, tc.wantRequest)
			}
			if got := editList(plan.Response); got != tc.wantResponse {
				t.Errorf("response edits:\n got %s\nwant %s", got, tc.wantResponse)
			}
			if got := fmt.Sprint(counterNames(p, &plan)); got != tc.wantCounters {
				t.Errorf("counters = %s, want %s", got, tc.wantCounters)
			}
			var reply string
			if r := plan.Reply; r != nil {
				reply = fmt.Sprintf("%d %s %v %q", r.Status, r.Details, r.Headers, r.Body)
			}
			if reply != tc.wantReply {
				t.Errorf("reply = %s, want %s", reply, tc.wantReply)
			}
			if env.nows != tc.wantNows {
				t.Errorf("clock read %d times, want %d", env.nows, tc.wantNows)
			}
		})
	}
}

// TestPolicy_Decide_ReusedPlan checks that a plan reused after a denial
// carries nothing of it into the next request.
func TestPolicy_Decide_ReusedPlan(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1m"}}}]}`)
	env := newTestEnv()
	var plan Plan
	for range 2 {
		p.Decide(&Request{Path: "/api"}, env, &plan)
	}
	if plan.Reply == nil {
		t.Fatal("second request admitted from a bucket of 1")
	}
	p.Decide(&Request{Path: "/other"}, env, &plan)
	if plan.Reply != nil || plan.Route != nil || len(plan.Counters) != 0 || len(plan.Request) != 0 || plan.Limit.Checked {
		t.Fatalf("plan after an unmatched request = %+v, want empty", plan)
	}
}

// TestPolicy_Decide_Allocs asserts the seed policy's whole plan, the rate
// limit included, allocates nothing once the plan's slices have grown.
func TestPolicy_Decide_Allocs(t *testing.T) {
	p := mustParse(t, seedPolicy)
	req := &Request{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example.com",
		ClientAddress: "10.0.0.1:1234", Headers: headerMap{"x-user-id": "user-1", "x-internal-debug": "1"}}
	env := newTestEnv()
	env.Buckets(p.Routes()[0].RateLimit) // create the store outside the measurement
	var plan Plan
	p.Decide(req, env, &plan)
	allocs := testing.AllocsPerRun(1000, func() { p.Decide(req, env, &plan) })
	if allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
	if plan.Path != "/123?x=1" || !plan.Limit.Checked {
		t.Fatalf("plan = %+v, want the rewrite and a checked limit", plan)
	}
}

func BenchmarkPolicy_Decide(b *testing.B) {
	p := mustParse(b, seedPolicy)
	req := &Request{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example.com",
		Headers: headerMap{"x-user-id": "user-1", "x-internal-debug": "1"}}
	env := newTestEnv()
	var plan Plan
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(req, env, &plan)
	}
}

// TestRouteCounter checks that the exported counter names are the ones a
// policy defines, so tooling that builds them finds the policy's counters.
func TestRouteCounter(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "api", "route": [{"destination": {"host": "a.b"}}],
		"rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1s"}}}]}`)
	want := []string{
		RouteCounter("api", CounterMatched),
		RouteCounter("api", CounterRewritten),
		DestinationCounter("api", "a.b"),
		RouteCounter("api", CounterRateLimited),
		RouteCounter("api", CounterShadowLimited),
		RouteCounter("api", CounterContended),
	}
	if got := p.Counters(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Counters() = %q, want %q", got, want)
	}
	if got := DestinationCounter("api", "a.b"); got != "wasmgate.route.api.destination.a_b.picked" {
		t.Fatalf("DestinationCounter = %q", got)
	}
}
