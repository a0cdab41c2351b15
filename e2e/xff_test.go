package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestEnvoy_ForgedForwardedFor checks that a client cannot forge its
// address with X-Forwarded-For through envoy.yaml (use_remote_address): with
// the canary pick and the rate limit both keyed by client address, 20
// requests each claiming another address on fresh connections (both
// workers) all reach the same upstream and share one bucket, and upstreams
// see the connection's address.
func TestEnvoy_ForgedForwardedFor(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		p := seedPolicy(t)
		route := seedRoute(p)
		route["split"] = map[string]any{"hintHeader": "x-route-to", "stickyBy": map[string]any{"clientAddress": true}}
		route["rateLimit"] = map[string]any{
			"tokenBucket": map[string]any{"maxTokens": 5, "tokensPerFill": 1, "fillInterval": "1h"},
			"key":         map[string]any{"clientAddress": true},
		}
		route["headers"].(map[string]any)["request"].(map[string]any)["set"] = map[string]any{
			"x-client-address": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
		}
		gw := startGateway(t, b, p)
		const n = 20
		rs := gw.many(t, n, 4, true, "/products/1", func(i int) map[string]string {
			return map[string]string{"x-forwarded-for": fmt.Sprintf("203.0.113.%d", i+1)}
		})
		statuses := countStatus(rs)
		services := map[string]int{}
		for _, r := range rs {
			if r.Reply == nil {
				continue
			}
			services[r.Reply.Service]++
			if got := r.Reply.Headers["x-client-address"]; !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("x-client-address %q upstream, want the connection's 127.0.0.1", got)
			}
		}
		t.Logf("%d requests with %d forged X-Forwarded-For values: statuses %v, upstreams %v", n, n, statuses, services)
		if statuses[http.StatusOK] != 5 || statuses[http.StatusTooManyRequests] != n-5 {
			t.Errorf("statuses %v, want 5 × 200 and %d × 429: one bucket for one client", statuses, n-5)
		}
		if len(services) != 1 {
			t.Errorf("upstreams %v, want one: the canary pick follows the connection's address", services)
		}
	})
}
