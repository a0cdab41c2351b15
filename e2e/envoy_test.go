package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// productServices are the clusters the seed policy splits between.
var productServices = []string{"product-service", "product-service-v2"}

func TestEnvoy_Rewrite(t *testing.T) {
	tests := []struct {
		name, path string
		// wantPath is the request target the upstream received.
		wantPath string
		// wantServices are the upstreams allowed to answer.
		wantServices []string
	}{
		{name: "prefix with query", path: "/products/123?x=1", wantPath: "/123?x=1", wantServices: productServices},
		{name: "prefix alone", path: "/products", wantPath: "/", wantServices: productServices},
		{name: "prefix alone with query", path: "/products?x=1", wantPath: "/?x=1", wantServices: productServices},
		{name: "normalized before matching", path: "/catalog/../products//9", wantPath: "/9", wantServices: productServices},
		{name: "unmatched", path: "/other/path?q=2", wantPath: "/other/path?q=2", wantServices: []string{"default-backend"}},
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := startGateway(t, b, seedPolicy(t))
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := gw.mustGet(t, tc.path, nil)
				if r.Reply.Path != tc.wantPath {
					t.Errorf("GET %s arrived as %q, want %q", tc.path, r.Reply.Path, tc.wantPath)
				}
				if !slices.Contains(tc.wantServices, r.Reply.Service) {
					t.Errorf("GET %s served by %q, want one of %q", tc.path, r.Reply.Service, tc.wantServices)
				}
			})
		}
	})
}

func TestEnvoy_Headers(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		p := seedPolicy(t)
		// A response header from a request header: the plugin reads request
		// headers again while the response passes.
		response := seedRoute(p)["headers"].(map[string]any)["response"].(map[string]any)
		response["add"] = map[string]any{"x-echo-user": "user=%REQ(x-user-id)%"}
		gw := startGateway(t, b, p)
		sent := map[string]string{"x-internal-debug": "1", "x-user-id": "alice"}

		t.Run("matched route", func(t *testing.T) {
			r := gw.mustGet(t, "/products/1", sent)
			if got := r.Reply.Headers["x-forwarded-proto"]; !slices.Equal(got, []string{"https"}) {
				t.Errorf("upstream x-forwarded-proto = %q, want [https]", got)
			}
			if got, ok := r.Reply.Headers["x-internal-debug"]; ok {
				t.Errorf("upstream received removed header x-internal-debug = %q", got)
			}
			// %DESTINATION% is the chosen destination, which is the cluster
			// (and demo upstream) name.
			if got := r.Header.Get("x-served-by"); got != r.Reply.Service {
				t.Errorf("response x-served-by = %q, want %q (the upstream that answered)", got, r.Reply.Service)
			}
			if got := r.Header.Values("x-echo-user"); !slices.Equal(got, []string{"user=alice"}) {
				t.Errorf("response x-echo-user = %q, want [user=alice]", got)
			}
		})
		t.Run("unmatched route", func(t *testing.T) {
			r := gw.mustGet(t, "/other", sent)
			if got := r.Reply.Headers["x-internal-debug"]; !slices.Equal(got, []string{"1"}) {
				t.Errorf("upstream x-internal-debug = %q, want [1]: only the products route removes it", got)
			}
			if got, ok := r.Header["X-Served-By"]; ok {
				t.Errorf("response x-served-by = %q, want none", got)
			}
		})
	})
}

// TestEnvoy_HintHeaderFromClient checks that a client cannot choose a cluster
// by sending the hint header itself.
func TestEnvoy_HintHeaderFromClient(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := startGateway(t, b, seedPolicy(t))
		r := gw.mustGet(t, "/other", map[string]string{"x-route-to": "product-service-v2"})
		if r.Reply.Service != "default-backend" {
			t.Errorf("GET /other with a client x-route-to served by %q, want default-backend", r.Reply.Service)
		}
		if got, ok := r.Reply.Headers["x-route-to"]; ok {
			t.Errorf("upstream received the client's x-route-to = %q", got)
		}
	})
}

