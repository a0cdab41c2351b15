package istio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/test"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wasm"

	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
)

const (
	v1Host = "product-service.default.svc.cluster.local"
	v2Host = "product-service-v2.default.svc.cluster.local"
	// Timeouts: V8 compiles the module once per worker, which takes seconds
	// for the upstream-Go build on a busy machine.
	startTimeout  = 120 * time.Second
	pushTimeout   = 30 * time.Second
	requestTimout = 10 * time.Second
)

// TestIstio_Gateway runs, for each build, the objects `wasmgate render`
// writes for testdata/policy.json through Istio's discovery server into a
// real Envoy acting as the ingress gateway, and checks the seed scenario
// through the gateway istiod generated.
func TestIstio_Gateway(t *testing.T) {
	harness.EnvoyBinary(t)
	// Istio's own switches for the filters only istio-proxy has (doc.go).
	test.SetForTest(t, &features.MetadataExchange, false)
	test.SetForTest(t, &features.ALPNFilter, false)
	registry := harness.StartRegistry(t)
	v1, v2 := startUpstream(t, v1Host), startUpstream(t, v2Host)
	for _, b := range harness.Builds("") {
		t.Run(b.Name, func(t *testing.T) {
			harness.RequireModule(t, b)
			testGateway(t, b, registry, v1, v2)
		})
	}
}

