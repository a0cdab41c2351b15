package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// simResult is the part of `wasmgate simulate -json` a real Envoy can show.
type simResult struct {
	Source            string      `json:"source"`
	Method            string      `json:"method"`
	Path              string      `json:"path"`
	Route             string      `json:"route"`
	Forwarded         bool        `json:"forwarded"`
	UpstreamPath      string      `json:"upstreamPath"`
	UpstreamAuthority string      `json:"upstreamAuthority"`
	RequestSet        [][2]string `json:"requestSet"`
	RequestRemoved    []string    `json:"requestRemoved"`
	Destination       string      `json:"destination"`
	Limit             *struct {
		Verdict string `json:"verdict"`
	} `json:"limit"`
	Status      int         `json:"status"`
	ResponseSet [][2]string `json:"responseSet"`
}

// corpusRequest is one line of a corpus case's requests.jsonl.
type corpusRequest struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Authority string            `json:"authority"`
	Headers   map[string]string `json:"headers"`
	At        string            `json:"at"`
}

// TestEnvoy_Corpus replays the shared corpus (testdata/corpus: policies and
// recorded requests, also replayed by `wasmgate simulate` in cmd/wasmgate's
// tests) through a real Envoy serving each policy, at the requests' time
// offsets, and fails when Envoy's verdict for any request differs from the
// simulator's: route (the response header envoy-config adds), whether the
// plugin answered and with which status, upstream path and authority,
// destination, request header edits, response header edits; and, per route,
// the requests matched, limited and over a shadow limit (Envoy's stats).
func TestEnvoy_Corpus(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "policy.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no corpus cases: %v", err)
	}
	forEachBuild(t, func(t *testing.T, b build) {
		var requests, checks int
		for _, policyFile := range cases {
			dir := filepath.Dir(policyFile)
			t.Run(filepath.Base(dir), func(t *testing.T) {
				n, c := replayCase(t, b, dir)
				requests += n
				checks += c
			})
		}
		t.Logf("simulator and Envoy agree on %d checks over %d requests of %d cases (%s build)", checks, requests, len(cases), b.name)
	})
}

// replayCase runs one corpus case through the simulator and through Envoy and
// compares them; it returns the requests replayed and the checks that agreed.
func replayCase(t *testing.T, b build, dir string) (requests, checks int) {
	policyFile, _ := filepath.Abs(filepath.Join(dir, "policy.yaml"))
	requestsFile, _ := filepath.Abs(filepath.Join(dir, "requests.jsonl"))
	var sim struct {
		Requests []simResult `json:"requests"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "simulate", "-json", "-wasm", b.wasm, "-policy", policyFile, requestsFile)), &sim); err != nil {
		t.Fatal(err)
	}
	reqs := readCorpusRequests(t, requestsFile)
	if len(reqs) != len(sim.Requests) {
		t.Fatalf("%d requests, %d simulated", len(reqs), len(sim.Requests))
	}

	gw := envoyConfigGateway(t, b, policyFile, "0")

	// Verdicts the simulator counts per route, to compare with Envoy's stats
	// once all requests are answered (stats lag by the plugin's flush period).
	wantCounts := map[string]int64{}
	check := func(where, what string, agree bool, envoy, simulated any) {
		if !agree {
			t.Errorf("%s: %s: Envoy %v, simulator %v", where, what, envoy, simulated)
			return
		}
		checks++
	}
	// Offsets count from the first answer: the module may take a while on
	// its first request (V8 compiling it), and its buckets start there.
	var start time.Time
	for i, r := range reqs {
		want := &sim.Requests[i]
		where := want.Source + " " + want.Method + " " + want.Path
		at, _ := time.ParseDuration(r.At)
		if i > 0 {
			time.Sleep(time.Until(start.Add(at)))
		}
		resp, err := gw.send(r)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if i == 0 {
			start = time.Now().Add(-at)
		}
		requests++
		// envoy-config adds the route the plugin recorded to every response.
		route := resp.Header.Get("x-wasmgate-route")
		if route == "-" {
			route = ""
		}
		check(where, "route", route == want.Route, route, want.Route)
		check(where, "status", resp.Status == want.Status && (resp.Reply != nil) == want.Forwarded, resp.Status, want.Status)
		if want.Route != "" {
			wantCounts["wasmgate.route."+want.Route+".matched"]++
		}
		if want.Limit != nil {
			switch want.Limit.Verdict {
			case "limited":
				wantCounts["wasmgate.route."+want.Route+".rate_limited"]++
			case "shadow-limited":
				wantCounts["wasmgate.route."+want.Route+".shadow_limited"]++
			}
		}
		for _, h := range want.ResponseSet {
			check(where, "response header "+h[0], slices.Contains(resp.Header.Values(h[0]), h[1]), resp.Header.Values(h[0]), h[1])
		}
		if resp.Reply == nil || !want.Forwarded {
			continue
		}
		got := resp.Reply
		check(where, "upstream path", got.Path == want.UpstreamPath, got.Path, want.UpstreamPath)
		check(where, "upstream authority", got.Host == want.UpstreamAuthority, got.Host, want.UpstreamAuthority)
		destination := want.Destination
		if destination == "" {
			destination = "default-backend"
		}
		check(where, "destination", got.Service == destination, got.Service, destination)
		for _, h := range want.RequestSet {
			check(where, "request header "+h[0], slices.Contains(got.Headers[h[0]], h[1]), got.Headers[h[0]], h[1])
		}
		for _, name := range want.RequestRemoved {
			check(where, "removed request header "+name, len(got.Headers[name]) == 0, got.Headers[name], "removed")
		}
	}
	// Rate-limit and shadow-limit verdicts per route, from Envoy's stats.
	stats := gw.stats(t, `wasmgate\.route\..*\.(matched|rate_limited|shadow_limited)$`)
	got := map[string]int64{}
	for name, v := range stats {
		if _, plugin, ok := strings.Cut(name, "wasmgate.route."); ok && v > 0 {
			got["wasmgate.route."+plugin] = v
		}
	}
	for name := range merged(got, wantCounts) {
		check(filepath.Base(dir), name, got[name] == wantCounts[name], got[name], wantCounts[name])
	}
	return requests, checks
}

func merged(a, b map[string]int64) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func readCorpusRequests(t *testing.T, file string) []corpusRequest {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusRequest
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r corpusRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, r)
	}
	return out
}

// send sends a corpus request through the gateway.
func (gw *gateway) send(r corpusRequest) (*response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, gw.url+r.Path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = r.Authority
	if req.Host == "" {
		req.Host = "localhost"
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	return do(gw.client, req)
}

// envoyConfigGateway starts a demo upstream per cluster the policy in
// policyFile needs and an Envoy configured by `wasmgate envoy-config` that
// names the matched route in every response (-route-header), its listener
// on port ("0": kernel-picked).
func envoyConfigGateway(t *testing.T, b build, policyFile, port string) *gateway {
	t.Helper()
	args := []string{"-policy", policyFile, "-route-header", "-gateway-port", port}
	for _, line := range strings.Split(strings.TrimSpace(runCLI(t, "envoy-config", "-policy", policyFile, "-clusters")), "\n") {
		cluster, _, _ := strings.Cut(line, " ")
		args = append(args, upstreamFlag(t, cluster)...)
	}
	return awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.wasm, nil, args...)))
}
