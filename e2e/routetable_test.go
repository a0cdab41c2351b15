package e2e

import (
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestEnvoy_RouteTable sends every header a client could use to pick a
// cluster (the hint headers, with the name of an internal cluster, of the
// rate limit service's, of a destination the policy does not choose) on
// matched and unmatched paths, with a policy that writes no hint (one
// rewrite-only route) and one whose split writes another hint header. The
// configuration has those clusters, each on an upstream that answers with
// its name: none may answer. Only the route's destination (matched) or the
// default backend (unmatched) does.
func TestEnvoy_RouteTable(t *testing.T) {
	// The rate limit service's cluster stays HTTP/2 (gRPC), so a request
	// that reached it would fail there rather than be answered.
	var extra []string
	for _, name := range []string{"internal-admin", "ratelimit"} {
		extra = append(extra, upstreamFlag(t, name)...)
	}
	policies := []struct {
		name   string
		policy map[string]any
		// matched is the upstream of /products/1, whatever a client sends.
		matched string
	}{
		{name: "rewrite only", matched: "default-backend", policy: map[string]any{"routes": []any{map[string]any{
			"name":    "products",
			"match":   []any{map[string]any{"uri": map[string]any{"prefix": "/products"}}},
			"rewrite": map[string]any{"uri": "/"},
		}}}},
		{name: "split on x-pick", matched: "product-service", policy: map[string]any{"routes": []any{map[string]any{
			"name":  "products",
			"match": []any{map[string]any{"uri": map[string]any{"prefix": "/products"}}},
			"route": []any{
				map[string]any{"destination": map[string]any{"host": "product-service"}, "weight": 100},
				map[string]any{"destination": map[string]any{"host": "product-service-v2"}, "weight": 0},
			},
			"split": map[string]any{"hintHeader": "x-pick"},
		}}}},
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		for _, p := range policies {
			t.Run(p.name, func(t *testing.T) {
				gw := awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, p.policy, extra...)))
				probes := 0
				for _, header := range []string{"x-route-to", "x-pick", "x-wasmgate-destination"} {
					for _, value := range []string{"ratelimit", "internal-admin", "product-service-v2"} {
						for path, want := range map[string]string{"/products/1": p.matched, "/other": "default-backend"} {
							probes++
							r, err := gw.get(gw.client, path, map[string]string{header: value})
							if err != nil {
								t.Fatal(err)
							}
							if got := answeredBy(r); got != want {
								t.Errorf("GET %s with %s: %s answered by %s, want %s", path, header, value, got, want)
							}
						}
					}
				}
				t.Logf("%d probes", probes)
			})
		}
	})
}

// answeredBy names the upstream that answered r, or says what Envoy did.
func answeredBy(r *response) string {
	if r.Reply == nil {
		return fmt.Sprintf("no upstream (status %d: %.80q)", r.Status, r.Body)
	}
	return r.Reply.Service
}
