package filter

import (
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/policy"
)

// seedPolicy is the gateway of the seed articles: strip /products, mark the
// request as https, split 90/10 with a sticky user and a tester override.
const seedPolicy = `{"routes": [{
  "name": "products",
  "match": [{"uri": {"prefix": "/products"}}],
  "rewrite": {"uri": "/"},
  "headers": {"request": {"set": {"x-forwarded-proto": "https"}, "remove": ["x-internal-debug"]},
              "response": {"set": {"x-served-by": "%DESTINATION%"}}},
  "route": [{"destination": {"host": "product-service", "port": 8080}, "weight": 90},
            {"destination": {"host": "product-service-v2", "port": 8080}, "weight": 10}],
  "split": {"hintHeader": "x-route-to", "stickyBy": {"header": "x-user-id"}, "overrideHeader": "x-canary"}
}]}`

func request(path string, extra ...[2]string) [][2]string {
	return append([][2]string{
		{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}, {":scheme", "http"},
	}, extra...)
}

// must asserts that a header has a value after the plugin ran.
func must(t *testing.T, hs [][2]string, name, want string) {
	t.Helper()
	if got, ok := header(hs, name); !ok || got != want {
		t.Errorf("%s = %q (present %v), want %q", name, got, ok, want)
	}
}

func mustAbsent(t *testing.T, hs [][2]string, name string) {
	t.Helper()
	if got, ok := header(hs, name); ok {
		t.Errorf("%s = %q, want it absent", name, got)
	}
}

func startPlugin(t *testing.T, host testHost) {
	t.Helper()
	if st := host.StartPlugin(); st != pluginStartOK {
		t.Fatalf("StartPlugin = %v, critical logs: %q", st, host.GetCriticalLogs())
	}
}

// counter reads a counter after a tick, which flushes the plugin's counts.
func counter(t *testing.T, host testHost, name string) uint64 {
	t.Helper()
	host.Tick()
	v, err := host.GetCounterMetric(name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return v
}

func TestFilter_SeedScenario(t *testing.T) {
	forEachLeg(t, seedPolicy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		id := host.InitializeHttpContext()
		if a := host.CallOnRequestHeaders(id, request("/products/123?x=1",
			[2]string{"x-internal-debug", "1"}, [2]string{"x-route-to", "attacker-cluster"}), false); a != actionContinue {
			t.Fatalf("request action = %v", a)
		}
		req := host.GetCurrentRequestHeaders(id)
		must(t, req, ":path", "/123?x=1")
		must(t, req, ":authority", "api.example.com")
		must(t, req, "x-forwarded-proto", "https")
		mustAbsent(t, req, "x-internal-debug")
		hint, _ := header(req, "x-route-to")
		if hint != "product-service" && hint != "product-service-v2" {
			t.Fatalf("x-route-to = %q, want a configured destination", hint)
		}
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, false)
		must(t, host.GetCurrentResponseHeaders(id), "x-served-by", hint)
		host.CompleteHttpContext(id)

		if got := counter(t, host, "wasmgate.route.products.matched"); got != 1 {
			t.Errorf("matched = %d, want 1", got)
		}
		if got := counter(t, host, "wasmgate.route.products.rewritten"); got != 1 {
			t.Errorf("rewritten = %d, want 1", got)
		}
		if got := counter(t, host, "wasmgate.route.products.destination."+hint+".picked"); got != 1 {
			t.Errorf("picked %s = %d, want 1", hint, got)
		}
	})
}

func TestFilter_PrefixOnly(t *testing.T) {
	forEachLeg(t, seedPolicy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/products"), true)
		must(t, host.GetCurrentRequestHeaders(id), ":path", "/")
	})
}

func TestFilter_Unmatched(t *testing.T) {
	forEachLeg(t, seedPolicy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		id := host.InitializeHttpContext()
		in := request("/orders/1?y=2", [2]string{"x-internal-debug", "1"}, [2]string{"x-route-to", "product-service-v2"})
		host.CallOnRequestHeaders(id, in, false)
		req := host.GetCurrentRequestHeaders(id)
		must(t, req, ":path", "/orders/1?y=2")
		must(t, req, "x-internal-debug", "1")
		mustAbsent(t, req, "x-forwarded-proto")
		// A client never picks a cluster itself.
		mustAbsent(t, req, "x-route-to")
		host.CallOnResponseHeaders(id, [][2]string{{":status", "404"}}, false)
		mustAbsent(t, host.GetCurrentResponseHeaders(id), "x-served-by")
		if got := counter(t, host, "wasmgate.route.products.matched"); got != 0 {
			t.Errorf("matched = %d, want 0", got)
		}
	})
}

