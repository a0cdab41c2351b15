package filter

import (
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/policy"
)

// TestFilter_RouteTableHeaders checks that a client cannot write a header a
// route table routes on, even under a policy whose routes write none, and
// that the plugin writes the policy's hintKey beside every hint.
func TestFilter_RouteTableHeaders(t *testing.T) {
	const rewriteOnly = `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}], "rewrite": {"uri": "/v2"}}]}`
	client := [][2]string{{"x-route-to", "ratelimit"}, {"x-wasmgate-destination", "admin"},
		{"x-wasmgate-route", "api"}, {"x-wasmgate-key", "guess"}}
	forEachLeg(t, rewriteOnly, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for _, path := range []string{"/api/x", "/other"} {
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request(path, client...), true)
			hs := host.GetCurrentRequestHeaders(id)
			for _, h := range client {
				mustAbsent(t, hs, h[0])
			}
			host.CompleteHttpContext(id)
		}
	})
	const key = "0123456789abcdef-key"
	keyed := `{"hintKey": "` + key + `", "routes": [{"match": [{"uri": {"prefix": "/s"}}],
	  "route": [{"destination": {"host": "a"}}], "split": {"hintHeader": "x-route-to"}}]}`
	forEachLeg(t, keyed, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/s", client...), true)
		hs := host.GetCurrentRequestHeaders(id)
		must(t, hs, "x-route-to", "a")
		must(t, hs, policy.KeyHeader, key)
		host.CompleteHttpContext(id)
		id = host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/other", client...), true)
		mustAbsent(t, host.GetCurrentRequestHeaders(id), policy.KeyHeader)
		host.CompleteHttpContext(id)
	})
}

// TestFilter_StickyCookieSecondLine checks that a sticky cookie sent in a
// second Cookie line picks as it does alone: the lines are joined with
// "; ", as Envoy joins HTTP/2 cookie crumbs.
func TestFilter_StickyCookieSecondLine(t *testing.T) {
	const sticky = `{"routes": [{"route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "b"}, "weight": 1}],
	  "split": {"hintHeader": "x-route-to", "stickyBy": {"cookie": "session"}}}]}`
	forEachLeg(t, sticky, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		pick := func(cookies ...string) string {
			id := host.InitializeHttpContext()
			defer host.CompleteHttpContext(id)
			hs := request("/")
			for _, c := range cookies {
				hs = append(hs, [2]string{"cookie", c})
			}
			host.CallOnRequestHeaders(id, hs, true)
			got, _ := header(host.GetCurrentRequestHeaders(id), "x-route-to")
			return got
		}
		for user := range 40 {
			c := fmt.Sprint("session=user-", user)
			if alone, second := pick(c), pick("theme=dark", c); alone != second {
				t.Fatalf("%s alone picks %q, in a second Cookie line %q", c, alone, second)
			}
		}
	})
}

// TestHeaderView_Allocs checks that reading headers, repeated ones
// included, allocates only to join a repeated header's values.
func TestHeaderView_Allocs(t *testing.T) {
	p, err := policy.Parse([]byte(`{"routes": [{"match": [{"headers": {"x-env": {"exact": "prod"}}}],
	  "headers": {"request": {"set": {"x-user": "%REQ(x-user)%"}}},
	  "route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "b"}, "weight": 1}],
	  "split": {"stickyBy": {"cookie": "session"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	v := headerView{pairs: [][2]string{{":path", "/"}, {"x-env", "prod"}, {"x-user", "alice"}, {"x-user", "bob"},
		{"cookie", "session=s1"}}, loaded: true}
	v.index()
	req := &policy.Request{Path: "/", Headers: &v}
	env := fixedEnv{}
	var plan policy.Plan
	p.Decide(req, env, &plan)
	if allocs := testing.AllocsPerRun(200, func() { p.Decide(req, env, &plan) }); allocs != 0 {
		t.Fatalf("Decide over a headerView: %v allocations, want 0", allocs)
	}
	if plan.Route == nil || len(plan.Request) == 0 {
		t.Fatalf("plan = %+v, want the route and its edits", plan)
	}
}

// fixedEnv is a policy.Env for policies without a rate limit.
type fixedEnv struct{}

func (fixedEnv) Now() int64                                   { return 0 }
func (fixedEnv) Random() uint64                               { return 1 }
func (fixedEnv) Buckets(*policy.RateLimit) policy.BucketStore { return nil }
