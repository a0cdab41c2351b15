package e2e

import (
	"github.com/wasmgate/wasmgate/e2e/harness"

	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// featuresPolicy has a route for each request-time feature. port is the
// listener's port, which the port conditions and a derived redirect port
// name.
func featuresPolicy(port int) map[string]any {
	uri := func(kind, value string) map[string]any { return map[string]any{"uri": map[string]any{kind: value}} }
	with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
	route := func(name string, match []any, fields map[string]any) map[string]any {
		if match != nil {
			fields["match"] = match
		}
		return with(fields, "name", name)
	}
	return map[string]any{"routes": []any{
		route("to-https", []any{with(uri("prefix", "/shop/"), "scheme", map[string]any{"exact": "http"})},
			map[string]any{"redirect": map[string]any{"scheme": "https", "uri": "/store", "redirectCode": 308}}),
		route("moved", []any{uri("exact", "/old")},
			map[string]any{"redirect": map[string]any{"authority": "new.example", "derivePort": "FROM_REQUEST_PORT"}}),
		route("https-only", []any{with(uri("prefix", "/secure"), "scheme", map[string]any{"exact": "https"})},
			map[string]any{"directResponse": map[string]any{"status": 500}}),
		route("other-port", []any{with(uri("exact", "/port"), "port", port+1)},
			map[string]any{"directResponse": map[string]any{"status": 500}}),
		route("this-port", []any{with(uri("exact", "/port"), "port", port)},
			map[string]any{"directResponse": map[string]any{"status": 202, "body": map[string]any{"string": "this port"}}}),
		route("maintenance", []any{uri("prefix", "/billing")},
			map[string]any{"directResponse": map[string]any{"status": 503, "body": map[string]any{"string": "billing is down"}}}),
		route("flaky", []any{uri("prefix", "/flaky")}, map[string]any{
			"fault": map[string]any{"abort": map[string]any{"percentage": map[string]any{"value": 30}, "httpStatus": 418}},
			"route": []any{map[string]any{"destination": map[string]any{"host": "product-service"}}}}),
		route("canary", []any{uri("prefix", "/canary")}, map[string]any{
			"headers": map[string]any{"request": map[string]any{"set": map[string]any{"x-tier": "route"}}},
			"route": []any{
				map[string]any{"destination": map[string]any{"host": "product-service"}, "weight": 50},
				map[string]any{"destination": map[string]any{"host": "product-service-v2"}, "weight": 50,
					"headers": map[string]any{
						"request":  map[string]any{"set": map[string]any{"x-tier": "canary", "x-canary": "%DESTINATION%"}},
						"response": map[string]any{"set": map[string]any{"x-canary-response": "yes"}}}},
			}}),
		route("rest", nil, map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "product-service"}}}}),
	}}
}

// TestEnvoy_Features: redirects, direct responses, fault aborts,
// per-destination headers and scheme and port conditions, answered by a
// real Envoy configured by `wasmgate envoy-config`.
func TestEnvoy_Features(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		port, err := strconv.Atoi(freePort(t))
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(featuresPolicy(port))
		if err != nil {
			t.Fatal(err)
		}
		policyFile := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(policyFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		gw := envoyConfigGateway(t, b, policyFile, strconv.Itoa(port))
		authority := "127.0.0.1:" + strconv.Itoa(port)

		for _, tc := range []struct {
			name, path, route, location, body string
			status                            int
		}{
			{name: "redirect", path: "/shop/a?x=1", route: "to-https", status: 308, location: "https://" + authority + "/store?x=1"},
			{name: "redirect to the request's port", path: "/old?y", route: "moved", status: 301,
				location: "http://new.example:" + strconv.Itoa(port) + "/old?y"},
			{name: "scheme does not match", path: "/secure", route: "rest", status: 200},
			{name: "port", path: "/port", route: "this-port", status: 202, body: "this port"},
			{name: "direct response", path: "/billing/1", route: "maintenance", status: 503, body: "billing is down"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := gw.get(gw.client, tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != tc.status || r.Header.Get("x-wasmgate-route") != tc.route {
					t.Fatalf("GET %s: status %d, route %q; want %d, %q (body %q)", tc.path, r.Status, r.Header.Get("x-wasmgate-route"), tc.status, tc.route, r.Body)
				}
				if got := r.Header.Get("location"); got != tc.location {
					t.Errorf("GET %s: location %q, want %q", tc.path, got, tc.location)
				}
				if tc.body != "" && r.Body != tc.body {
					t.Errorf("GET %s: body %q, want %q", tc.path, r.Body, tc.body)
				}
			})
		}

		t.Run("fault abort share", func(t *testing.T) {
			// 400 requests at 30 %: the standard deviation is 2.3 points,
			// so ±8 points is 3.5 sigma.
			const n, share, tolerance = 400, 0.30, 0.08
			counts := countStatus(gw.many(t, n, 4, false, "/flaky/1", nil))
			if counts[418]+counts[200] != n {
				t.Fatalf("statuses %v; want only 418 and 200", counts)
			}
			t.Logf("aborted %d of %d", counts[418], n)
			if got := float64(counts[418]) / n; math.Abs(got-share) > tolerance {
				t.Errorf("aborted %d of %d (%.3f), want %.2f ± %.2f", counts[418], n, got, share, tolerance)
			}
			if got := gw.counter(t, "wasmgate.route.flaky.fault_aborted"); got != int64(counts[418]) {
				t.Errorf("fault_aborted = %d, want %d", got, counts[418])
			}
		})

		t.Run("per-destination headers", func(t *testing.T) {
			seen := map[string]bool{}
			for _, r := range gw.many(t, 40, 4, false, "/canary/1", nil) {
				if r.Reply == nil {
					t.Fatalf("status %d, no upstream reply: %q", r.Status, r.Body)
				}
				service := r.Reply.Service
				seen[service] = true
				tier, canary := r.Reply.Headers["x-tier"], r.Reply.Headers["x-canary"]
				response := r.Header.Get("x-canary-response")
				switch service {
				case "product-service-v2":
					if !slices.Equal(tier, []string{"canary"}) || !slices.Equal(canary, []string{"product-service-v2"}) || response != "yes" {
						t.Errorf("%s: x-tier %q, x-canary %q, response x-canary-response %q; want canary, product-service-v2, yes", service, tier, canary, response)
					}
				default:
					if !slices.Equal(tier, []string{"route"}) || canary != nil || response != "" {
						t.Errorf("%s: x-tier %q, x-canary %q, response x-canary-response %q; want the route's header only", service, tier, canary, response)
					}
				}
			}
			if len(seen) != 2 {
				t.Errorf("served by %v; want both destinations", seen)
			}
		})
	})
}

// envoyConfigGateway starts a demo upstream per cluster the policy in
// policyFile needs and an Envoy configured by `wasmgate envoy-config`, its
// listener on port ("0": kernel-picked).
func envoyConfigGateway(t *testing.T, b harness.Build, policyFile, port string) *gateway {
	t.Helper()
	args := []string{"-policy", policyFile, "-gateway-port", port, "-route-header"}
	for _, line := range strings.Split(strings.TrimSpace(harness.RunCLI(t, "envoy-config", "-policy", policyFile, "-clusters")), "\n") {
		cluster, _, _ := strings.Cut(line, " ")
		args = append(args, upstreamFlag(t, cluster)...)
	}
	return awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, nil, args...)))
}
