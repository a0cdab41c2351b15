package e2e

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

var globalBench = flag.Int("global-bench", 0, "requests per scenario of TestGlobalLimit_Bench (0: skip the benchmark)")

// nativeFilter is Envoy's own rate limit filter asking the same service for
// the same descriptor as the plugin's global limit in the benchmark (an
// http_filters item, unindented).
const nativeFilter = `- name: envoy.filters.http.ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
    domain: ` + rlsDomain + `
    timeout: 1s
    failure_mode_deny: true
    rate_limit_service:
      transport_api_version: V3
      grpc_service:
        envoy_grpc: { cluster_name: ratelimit }
`

// nativeRateLimits is the descriptor of the default route for nativeFilter.
const nativeRateLimits = `rate_limits: [{actions: [{generic_key: {descriptor_value: loose}}, {request_headers: {header_name: x-run, descriptor_key: run}}]}]`

// TestGlobalLimit_Bench measures what a globally limited request adds to
// Envoy's CPU time and to its latency, with the plugin and with Envoy's
// native envoy.filters.http.ratelimit, both asking the same service for the
// same descriptor. It is a benchmark: it prints numbers and asserts only
// that every request was admitted. Run it with `make bench-global`.
//
// Scenarios, each its own Envoy (--concurrency 2) on one keep-alive
// connection, sequential requests, in 10 interleaved rounds: "none" (no
// filter), "native" (the native filter), and per build "plugin" (a matched
// route, no limit) and "plugin+global" (the same route with a
// globalRateLimit). Envoy CPU is read from /proc in 10 ms ticks.
func TestGlobalLimit_Bench(t *testing.T) {
	n := *globalBench
	if n == 0 {
		t.Skip("a benchmark: run with -global-bench N (make bench-global)")
	}
	_, rls := startLimiter(t)
	benchPolicy := func(global bool) any {
		route := map[string]any{"name": "bench", "match": []any{map[string]any{"uri": map[string]any{"prefix": "/bench"}}}}
		if global {
			route["globalRateLimit"] = globalPolicy()["routes"].([]any)[3].(map[string]any)["globalRateLimit"] // "deny", loose
		}
		return map[string]any{"routes": []any{route}}
	}
	type scenario struct {
		name   string
		gw     *gateway
		header map[string]string
		cpu    time.Duration
		took   []time.Duration
	}
	var scenarios []*scenario
	add := func(name, cfg string) {
		scenarios = append(scenarios, &scenario{name: name, gw: awaitGateway(t, runEnvoy(t, cfg)),
			header: map[string]string{"x-run": newRun()}, took: make([]time.Duration, 0, n)})
	}
	bs := harness.Builds(*wasmFlag)
	plain := globalConfig(t, bs[0], benchPolicy(false), rls, "-no-plugin")
	add("none", plain)
	add("native", withNative(t, plain))
	for _, b := range bs {
		add("plugin "+b.Name, globalConfig(t, b, benchPolicy(false), rls))
		add("plugin+global "+b.Name, globalConfig(t, b, benchPolicy(true), rls))
	}
	for _, sc := range scenarios { // warm-up
		for range n / 10 {
			sc.gw.mustGet(t, "/bench", sc.header)
		}
	}
	// Rounds over all scenarios, so load from elsewhere on the machine
	// falls on each alike.
	const rounds = 10
	for range rounds {
		for _, sc := range scenarios {
			cpu0 := processCPU(t, sc.gw.Cmd.Process.Pid)
			for range n / rounds {
				start := time.Now()
				r, err := sc.gw.get(sc.gw.client, "/bench", sc.header)
				sc.took = append(sc.took, time.Since(start))
				if err != nil || r.Status != http.StatusOK {
					t.Fatalf("%s: %v %v", sc.name, r, err)
				}
			}
			sc.cpu += processCPU(t, sc.gw.Cmd.Process.Pid) - cpu0
		}
	}
	type result struct {
		name      string
		cpu, p50  time.Duration
		mean, p99 time.Duration
	}
	var results []result
	for _, sc := range scenarios {
		var sum time.Duration
		for _, d := range sc.took {
			sum += d
		}
		slices.Sort(sc.took)
		k := len(sc.took)
		results = append(results, result{name: sc.name, cpu: sc.cpu / time.Duration(k), p50: sc.took[k/2],
			mean: sum / time.Duration(k), p99: sc.took[k*99/100]})
	}
	byName := map[string]result{}
	var table strings.Builder
	fmt.Fprintf(&table, "%d requests per scenario, one connection each, interleaved:\n| scenario | Envoy CPU/req | p50 | mean | p99 |\n|---|--:|--:|--:|--:|\n", n)
	for _, r := range results {
		byName[r.name] = r
		fmt.Fprintf(&table, "| %s | %v | %v | %v | %v |\n", r.name, r.cpu.Round(100*time.Nanosecond),
			r.p50.Round(time.Microsecond), r.mean.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	}
	native := byName["native"]
	none := byName["none"]
	nativeCPU, nativeP50 := native.cpu-none.cpu, native.p50-none.p50
	fmt.Fprintf(&table, "\nnative filter adds %v CPU, %v p50\n", nativeCPU.Round(100*time.Nanosecond), nativeP50.Round(time.Microsecond))
	for _, b := range bs {
		with, without := byName["plugin+global "+b.Name], byName["plugin "+b.Name]
		cpu, p50 := with.cpu-without.cpu, with.p50-without.p50
		fmt.Fprintf(&table, "plugin %s: the global limit adds %v CPU (%.2f× native), %v p50 (%.2f× native)\n", b.Name,
			cpu.Round(100*time.Nanosecond), float64(cpu)/float64(nativeCPU), p50.Round(time.Microsecond), float64(p50)/float64(nativeP50))
	}
	t.Log("\n" + table.String())
}

// withNative is cfg (derived without the plugin) with nativeFilter before
// its router and nativeRateLimits on its default route.
func withNative(t *testing.T, cfg string) string {
	t.Helper()
	router := regexp.MustCompile(`(?m)^( *)- name: envoy.filters.http.router\n`).FindStringSubmatchIndex(cfg)
	route := regexp.MustCompile(`(?m)^( *)cluster: default-backend\n`).FindAllStringSubmatchIndex(cfg, -1)
	if router == nil || len(route) != 1 || route[0][1] > router[0] {
		t.Fatalf("the derived configuration has no router, or not one default route before it:\n%s", cfg)
	}
	indent := cfg[router[2]:router[3]]
	var filter strings.Builder
	for _, line := range strings.SplitAfter(nativeFilter, "\n") {
		if line != "" {
			filter.WriteString(indent + line)
		}
	}
	// The router comes after the routes: edit it first, so the route's
	// offsets hold.
	cfg = cfg[:router[0]] + filter.String() + cfg[router[0]:]
	r := route[0]
	return cfg[:r[1]] + cfg[r[2]:r[3]] + nativeRateLimits + "\n" + cfg[r[1]:]
}

// processCPU is the user+system time of process pid, all threads.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which ends with the last ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