func TestEnvoy_Canary(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		p := seedPolicy(t)
		delete(seedRoute(p), "rateLimit") // thousands of requests
		gw := startGateway(t, b, p)

		t.Run("weights", func(t *testing.T) {
			// 6000 random picks at 10 % have a standard deviation of 0.39
			// points, so the ±3-point band is 7.7 sigma wide: it fails on a
			// wrong split, not on bad luck (2000 picks would fail 1 run in 36).
			const n = 6000
			rs := gw.many(t, n, 8, false, "/products/1", nil)
			byService := map[string]int{}
			for _, r := range rs {
				if r.Reply == nil {
					t.Fatalf("status %d, no upstream reply: %q", r.Status, r.Body)
				}
				byService[r.Reply.Service]++
				// The hint the plugin wrote reaches the upstream too: it must
				// name the cluster that answered, or Envoy routed on a stale
				// route.
				if hint := r.Reply.Headers["x-route-to"]; !slices.Equal(hint, []string{r.Reply.Service}) {
					t.Fatalf("served by %q with hint %q: Envoy did not route on the hint", r.Reply.Service, hint)
				}
			}
			share := float64(byService["product-service-v2"]) / n
			t.Logf("answers by upstream: %v (v2 share %.1f%%)", byService, 100*share)
			if byService["product-service"]+byService["product-service-v2"] != n {
				t.Errorf("answers by upstream %v, want only product-service and product-service-v2", byService)
			}
			if share < 0.07 || share > 0.13 {
				t.Errorf("v2 share %.3f, want 0.07..0.13 (weight 10 of 100)", share)
			}
		})
		t.Run("sticky", func(t *testing.T) {
			const users, perUser = 100, 3
			user := func(i int) map[string]string { return map[string]string{"x-user-id": "user-" + strconv.Itoa(i%users)} }
			rs := gw.many(t, users*perUser, 8, false, "/products/1", user)
			seen := map[string]map[string]bool{} // user → services
			services := map[string]bool{}
			for _, r := range rs {
				if r.Reply == nil {
					t.Fatalf("status %d, no upstream reply: %q", r.Status, r.Body)
				}
				u := strings.Join(r.Reply.Headers["x-user-id"], ",")
				if seen[u] == nil {
					seen[u] = map[string]bool{}
				}
				seen[u][r.Reply.Service] = true
				services[r.Reply.Service] = true
			}
			for u, s := range seen {
				if len(s) != 1 {
					t.Errorf("user %s reached %v, want one upstream", u, s)
				}
			}
			// With 100 users at 10%, no v2 user at all has odds 0.9^100.
			if len(services) != 2 {
				t.Errorf("users reached %v, want both versions", services)
			}
		})
		t.Run("override", func(t *testing.T) {
			for _, want := range productServices {
				for range 20 {
					r := gw.mustGet(t, "/products/1", map[string]string{"x-canary": want})
					if r.Reply.Service != want {
						t.Fatalf("x-canary: %s served by %q", want, r.Reply.Service)
					}
				}
			}
		})
	})
}

// rateLimitPolicy is the seed policy with the given rateLimit.
func rateLimitPolicy(t *testing.T, rateLimit map[string]any) map[string]any {
	p := seedPolicy(t)
	seedRoute(p)["rateLimit"] = rateLimit
	return p
}

// bucketLimit is a rateLimit with one token bucket.
func bucketLimit(maxTokens, tokensPerFill int, fillInterval string) map[string]any {
	return map[string]any{"tokenBucket": map[string]any{
		"maxTokens": maxTokens, "tokensPerFill": tokensPerFill, "fillInterval": fillInterval,
	}}
}

// checkDenied asserts that r is a rate-limit denial with Retry-After and the
// IETF RateLimit fields of the products route. window is the seconds the
// bucket takes to refill from empty.
func checkDenied(t *testing.T, r *response, maxTokens, window int) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %q", r.Status, r.Body)
	}
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
	}
	wantPolicy := fmt.Sprintf(`"products";q=%d;w=%d`, maxTokens, window)
	if got := r.Header.Get("RateLimit-Policy"); got != wantPolicy {
		t.Errorf("RateLimit-Policy = %q, want %q", got, wantPolicy)
	}
	m := regexp.MustCompile(`^"products";r=0;t=(\d+)$`).FindStringSubmatch(r.Header.Get("RateLimit"))
	if m == nil {
		t.Errorf(`RateLimit = %q, want "products";r=0;t=<seconds>`, r.Header.Get("RateLimit"))
	} else if reset, _ := strconv.Atoi(m[1]); retry < reset {
		t.Errorf("Retry-After %d is earlier than RateLimit t=%d", retry, reset)
	}
}