func testGateway(t *testing.T, b harness.Build, registry string, v1, v2 upstream) {
	begin := time.Now()
	policyA, err := os.ReadFile(filepath.Join("testdata", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	mg := startMeshGateway(t, b, registry, policyA, upstreamConfigs(t, v1, v2))
	gw, rl, istiod, ref := mg.gw, mg.rl, mg.istiod, mg.ref
	render := func(policy []byte) string { return mg.render(t, policy) }
	t.Logf("istiod, relay and envoy up in %v", time.Since(begin).Round(time.Millisecond))

	t.Run("Envoy gets the Wasm filter, not the deny-all fallback", func(t *testing.T) {
		ext := await(t, rl, pushTimeout, "ECDS resource", func(r *relay) (sentExtension, bool) {
			for _, e := range r.extensions {
				if strings.Contains(e.name, "wasmgate") {
					return e, true
				}
			}
			return sentExtension{}, false
		})
		if ext.typeURL != wasmFilterType {
			t.Fatalf("ECDS %s: %s, want %s (%s is Istio's fallback when the module cannot be fetched)", ext.name, ext.typeURL, wasmFilterType, rbacFilterType)
		}
		var w wasmfilter.Wasm
		if err := ext.config.GetTypedConfig().UnmarshalTo(&w); err != nil {
			t.Fatal(err)
		}
		file := w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename()
		module, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("code is not a local file: %v (%v)", err, w.GetConfig().GetVmConfig().GetCode())
		}
		want, err := os.ReadFile(b.Wasm)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(module, want) {
			t.Errorf("the module Istio's cache wrote (%d bytes) is not %s (%d bytes)", len(module), b.Wasm, len(want))
		}
		t.Logf("ECDS %s: %s, module %s", ext.name, ext.typeURL, file)
	})

	t.Run("Envoy accepts all istiod sends", func(t *testing.T) {
		rl.mu.Lock()
		defer rl.mu.Unlock()
		for _, n := range rl.nacks {
			t.Errorf("envoy refused %s: %s", n.GetTypeUrl(), n.GetErrorDetail().GetMessage())
		}
		if len(rl.httpFilters) == 0 {
			t.Fatal("no listener with an HTTP connection manager was sent")
		}
		for name, filters := range rl.httpFilters {
			t.Logf("listener %s: HTTP filters %v", name, filters)
			for _, f := range filters {
				if strings.HasPrefix(f, "istio.") {
					t.Errorf("listener %s has istio-proxy's filter %s", name, f)
				}
			}
		}
	})

	t.Run("rewrite", func(t *testing.T) {
		r := gw.get(t, "/products/123?x=1", map[string]string{"x-internal-debug": "1"})
		if r.status != http.StatusOK || r.reply.Service != v1Host && r.reply.Service != v2Host {
			t.Fatalf("status %d from %q, want 200 from product-service", r.status, r.reply.Service)
		}
		if r.reply.Path != "/123?x=1" {
			t.Errorf("upstream path %q, want /123?x=1", r.reply.Path)
		}
		if got := r.reply.Headers["x-forwarded-proto"]; len(got) != 1 || got[0] != "https" {
			t.Errorf("x-forwarded-proto %q, want https", got)
		}
		if got, ok := r.reply.Headers["x-internal-debug"]; ok {
			t.Errorf("x-internal-debug reached the upstream: %q", got)
		}
		if got := r.header.Get("x-served-by"); got != r.reply.Service {
			t.Errorf("x-served-by %q, but %q answered", got, r.reply.Service)
		}
	})

	t.Run("split 90/10 through the VirtualService", func(t *testing.T) {
		const n = 2000
		// Three standard deviations of a binomial share of 10% over n.
		tolerance := 3 * 100 * sqrt(0.1*0.9/n)
		counts := gw.count(t, n, 8, func(int) (string, map[string]string) { return "/products/1", nil })
		share := 100 * float64(counts[v2Host]) / n
		t.Logf("split: %d requests, %v: canary %.2f%% (want 10 ± %.2f)", n, counts, share, tolerance)
		if counts[v1Host]+counts[v2Host] != n || share < 10-tolerance || share > 10+tolerance {
			t.Errorf("canary share %.2f%% of %v, want 10 ± %.2f", share, counts, tolerance)
		}
	})

	t.Run("sticky users", func(t *testing.T) {
		seen := map[string]int{}
		for u := range 40 {
			user := map[string]string{"x-user-id": "user-" + strconv.Itoa(u)}
			first := gw.get(t, "/products/1", user).reply.Service
			for range 4 {
				if got := gw.get(t, "/products/1", user).reply.Service; got != first {
					t.Fatalf("user-%d reached %s, then %s", u, first, got)
				}
			}
			seen[first]++
		}
		t.Logf("40 sticky users × 5 requests: %v", seen)
		if len(seen) != 2 {
			t.Errorf("40 users reached %v, want both services", seen)
		}
	})

	t.Run("tester override", func(t *testing.T) {
		for i := range 20 {
			h := map[string]string{"x-canary": v2Host, "x-user-id": "user-" + strconv.Itoa(i)}
			if got := gw.get(t, "/products/1", h).reply.Service; got != v2Host {
				t.Fatalf("x-canary %s: reached %s", v2Host, got)
			}
		}
	})

	t.Run("subsets through a DestinationRule", func(t *testing.T) {
		const host = "product.default.svc.cluster.local"
		for subset, want := range map[string]string{"v1": v1Host, "v2": v2Host} {
			hint := host + "|" + subset
			for range 10 {
				r := gw.get(t, "/subsets/1", map[string]string{"x-canary": hint})
				if r.status != http.StatusOK || r.reply.Service != want {
					t.Fatalf("x-canary %s: status %d from %q, want %s", hint, r.status, r.reply.Service, want)
				}
				if got := r.reply.Headers["x-route-to"]; len(got) != 1 || got[0] != hint {
					t.Errorf("hint upstream %q, want %q", got, hint)
				}
			}
		}
		counts := gw.count(t, 200, 4, func(int) (string, map[string]string) { return "/subsets/1", nil })
		t.Logf("subsets 50/50, 200 requests: %v", counts)
		if counts[v1Host] < 70 || counts[v2Host] < 70 {
			t.Errorf("subsets 50/50: %v, want each over 70 of 200 (7 σ below 100)", counts)
		}
	})

	t.Run("a client cannot set the hint", func(t *testing.T) {
		r := gw.get(t, "/elsewhere", map[string]string{"x-route-to": v2Host})
		if r.status != http.StatusNotFound {
			t.Errorf("unmatched request with a forged hint: status %d from %q, want the VirtualService's 404", r.status, r.reply.Service)
		}
	})

	t.Run("route-table features", func(t *testing.T) {
		testRouteTable(t, b, gw, v1)
	})

	// Policy b: the rate limit of 20 requests, and x-policy: b. It reaches the
	// running Envoy by an update of the WasmPlugin in istiod (ECDS).
	policyB := bytes.ReplaceAll(policyA, []byte(`"x-policy": "a"`), []byte(`"x-policy": "b"`))
	policyB = bytes.Replace(policyB, []byte(`"split": {"hintHeader": "x-route-to", "stickyBy"`),
		[]byte(`"rateLimit": {"tokenBucket": {"maxTokens": 20, "tokensPerFill": 1, "fillInterval": "1h"}},
  "split": {"hintHeader": "x-route-to", "stickyBy"`), 1)
	pid := gw.Cmd.Process.Pid

	t.Run("policy update over ECDS", func(t *testing.T) {
		pushed := time.Now()
		updateWasmPlugin(t, istiod, render(policyB))
		ext := await(t, rl, pushTimeout, "ECDS update", func(r *relay) (sentExtension, bool) {
			for _, e := range r.extensions {
				if strings.Contains(e.name, "wasmgate") && e.at.After(pushed) {
					return e, true
				}
			}
			return sentExtension{}, false
		})
		if ext.typeURL != wasmFilterType {
			t.Fatalf("ECDS update: %s, want %s", ext.typeURL, wasmFilterType)
		}
		switched := gw.awaitPolicy(t, "b")
		t.Logf("WasmPlugin updated → ECDS sent in %v → policy b served in %v", ext.at.Sub(pushed).Round(time.Millisecond), switched.Sub(pushed).Round(time.Millisecond))
	})

	t.Run("token bucket across both workers", func(t *testing.T) {
		before := gw.workerConnections(t)
		statuses := gw.burst(t, 60, "/products/1")
		after := gw.workerConnections(t)
		t.Logf("limit 20 (no refill): 60 requests on fresh connections → %v; connections per worker %v → %v", statuses, before, after)
		if statuses[http.StatusOK] != 20 || statuses[http.StatusTooManyRequests] != 40 {
			t.Errorf("statuses %v, want 20 × 200 and 40 × 429", statuses)
		}
		for w := range after {
			if after[w] <= before[w] {
				t.Errorf("worker %d took no connection of the burst: %v → %v", w, before, after)
			}
		}
	})

	t.Run("invalid policy refused, previous kept", func(t *testing.T) {
		invalid := strings.Replace(render(policyB), "maxTokens: 20", "maxTokens: -1", 1)
		pushed := time.Now()
		updateWasmPlugin(t, istiod, invalid)
		nack := await(t, rl, pushTimeout, "NACK", func(r *relay) (string, bool) {
			for _, n := range r.nacks {
				if n.GetTypeUrl() == extensionConfigType {
					return n.GetErrorDetail().GetMessage(), true
				}
			}
			return "", false
		})
		t.Logf("NACK after %v: %q", time.Since(pushed).Round(time.Millisecond), nack)
		for range 10 {
			if r := gw.get(t, "/probe", nil); r.header.Get("x-policy") != "b" {
				t.Fatalf("after the NACK: x-policy %q, want b", r.header.Get("x-policy"))
			}
		}
		if r := gw.get(t, "/products/1", nil); r.status != http.StatusTooManyRequests {
			t.Errorf("after the NACK: /products status %d, want 429 (policy b's bucket is empty)", r.status)
		}
	})

	// Last, as it leaves the gateway refusing everything: what FAIL_CLOSE
	// does when the agent cannot fetch the module (docs/deploy.md).
	t.Run("unpullable image refuses all traffic", func(t *testing.T) {
		missingRef := registry + "/wasmgate/missing:e2e"
		unpullable := strings.Replace(render(policyB), "url: oci://"+ref, "url: oci://"+missingRef, 1)
		if !strings.Contains(unpullable, missingRef) {
			t.Fatalf("no url oci://%s in the rendered WasmPlugin", ref)
		}
		pushed := time.Now()
		updateWasmPlugin(t, istiod, unpullable)
		ext := await(t, rl, pushTimeout, "ECDS update", func(r *relay) (sentExtension, bool) {
			for _, e := range r.extensions {
				if strings.Contains(e.name, "wasmgate") && e.at.After(pushed) {
					return e, true
				}
			}
			return sentExtension{}, false
		})
		if ext.typeURL != rbacFilterType {
			t.Fatalf("ECDS for an unpullable image: %s, want Istio's fallback %s", ext.typeURL, rbacFilterType)
		}
		deadline := time.Now().Add(pushTimeout)
		for {
			r := gw.get(t, "/probe", nil)
			if r.status == http.StatusForbidden {
				body := r.body
				t.Logf("unpullable image: ECDS %s after %v; requests get %d %q", ext.typeURL, ext.at.Sub(pushed).Round(time.Millisecond), r.status, body)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %d after %v, want 403 from the deny-all fallback", r.status, pushTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	select {
	case <-gw.Exited:
		t.Errorf("envoy exited: %v", gw.WaitErr)
	default:
		if gw.Cmd.Process.Pid != pid {
			t.Errorf("envoy pid %d → %d", pid, gw.Cmd.Process.Pid)
		}
	}
	t.Logf("build %s: %v in all", b.Name, time.Since(begin).Round(time.Millisecond))
}

// meshGateway is one build's module in the registry, istiod serving the
// objects rendered for a policy, the relay doing istio-agent's part, and the
// gateway Envoy.
type meshGateway struct {
	gw          *gatewayProcess
	rl          *relay
	istiod      *xds.FakeDiscoveryServer
	ref, digest string
	flags       []string
}

// startMeshGateway pushes b's module to registry, renders policy for a new
// Gateway (render flags beside), and starts istiod on those objects plus
// configs under the default mesh config (doc.go: less what only
// istio-proxy serves), the relay and the gateway Envoy.
func startMeshGateway(t *testing.T, b harness.Build, registry string, policy []byte, configs string, flags ...string) *meshGateway {
	t.Helper()
	mg := &meshGateway{ref: registry + "/wasmgate/" + b.Name + ":e2e", flags: flags}
	mg.digest = strings.TrimSpace(harness.RunCLI(t, "image", "push", "-wasm", b.Wasm, "-ref", mg.ref))
	rendered := mg.render(t, policy)
	t.Logf("rendered:\n%s", rendered)

	m := mesh.DefaultMeshConfig()
	m.EnableTracing = false
	m.EnableAutoMtls = wrapperspb.Bool(false)
	m.DefaultProviders = &meshconfig.MeshConfig_DefaultProviders{}
	mg.istiod = xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString: rendered + "---\n" + configs,
		MeshConfig:   m,
		ListenerBuilder: func() (net.Listener, error) {
			return net.Listen("tcp", "127.0.0.1:0")
		},
	})
	// istio-agent's module cache; NewLocalFileCache does not create its dir.
	cache := wasm.NewLocalFileCache(t.TempDir(), wasm.Options{InsecureRegistries: sets.New(registry)})
	t.Cleanup(cache.Cleanup)
	mg.rl = startRelay(t, mg.istiod.Listener.Addr().String(), cache)
	mg.gw = startEnvoy(t, mg.rl)
	return mg
}

// render runs `wasmgate render` for policy and the gateway's image, with
// the flags the gateway was started with. The Gateway's port is 8080; the
// relay binds the listener on a free one.
func (mg *meshGateway) render(t *testing.T, policy []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, policy, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"render", "-policy", file, "-ref", mg.ref, "-digest", mg.digest, "-new-gateway", "-gateway-port", "8080"}, mg.flags...)
	return harness.RunCLI(t, args...)
}