func TestFilter_Override(t *testing.T) {
	forEachLeg(t, seedPolicy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for i := 0; i < 20; i++ {
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request("/products/1", [2]string{"x-canary", "product-service-v2"}), true)
			must(t, host.GetCurrentRequestHeaders(id), "x-route-to", "product-service-v2")
			host.CompleteHttpContext(id)
		}
	})
}

func TestFilter_Sticky(t *testing.T) {
	forEachLeg(t, seedPolicy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		seen := map[string]bool{}
		for user := 0; user < 40; user++ {
			var first string
			for i := 0; i < 5; i++ {
				id := host.InitializeHttpContext()
				host.CallOnRequestHeaders(id, request("/products/1", [2]string{"x-user-id", fmt.Sprint("user-", user)}), true)
				got, _ := header(host.GetCurrentRequestHeaders(id), "x-route-to")
				host.CompleteHttpContext(id)
				if i == 0 {
					first = got
				} else if got != first {
					t.Fatalf("user-%d: request %d went to %q, first went to %q", user, i, got, first)
				}
			}
			seen[first] = true
		}
		// Sticky picks are a fixed hash of the user id, so this is the same
		// every run; a hash sending all 40 users one way would be broken.
		if len(seen) != 2 {
			t.Errorf("40 sticky users reached %v, want both destinations", seen)
		}
	})
}

func TestFilter_BadPolicy(t *testing.T) {
	const bad = `{"routes": [{"name": "products", "match": [{"uri": {"prefix": "/p"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 10, "fillInterval": "abc"}}}]}`
	forEachLeg(t, bad, func(t *testing.T, l leg, host testHost) {
		if st := host.StartPlugin(); st != pluginStartFailed {
			t.Fatalf("StartPlugin = %v, want failed", st)
		}
		want := []string{invalidPolicyPrefix + `routes[0].rateLimit.tokenBucket.fillInterval: "abc" is not a duration`}
		if got := host.GetCriticalLogs(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("critical logs = %q, want %q", got, want)
		}
		if got := counter(t, host, "wasmgate.config_rejected"); got != 1 {
			t.Errorf("config_rejected = %d, want 1", got)
		}
	})
}

func rateLimitPolicy(extra string) string {
	return `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 3, "tokensPerFill": 1, "fillInterval": "1h"}` + extra + `}}]}`
}

func TestFilter_RateLimit(t *testing.T) {
	forEachLeg(t, rateLimitPolicy(""), func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for i := 1; i <= 4; i++ {
			id := host.InitializeHttpContext()
			a := host.CallOnRequestHeaders(id, request("/api/x"), true)
			resp := host.GetSentLocalResponse(id)
			if i <= 3 {
				if a != actionContinue || resp != nil {
					t.Fatalf("request %d: action %v, local response %+v; want admitted", i, a, resp)
				}
				continue
			}
			if a != actionPause || resp == nil {
				t.Fatalf("request %d: action %v, local response %+v; want denied", i, a, resp)
			}
			if resp.StatusCode != 429 {
				t.Errorf("status = %d, want 429", resp.StatusCode)
			}
			if l.wasm != "" && resp.StatusCodeDetail != policy.RateLimitedDetails {
				t.Errorf("details = %q, want %q", resp.StatusCodeDetail, policy.RateLimitedDetails)
			}
			must(t, resp.Headers, "retry-after", "3600")
			must(t, resp.Headers, "ratelimit", `"api";r=0;t=3600`)
			must(t, resp.Headers, "ratelimit-policy", `"api";q=3;w=10800`)
			host.CallOnResponseHeaders(id, [][2]string{{":status", "429"}}, false)
		}
		if got := counter(t, host, "wasmgate.route.api.rate_limited"); got != 1 {
			t.Errorf("rate_limited = %d, want 1", got)
		}
	})
}

func TestFilter_RateLimitShadow(t *testing.T) {
	forEachLeg(t, rateLimitPolicy(`, "shadow": true`), func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for i := 1; i <= 10; i++ {
			id := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(id, request("/api/x"), true); a != actionContinue {
				t.Fatalf("request %d: action %v, want continue", i, a)
			}
			if resp := host.GetSentLocalResponse(id); resp != nil {
				t.Fatalf("request %d: local response %+v in shadow mode", i, resp)
			}
		}
		if got := counter(t, host, "wasmgate.route.api.shadow_limited"); got != 7 {
			t.Errorf("shadow_limited = %d, want 7", got)
		}
		if got := counter(t, host, "wasmgate.route.api.rate_limited"); got != 0 {
			t.Errorf("rate_limited = %d, want 0", got)
		}
	})
}