func TestEnvoy_RateLimit(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		t.Run("burst across workers", func(t *testing.T) {
			const maxTokens, n, conc, fill = 20, 200, 16, 10 * time.Second
			gw := startGateway(t, b, rateLimitPolicy(t, bucketLimit(maxTokens, 1, fill.String())))
			start := time.Now()
			rs := gw.many(t, n, conc, true, "/products/1", nil)
			elapsed := time.Since(start)
			statuses := countStatus(rs)
			refilled := int(elapsed / fill)
			t.Logf("%d requests in %v over %d connections at a time: %v", n, elapsed.Round(time.Millisecond), conc, statuses)
			if got := statuses[http.StatusOK]; got < maxTokens || got > maxTokens+refilled {
				t.Errorf("admitted %d, want %d..%d (bucket %d + %d refilled)", got, maxTokens, maxTokens+refilled, maxTokens, refilled)
			}
			if statuses[http.StatusOK]+statuses[http.StatusTooManyRequests] != n {
				t.Errorf("statuses %v, want only 200 and 429", statuses)
			}
			for _, r := range rs {
				if r.Status == http.StatusTooManyRequests {
					checkDenied(t, r, maxTokens, maxTokens*int(fill/time.Second))
					break
				}
			}
			t.Logf("plugin counters: %v", gw.stats(t, `wasmgate\.route\.products\.(rate_limited|contended)$`))
			// The budget is only proven shared if both workers served.
			workers := gw.stats(t, `^listener\..*\.worker_[0-9]+\.downstream_cx_total$`)
			t.Logf("connections per worker: %v", workers)
			if len(workers) != 2 {
				t.Errorf("connections per worker %v, want both workers of --concurrency 2", workers)
			}
			for name, v := range workers {
				if v == 0 {
					t.Errorf("%s = 0: one worker served every connection", name)
				}
			}
		})
		t.Run("refill", func(t *testing.T) {
			const maxTokens = 3
			gw := startGateway(t, b, rateLimitPolicy(t, bucketLimit(maxTokens, maxTokens, "2s")))
			for i := range maxTokens {
				if r := gw.mustGet(t, "/products/1", nil); r.Status != http.StatusOK {
					t.Fatalf("request %d: status %d", i, r.Status)
				}
			}
			r, err := gw.get(gw.client, "/products/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			checkDenied(t, r, maxTokens, 2)
			retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
			time.Sleep(time.Duration(retry) * time.Second)
			if r := gw.mustGet(t, "/products/1", nil); r.Status != http.StatusOK {
				t.Errorf("after Retry-After %ds: status %d, want 200", retry, r.Status)
			}
		})
		t.Run("per key", func(t *testing.T) {
			const maxTokens = 3
			// Two slots: alice and bob each get their own bucket whatever
			// their hashes; carol then finds both in use and shares one.
			limit := bucketLimit(maxTokens, 1, "60s")
			limit["key"] = map[string]any{"header": "x-api-key"}
			limit["maxKeys"] = 2
			gw := startGateway(t, b, rateLimitPolicy(t, limit))
			for _, k := range []struct {
				key      string
				requests int
				admitted int
			}{
				{key: "alice", requests: maxTokens + 2, admitted: maxTokens},
				{key: "bob", requests: maxTokens, admitted: maxTokens},
				{key: "carol", requests: 2, admitted: 0},
			} {
				rs := gw.many(t, k.requests, 1, false, "/products/1", func(int) map[string]string {
					return map[string]string{"x-api-key": k.key}
				})
				if got := countStatus(rs); got[http.StatusOK] != k.admitted || got[http.StatusTooManyRequests] != k.requests-k.admitted {
					t.Errorf("key %s: statuses %v, want %d × 200 and %d × 429", k.key, got, k.admitted, k.requests-k.admitted)
				}
			}
			const shared = "wasmcustom.wasmgate.route.products.key_shared"
			if got := gw.stats(t, `\.key_shared$`); got[shared] != 2 {
				t.Errorf("stats %v, want %s 2 (carol's requests)", got, shared)
			}
		})
	})
}