// testRouteTable checks the route-table features of testdata/policy.json
// through the gateway istiod generated from the rendered VirtualService:
// timeout, retries and a CORS preflight. Their routes share v1 with the
// routes without them.
func testRouteTable(t *testing.T, b harness.Build, gw *gatewayProcess, v1 upstream) {
	t.Run("timeout", func(t *testing.T) {
		r := gw.get(t, "/slow/"+b.Name, nil)
		if r.status != http.StatusGatewayTimeout {
			t.Fatalf("route with timeout 300ms, upstream taking %v: status %d (%q), want 504", slowFor, r.status, r.body)
		}
		t.Logf("timeout 300ms, upstream taking %v: status %d", slowFor, r.status)
	})
	t.Run("retries", func(t *testing.T) {
		// The upstream fails the first 3 attempts: Istio's default retries
		// (2) give up after 3 attempts, the route's (3) succeed on the 4th.
		path := "/flaky/3/" + b.Name
		r := gw.get(t, path, nil)
		if n := v1.attempts.of(path); r.status != http.StatusOK || n != 4 {
			t.Fatalf("GET %s: status %d after %d attempts, want 200 after 4", path, r.status, n)
		}
		t.Logf("retries.attempts 3, first 3 attempts 503: status %d after %d attempts", r.status, v1.attempts.of(path))
	})
	t.Run("cors preflight", func(t *testing.T) {
		path := "/cors/" + b.Name
		req, err := http.NewRequest(http.MethodOptions, gw.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := gw.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]string{
			"Access-Control-Allow-Origin":  "https://app.example",
			"Access-Control-Allow-Methods": "GET,PUT",
			"Access-Control-Allow-Headers": "x-token",
			"Access-Control-Max-Age":       "60",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("preflight: %s = %q, want %q (status %d, headers %v)", k, got, v, resp.StatusCode, resp.Header)
			}
		}
		if n := v1.attempts.of(path); resp.StatusCode != http.StatusOK || n != 0 {
			t.Errorf("preflight: status %d, %d requests reached the upstream; want 200 from the proxy, none", resp.StatusCode, n)
		}
		t.Logf("preflight: status %d, allow-origin %q, allow-methods %q, max-age %q", resp.StatusCode,
			resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Methods"), resp.Header.Get("Access-Control-Max-Age"))
	})
}

