package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestEnvoy_Observability checks what an operator sees of the plugin in
// envoy.yaml's access log and in Prometheus stats: the matched route from
// the plugin's filter state, the destination, the path the client sent
// (x-envoy-original-path) next to the rewritten one, a plugin 429 marked as
// Envoy marks its own, and route/destination as stat labels.
func TestEnvoy_Observability(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := startGateway(t, b, rateLimitPolicy(t, bucketLimit(1, 1, "1h")))
		canary := map[string]string{"x-canary": "product-service-v2"}
		if r := gw.mustGet(t, "/products/42?x=1", canary); r.Status != http.StatusOK {
			t.Fatalf("first request: status %d, want 200", r.Status)
		}
		denied, err := gw.get(gw.client, "/products/43", canary)
		if err != nil {
			t.Fatal(err)
		}
		if denied.Status != http.StatusTooManyRequests || denied.Header.Get("x-envoy-ratelimited") != "true" {
			t.Fatalf("second request: status %d, x-envoy-ratelimited %q; want 429 and true",
				denied.Status, denied.Header.Get("x-envoy-ratelimited"))
		}
		gw.mustGet(t, "/orders/1", nil)

		want := []*regexp.Regexp{
			regexp.MustCompile(`"GET /products/42\?x=1 HTTP/1.1" 200 via_upstream route=products destination=product-service-v2 upstream_path=/42\?x=1 cluster=product-service-v2 `),
			regexp.MustCompile(`"GET /products/43 HTTP/1.1" 429 wasmgate_rate_limited route=products destination=product-service-v2 upstream_path=/43 cluster=product-service-v2 `),
			regexp.MustCompile(`"GET /orders/1 HTTP/1.1" 200 via_upstream route=- destination=- upstream_path=/orders/1 cluster=default-backend `),
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, re := range want {
			for !re.MatchString(gw.Log()) {
				if time.Now().After(deadline) {
					t.Fatalf("access log has no line matching %s", re)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}

		time.Sleep(3 * flushPeriod)
		status, body, err := gw.adminGet("/stats/prometheus")
		if err != nil || status != http.StatusOK {
			t.Fatalf("/stats/prometheus: %d %v", status, err)
		}
		for _, line := range []string{
			`wasmgate_route_matched{wasmgate_route="products"} 2`,
			`wasmgate_route_rate_limited{wasmgate_route="products"} 1`,
			`wasmgate_route_destination_picked{wasmgate_destination="product-service-v2",wasmgate_route="products"} 1`,
		} {
			if !strings.Contains(body, line) {
				t.Errorf("/stats/prometheus lacks %s", line)
			}
		}
		if t.Failed() {
			for _, l := range strings.Split(body, "\n") {
				if strings.Contains(l, "wasmgate") {
					t.Log(l)
				}
			}
		}
	})
}