// TestEnvoy_RateLimitOptions sends maxTokens+2 requests to a limit with
// one option set and checks the two over the limit.
func TestEnvoy_RateLimitOptions(t *testing.T) {
	const maxTokens = 3
	tests := []struct {
		name    string
		options map[string]any
		// wantStatus and wantHeader describe the two requests over the limit.
		wantStatus int
		wantHeader map[string]string
		// wantShadowed is the shadow_limited counter afterwards.
		wantShadowed int64
	}{
		{
			name:         "shadow",
			options:      map[string]any{"shadow": true},
			wantStatus:   http.StatusOK,
			wantHeader:   map[string]string{"Retry-After": "", "RateLimit": ""},
			wantShadowed: 2,
		},
		{
			name:       "status and legacy fields",
			options:    map[string]any{"status": 503, "fields": "legacy"},
			wantStatus: http.StatusServiceUnavailable,
			wantHeader: map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "RateLimit": ""},
		},
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				limit := bucketLimit(maxTokens, 1, "60s")
				maps.Copy(limit, tc.options)
				gw := startGateway(t, b, rateLimitPolicy(t, limit))
				for i := range maxTokens + 2 {
					r, err := gw.get(gw.client, "/products/1", nil)
					if err != nil {
						t.Fatal(err)
					}
					if i < maxTokens {
						if r.Status != http.StatusOK {
							t.Fatalf("request %d: status %d, want 200", i, r.Status)
						}
						continue
					}
					if r.Status != tc.wantStatus {
						t.Errorf("request %d: status %d, want %d", i, r.Status, tc.wantStatus)
					}
					for name, want := range tc.wantHeader {
						if got := r.Header.Get(name); got != want {
							t.Errorf("request %d: %s = %q, want %q", i, name, got, want)
						}
					}
				}
				if got := gw.counter(t, "wasmgate.route.products.shadow_limited"); got != tc.wantShadowed {
					t.Errorf("shadow_limited = %d, want %d", got, tc.wantShadowed)
				}
			})
		}
	})
}

func TestEnvoy_BadPolicy_Errors(t *testing.T) {
	tests := []struct {
		name string
		edit func(route map[string]any)
		// wantLog is the plugin's log message refusing the policy.
		wantLog string
	}{
		{
			name: "fill interval not a duration",
			edit: func(route map[string]any) {
				route["rateLimit"] = bucketLimit(20, 1, "abc")
			},
			wantLog: `wasmgate: invalid policy: routes[0].rateLimit.tokenBucket.fillInterval: "abc" is not a duration`,
		},
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := seedPolicy(t)
				tc.edit(seedRoute(p))
				e := launchEnvoy(t, b, p)
				select {
				case <-e.Exited:
				case <-time.After(envoyStartTimeout):
					t.Fatalf("envoy still running %v after start with an invalid policy", envoyStartTimeout)
				}
				if e.WaitErr == nil {
					t.Errorf("envoy exited with status 0, want a failure")
				}
				if log := e.Log(); !strings.Contains(log, tc.wantLog) {
					t.Errorf("envoy log lacks %q", tc.wantLog)
				}
			})
		}
	})
}

func TestEnvoy_Metrics(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		const maxTokens, products, others = 3, 5, 2
		gw := startGateway(t, b, rateLimitPolicy(t, bucketLimit(maxTokens, 1, "60s")))
		for range products {
			if _, err := gw.get(gw.client, "/products/1", map[string]string{"x-canary": "product-service-v2"}); err != nil {
				t.Fatal(err)
			}
		}
		for range others {
			gw.mustGet(t, "/other", nil)
		}

		want := map[string]int64{
			"wasmgate.route.products.matched":      products,
			"wasmgate.route.products.rewritten":    products,
			"wasmgate.route.products.rate_limited": products - maxTokens,
			// Only admitted requests count as picked.
			"wasmgate.route.products.destination.product-service-v2.picked": maxTokens,
			"wasmgate.route.products.destination.product-service.picked":    0,
		}
		for name, v := range want {
			if got := gw.counter(t, name); got != v {
				t.Errorf("%s = %d, want %d", name, got, v)
			}
		}
		// Envoy puts its own prefix in front of a Wasm metric's name.
		t.Logf("the plugin's metrics in /stats: %v", gw.stats(t, `wasmgate\.route\.products\.matched$`))
	})
}