func sqrt(x float64) float64 {
	z := x
	for range 50 {
		z = (z + x/z) / 2
	}
	return z
}

// upstreamConfigs renders testdata/upstreams.yaml for the two upstreams.
func upstreamConfigs(t *testing.T, v1, v2 upstream) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "upstreams.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v1h, v1p, _ := net.SplitHostPort(v1.addr)
	v2h, v2p, _ := net.SplitHostPort(v2.addr)
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{"V1Host": v1h, "V1Port": v1p, "V2Host": v2h, "V2Port": v2p}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// updateWasmPlugin replaces the WasmPlugin in istiod's store with the one in
// the rendered objects, as kubectl apply would.
func updateWasmPlugin(t *testing.T, istiod *xds.FakeDiscoveryServer, rendered string) {
	t.Helper()
	configs, _, err := crd.ParseInputs(rendered)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		if c.GroupVersionKind.Kind == "WasmPlugin" {
			if _, err := istiod.Store().Update(c); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no WasmPlugin in the rendered objects")
}

// gatewayProcess is a running Envoy connected to the relay.
type gatewayProcess struct {
	*harness.Envoy
	url    string // the gateway listener
	admin  string
	client *http.Client
}

// startEnvoy starts Envoy with the relay as its ADS server and waits until
// the gateway serves; it fails at once when Envoy refuses what istiod sent.
func startEnvoy(t *testing.T, rl *relay) *gatewayProcess {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "bootstrap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	host, relayPort, _ := net.SplitHostPort(rl.addr)
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]string{"Relay": rl.addr, "RelayHost": host, "RelayPort": relayPort}); err != nil {
		t.Fatal(err)
	}
	gw := &gatewayProcess{client: &http.Client{Timeout: requestTimout}}
	gw.Envoy = harness.StartEnvoy(t, cfg.String(), "--log-level", "warn", "--component-log-level", "wasm:info,config:info")
	t.Cleanup(gw.client.CloseIdleConnections)
	// Ready when the gateway answers a policy route through the upstream.
	gw.Await(t, startTimeout, 200*time.Millisecond, "serving /probe", func() bool {
		rl.mu.Lock()
		for _, n := range rl.nacks {
			t.Errorf("envoy refused %s: %s", n.GetTypeUrl(), n.GetErrorDetail().GetMessage())
		}
		rl.mu.Unlock()
		if t.Failed() {
			t.FailNow()
		}
		if gw.admin = gw.AdminURL(); gw.admin != "" && gw.url == "" {
			gw.url = gw.listenerURL()
		}
		if gw.url == "" {
			return false // not bound yet
		}
		resp, err := gw.client.Get(gw.url + "/probe")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return gw
}

// listenerURL returns the gateway listener's URL from the admin interface,
// or "" before it is bound.
func (gw *gatewayProcess) listenerURL() string {
	ls, err := harness.Listeners(gw.client, gw.admin)
	if err != nil {
		return ""
	}
	for _, l := range ls {
		if host, port, _ := net.SplitHostPort(l.Address); host == "127.0.0.1" && port != "0" {
			return "http://" + l.Address
		}
	}
	return ""
}

// response is one answer through the gateway.
type response struct {
	status int
	header http.Header
	body   string
	reply  reply
}

func (gw *gatewayProcess) do(client *http.Client, path string, headers map[string]string) (response, error) {
	req, err := http.NewRequest(http.MethodGet, gw.url+path, nil)
	if err != nil {
		return response{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r.reply); err != nil {
			return r, fmt.Errorf("%s: body %q: %v", path, body, err)
		}
	}
	return r, nil
}

func (gw *gatewayProcess) get(t *testing.T, path string, headers map[string]string) response {
	t.Helper()
	r, err := gw.do(gw.client, path, headers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// count sends n requests from workers goroutines and counts the services
// that answered.
func (gw *gatewayProcess) count(t *testing.T, n, workers int, req func(i int) (string, map[string]string)) map[string]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		wg     sync.WaitGroup
		errs   = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				path, h := req(i)
				r, err := gw.do(gw.client, path, h)
				if err != nil || r.status != http.StatusOK {
					errs <- fmt.Errorf("request %d: status %d: %v", i, r.status, err)
					return
				}
				mu.Lock()
				counts[r.reply.Service]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return counts
}

// burst sends n requests at once, each on a new connection, and counts the
// statuses.
func (gw *gatewayProcess) burst(t *testing.T, n int, path string) map[int]int {
	t.Helper()
	client := &http.Client{Timeout: requestTimout, Transport: &http.Transport{DisableKeepAlives: true}}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := gw.do(client, path, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return statuses
}

// awaitPolicy waits until fresh connections (both workers) get x-policy
// value on /probe, and returns when.
func (gw *gatewayProcess) awaitPolicy(t *testing.T, value string) time.Time {
	t.Helper()
	client := &http.Client{Timeout: requestTimout, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(pushTimeout)
	for streak := 0; streak < 20; {
		r, err := gw.do(client, "/probe", nil)
		if err == nil && r.header.Get("x-policy") == value {
			streak++
			continue
		}
		streak = 0
		if time.Now().After(deadline) {
			t.Fatalf("x-policy %q (%v) after %v, want %q", r.header.Get("x-policy"), err, pushTimeout, value)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Now()
}

// workerConnections returns the gateway listener's accepted connections per
// worker thread, from Envoy's per-worker listener stats.
func (gw *gatewayProcess) workerConnections(t *testing.T) [2]int {
	t.Helper()
	resp, err := gw.client.Get(gw.admin + "/stats?filter=worker_.*downstream_cx_total")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out [2]int
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		// The gateway is the only listener on 127.0.0.1 (stats name the
		// configured address, 127.0.0.1_0).
		if !ok || !strings.HasPrefix(name, "listener.127.0.0.1_") {
			continue
		}
		for w := range out {
			if strings.HasSuffix(name, ".worker_"+strconv.Itoa(w)+".downstream_cx_total") {
				out[w], _ = strconv.Atoi(value)
				found++
			}
		}
	}
	if found != 2 {
		t.Fatalf("no per-worker stats of the gateway listener in:\n%s", body)
	}
	return out
}