// TestFilter_RateLimitPerKey fills a table of four slots with four keys:
// each keeps its own budget wherever its key hashes. A fifth key finds no
// free slot and takes from another key's bucket, which is empty.
func TestFilter_RateLimitPerKey(t *testing.T) {
	policy := rateLimitPolicy(`, "key": {"header": "x-api-key"}, "maxKeys": 4`)
	forEachLeg(t, policy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		admitted := map[string]int{}
		send := func(key string) {
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request("/api/x", [2]string{"x-api-key", key}), true)
			if host.GetSentLocalResponse(id) == nil {
				admitted[key]++
			}
		}
		keys := []string{"alice", "bob", "carol", "dave"}
		for range 5 {
			for _, key := range keys {
				send(key)
			}
		}
		for _, key := range keys {
			if admitted[key] != 3 {
				t.Errorf("admitted = %v, want 3 for each of %v", admitted, keys)
				break
			}
		}
		if got := counter(t, host, "wasmgate.route.api.key_shared"); got != 0 {
			t.Errorf("key_shared = %d with one slot per key, want 0", got)
		}
		send("eve")
		send("eve")
		if admitted["eve"] != 0 {
			t.Errorf("eve admitted %d times from a table of drained buckets, want 0", admitted["eve"])
		}
		if got := counter(t, host, "wasmgate.route.api.key_shared"); got != 2 {
			t.Errorf("key_shared = %d, want 2", got)
		}
	})
}

// TestFilter_Reconfigure covers the Go leg; the .wasm legs reconfigure a
// running VM on proxyhost in TestWorkers_Reconfigure.
func TestFilter_Reconfigure(t *testing.T) {
	host, reset := newHost(t, leg{name: "go"}, seedPolicy)
	defer reset()
	startPlugin(t, host)
	saved := getPluginConfiguration
	defer func() { getPluginConfiguration = saved }()
	getPluginConfiguration = func() ([]byte, error) { return []byte(`{"routes": []}`), nil }
	if st := host.StartPlugin(); st != pluginStartFailed {
		t.Fatalf("StartPlugin(bad) = %v, want failed", st)
	}
	want := []string{invalidPolicyPrefix + "routes: must not be empty"}
	if got := host.GetCriticalLogs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("critical logs = %q, want %q", got, want)
	}
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/products/5"), true)
	must(t, host.GetCurrentRequestHeaders(id), ":path", "/5")
}

// TestFilter_MethodAndAuthority covers policies that read :method and
// :authority, which the filter fetches only for such policies.
func TestFilter_MethodAndAuthority(t *testing.T) {
	const policy = `{"routes": [{"name": "writes",
	  "match": [{"method": {"exact": "POST"}, "authority": {"exact": "*.example.com"}}],
	  "headers": {"request": {"set": {"x-seen": "%REQ(:method)% %REQ(:authority)%"}}}}]}`
	forEachLeg(t, policy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for _, tt := range []struct{ method, authority, want string }{
			{"POST", "api.example.com:8443", "POST api.example.com:8443"},
			{"GET", "api.example.com", ""},
			{"POST", "example.org", ""},
		} {
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, [][2]string{
				{":method", tt.method}, {":path", "/"}, {":authority", tt.authority}}, true)
			got, _ := header(host.GetCurrentRequestHeaders(id), "x-seen")
			if got != tt.want {
				t.Errorf("%s %s: x-seen = %q, want %q", tt.method, tt.authority, got, tt.want)
			}
		}
	})
}

// TestFilter_RepeatedHeader sends a header twice: the match sees the
// values joined with ",", as Envoy's router matches them, so the second
// value cannot slip past a withoutHeaders rule; %REQ()% renders the first,
// as Envoy's does.
func TestFilter_RepeatedHeader(t *testing.T) {
	const policy = `{"routes": [
	  {"name": "no-staging", "match": [{"uri": {"prefix": "/"}, "withoutHeaders": {"x-env": {"regex": ".*staging.*"}}}],
	   "headers": {"request": {"set": {"x-seen": "%REQ(x-env)%"}}}},
	  {"name": "staging", "headers": {"request": {"set": {"x-seen": "staging"}}}}]}`
	forEachLeg(t, policy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for _, tt := range []struct {
			values []string
			want   string
		}{
			{[]string{"prod"}, "prod"},
			{[]string{"prod", "eu"}, "prod"},
			{[]string{"prod", "staging"}, "staging"},
		} {
			id := host.InitializeHttpContext()
			hs := request("/x")
			for _, v := range tt.values {
				hs = append(hs, [2]string{"x-env", v})
			}
			host.CallOnRequestHeaders(id, hs, true)
			if got, _ := header(host.GetCurrentRequestHeaders(id), "x-seen"); got != tt.want {
				t.Errorf("x-env %q: x-seen = %q, want %q", tt.values, got, tt.want)
			}
			host.CompleteHttpContext(id)
		}
	})
}
