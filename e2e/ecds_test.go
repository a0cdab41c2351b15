package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasm "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// ecdsFilter is the ECDS resource name of the plugin's filter, which is also
// the filter's name in the listener.
const ecdsFilter = "wasmgate"

// TestEnvoy_ECDSReload delivers the plugin as istiod and istio-agent do: the
// module goes through a real registry and is verified by digest, and the
// filter configuration reaches a running Envoy over ECDS. Policy v1 is live
// at start; v2 replaces it under load without a restart and without failing
// a request; an invalid v3 is refused (NACK) and v2 stays in force.
func TestEnvoy_ECDSReload(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		begin := time.Now()
		module := fetchModule(t, publishModule(t, harness.StartRegistry(t), b), t.TempDir())
		t.Logf("module pushed, pulled by digest and verified in %v", time.Since(begin).Round(time.Millisecond))

		xds := startXDS(t)
		xds.push(t, "1", wasmgateFilter(t, module, policyVersion(t, "v1")))
		gw := awaitGateway(t, runEnvoy(t, ecdsBootstrap(t, xds.addr)))
		if r := xds.awaitReply(t, "1", requestTimeout); r.GetErrorDetail() != nil {
			t.Fatalf("envoy refused policy v1: %s", r.GetErrorDetail().GetMessage())
		}
		if got := policyOf(gw.mustGet(t, "/products/1", nil)); got != "v1" {
			t.Fatalf("x-policy upstream = %q, want v1", got)
		}
		start := gw.process(t)

		t.Run("update under load", func(t *testing.T) {
			before := gw.ecdsStats(t)
			samples := make(chan [][]sample, 1)
			stop := make(chan struct{})
			stopLoad := sync.OnceFunc(func() { close(stop) })
			defer stopLoad()
			go func() { samples <- gw.loadLoop(8, 5*time.Second, "/products/1", stop) }()
			time.Sleep(time.Second) // v1 traffic first
			pushed := time.Now()
			xds.push(t, "2", wasmgateFilter(t, module, policyVersion(t, "v2")))
			ack := xds.awaitReply(t, "2", requestTimeout)
			acked := time.Now()
			if ack.GetErrorDetail() != nil {
				t.Fatalf("envoy refused policy v2: %s", ack.GetErrorDetail().GetMessage())
			}
			// config_reload counts updates every worker has received.
			gw.awaitECDS(t, before, map[string]int64{"update_success": 1, "config_reload": 1})
			time.Sleep(time.Second) // v2 traffic after the switch
			stopLoad()
			checkSwitch(t, <-samples, pushed, acked)
			t.Logf("v2 pushed → ACK in %v", acked.Sub(pushed).Round(time.Millisecond))
		})

		t.Run("invalid policy refused", func(t *testing.T) {
			before := gw.ecdsStats(t)
			invalid := policyVersion(t, "v3")
			seedRoute(invalid)["rateLimit"] = bucketLimit(20, 1, "abc")
			pushed := time.Now()
			xds.push(t, "3", wasmgateFilter(t, module, invalid))
			nack := xds.awaitReply(t, "3", requestTimeout)
			if nack.GetErrorDetail() == nil {
				t.Fatalf("envoy accepted an invalid policy (ACK of version %q)", nack.GetVersionInfo())
			}
			msg := nack.GetErrorDetail().GetMessage()
			t.Logf("NACK after %v: version_info %q, error_detail code %d message %q",
				time.Since(pushed).Round(time.Millisecond), nack.GetVersionInfo(), nack.GetErrorDetail().GetCode(), msg)
			if nack.GetVersionInfo() != "2" {
				t.Errorf("NACK version_info = %q, want %q, the version still in force", nack.GetVersionInfo(), "2")
			}
			// Envoy's own words (the plugin's reason is in its log, below).
			if want := "Unable to create Wasm plugin " + ecdsFilter; msg != want {
				t.Errorf("NACK message %q, want %q", msg, want)
			}
			// Envoy 1.40 counts config_reload for the refused update too: it
			// has handed the providers the new configuration when the plugin
			// fails, so that counter proves nothing here.
			gw.awaitECDS(t, before, map[string]int64{"update_rejected": 1, "config_fail": 1, "update_success": 0})
			const wantLog = `wasmgate: invalid policy: routes[0].rateLimit.tokenBucket.fillInterval: "abc" is not a duration`
			if !strings.Contains(gw.Log(), wantLog) {
				t.Errorf("envoy log lacks %q", wantLog)
			}
			// Fresh connections reach both workers.
			for _, r := range gw.many(t, 20, 4, true, "/products/1", nil) {
				if got := policyOf(r); got != "v2" {
					t.Fatalf("after the NACK: status %d, x-policy upstream %q, want 200 with v2", r.Status, got)
				}
			}
			if n := len(xds.repliesTo("3")); n != 1 {
				t.Errorf("envoy answered version 3 %d times, want one NACK: the refused version was sent again", n)
			}
		})

		// The process started is still the one serving (process fails the
		// test if it exited), in the same hot-restart epoch.
		end := gw.process(t)
		t.Logf("envoy pid %d, hot restart epoch %d, uptime %v → %v; ECDS counters %v",
			gw.Cmd.Process.Pid, end.epoch, start.uptime, end.uptime, gw.ecdsStats(t))
		if end.epoch != start.epoch {
			t.Errorf("hot restart epoch %d → %d", start.epoch, end.epoch)
		}
		// Uptime counts whole seconds: it must have grown with the wall clock,
		// not restarted from zero.
		if grown, wall := end.uptime-start.uptime, end.at.Sub(start.at); grown < wall.Truncate(time.Second)-time.Second {
			t.Errorf("uptime %v → %v over %v: want it to keep increasing", start.uptime, end.uptime, wall.Round(time.Millisecond))
		}
		t.Logf("build %s: %v in all", b.Name, time.Since(begin).Round(time.Millisecond))
	})
}

// policyVersion is the seed policy without its rate limit (the load would
// exhaust it), setting the request header x-policy to version.
func policyVersion(t *testing.T, version string) map[string]any {
	p := seedPolicy(t)
	route := seedRoute(p)
	delete(route, "rateLimit")
	route["headers"].(map[string]any)["request"].(map[string]any)["set"].(map[string]any)["x-policy"] = version
	return p
}

// policyOf returns the x-policy header the upstream received, "" if none
// answered.
func policyOf(r *response) string {
	if r.Reply == nil {
		return ""
	}
	return strings.Join(r.Reply.Headers["x-policy"], ",")
}

// wasmgateFilter is the ECDS resource istiod would send for a WasmPlugin
// once istio-agent has fetched the module to the local file module: the
// Wasm filter with policy as its plugin configuration.
func wasmgateFilter(t *testing.T, module string, policy map[string]any) *core.TypedExtensionConfig {
	t.Helper()
	text, err := json.Marshal(policy)
	if err != nil {
		t.Fatal(err)
	}
	configuration, err := anypb.New(wrapperspb.String(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	filter, err := anypb.New(&wasmfilter.Wasm{Config: &wasm.PluginConfig{
		Name:   ecdsFilter,
		RootId: "wasmgate",
		Vm: &wasm.PluginConfig_VmConfig{VmConfig: &wasm.VmConfig{
			VmId:    "wasmgate",
			Runtime: "envoy.wasm.runtime.v8",
			Code: &core.AsyncDataSource{Specifier: &core.AsyncDataSource_Local{
				Local: &core.DataSource{Specifier: &core.DataSource_Filename{Filename: module}},
			}},
		}},
		Configuration: configuration,
		// As WasmPlugin's default FAIL_CLOSE: a failed VM refuses requests.
		FailurePolicy: wasm.FailurePolicy_FAIL_CLOSED,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &core.TypedExtensionConfig{Name: ecdsFilter, TypedConfig: filter}
}

// ecdsBootstrap renders testdata/ecds-bootstrap.yaml for the demo upstreams
// and the control plane at xdsAddr.
func ecdsBootstrap(t *testing.T, xdsAddr string) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "ecds-bootstrap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type cluster struct {
		Name, Host, Port string
		GRPC             bool
	}
	var clusters []cluster
	add := func(name, addr string, grpc bool) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("cluster %s: %v", name, err)
		}
		clusters = append(clusters, cluster{Name: name, Host: host, Port: port, GRPC: grpc})
	}
	for _, name := range []string{"product-service", "product-service-v2", "default-backend"} {
		add(name, upstreams[name], false)
	}
	add("xds", xdsAddr, true)
	var out bytes.Buffer
	err = tmpl.Execute(&out, map[string]any{"Node": xdsNode, "Filter": ecdsFilter, "Clusters": clusters})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// published is an image in a registry, pinned by manifest digest, and the
// module it was built from.
type published struct {
	ref    string // repository@digest
	digest string // sha256:…
	wasm   []byte
}

// publishModule pushes b's module as a compat image with the wasmgate CLI,
// as `make push` does, to the registry at host.
func publishModule(t *testing.T, host string, b harness.Build) published {
	t.Helper()
	wasm, err := os.ReadFile(b.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	repo := host + "/wasmgate/" + b.Name
	digest := strings.TrimSpace(harness.RunCLI(t, "image", "push", "-wasm", b.Wasm, "-ref", repo+":e2e", "-variant", "compat"))
	return published{ref: repo + "@" + digest, digest: digest, wasm: wasm}
}

// fetchModule does istio-agent's part for p: pull by digest, check the
// manifest digest, the layout and the module bytes (wasmgate image check),
// then write the module into dir. It returns the module's path, which is
// what Envoy gets to load.
func fetchModule(t *testing.T, p published, dir string) string {
	t.Helper()
	want := fmt.Sprintf("%s: compat variant, manifest %s, module %d bytes\n", p.ref, p.digest, len(p.wasm))
	module := filepath.Join(dir, "pushed.wasm")
	if err := os.WriteFile(module, p.wasm, 0o444); err != nil {
		t.Fatal(err)
	}
	if got := harness.RunCLI(t, "image", "check", "-ref", p.ref, "-wasm", module); got != want {
		t.Fatalf("image check = %q, want %q", got, want)
	}
	path := filepath.Join(dir, strings.TrimPrefix(p.digest, "sha256:")+".wasm")
	if err := os.Rename(module, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// sample is one request of loadLoop.
type sample struct {
	start  time.Time
	end    time.Time
	status int
	policy string // x-policy as the upstream received it
	err    error
}

// loadLoop sends GET path through gw from workers goroutines, each over its
// own keep-alive connection, until stop is closed or limit has passed. It
// returns each worker's requests in order.
func (gw *gateway) loadLoop(workers int, limit time.Duration, path string, stop <-chan struct{}) [][]sample {
	deadline := time.Now().Add(limit)
	out := make([][]sample, workers)
	var group sync.WaitGroup
	for w := range out {
		group.Go(func() {
			transport := &http.Transport{}
			defer transport.CloseIdleConnections()
			client := &http.Client{Transport: transport, Timeout: requestTimeout}
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				s := sample{start: time.Now()}
				r, err := gw.get(client, path, nil)
				if err != nil {
					s.err = err
				} else {
					s.status, s.policy = r.Status, policyOf(r)
				}
				s.end = time.Now()
				out[w] = append(out[w], s)
			}
		})
	}
	group.Wait()
	return out
}

// switchGrace is how long after the ACK a request may still see the old
// policy: Envoy acknowledges once the main thread has the new configuration
// and hands it to the workers asynchronously.
const switchGrace = 500 * time.Millisecond

// checkSwitch asserts that every request of a loadLoop across the update
// pushed at pushed and acknowledged at acked succeeded, that requests
// answered before the push saw v1 and requests sent after the ACK (plus
// switchGrace) saw v2, and that no connection went back from v2 to v1.
func checkSwitch(t *testing.T, byWorker [][]sample, pushed, acked time.Time) {
	t.Helper()
	var total, v1, v2, inFlight int
	var lastV1, firstV2 time.Time
	for w, samples := range byWorker {
		seenV2 := false
		for i, s := range samples {
			total++
			if s.start.Before(pushed) && s.end.After(pushed) {
				inFlight++
			}
			switch {
			case s.err != nil:
				t.Errorf("worker %d request %d: %v", w, i, s.err)
				continue
			case s.status != http.StatusOK:
				t.Errorf("worker %d request %d: status %d", w, i, s.status)
				continue
			}
			switch s.policy {
			case "v1":
				v1++
				if s.start.After(lastV1) {
					lastV1 = s.start
				}
				if seenV2 {
					t.Errorf("worker %d request %d: v1 after v2 on one connection", w, i)
				}
				if s.start.After(acked.Add(switchGrace)) {
					t.Errorf("worker %d request %d: v1, started %v after the ACK", w, i, s.start.Sub(acked))
				}
			case "v2":
				v2++
				seenV2 = true
				if firstV2.IsZero() || s.start.Before(firstV2) {
					firstV2 = s.start
				}
				// A request sent just before the push may reach Envoy after
				// it (the client's clock starts before the bytes leave), so
				// only one answered before the push proves a policy applied
				// early.
				if s.end.Before(pushed) {
					t.Errorf("worker %d request %d: v2, answered %v before the push", w, i, pushed.Sub(s.end))
				}
			default:
				t.Errorf("worker %d request %d: x-policy %q, want v1 or v2", w, i, s.policy)
			}
		}
	}
	t.Logf("%d requests over %d connections, %d in flight at the push: %d v1, %d v2; "+
		"first v2 started %v after the push, last v1 %v after the ACK",
		total, len(byWorker), inFlight, v1, v2,
		firstV2.Sub(pushed).Round(time.Millisecond), lastV1.Sub(acked).Round(time.Millisecond))
	if v1 == 0 || v2 == 0 {
		t.Errorf("want requests under both policies, got %d v1 and %d v2", v1, v2)
	}
	if inFlight == 0 {
		t.Errorf("no request was in flight at the push")
	}
}

// envoyState is what tells one Envoy run from another: the hot-restart
// epoch, and the uptime at a time.
type envoyState struct {
	at     time.Time
	epoch  int64
	uptime time.Duration
}

// process returns the state of gw's Envoy, failing the test if the process
// has exited or the admin interface reports it not LIVE.
func (gw *gateway) process(t *testing.T) envoyState {
	t.Helper()
	select {
	case <-gw.Exited:
		t.Fatalf("envoy exited: %v", gw.WaitErr)
	default:
	}
	at := time.Now()
	// The uptime of /server_info is computed on request; the server.uptime
	// gauge only moves at each stats flush (every 5 s).
	_, body, err := gw.adminGet("/server_info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		State  string `json:"state"`
		Uptime string `json:"uptime_current_epoch"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("admin /server_info: %v: %s", err, body)
	}
	uptime, err := time.ParseDuration(info.Uptime)
	if err != nil || info.State != "LIVE" {
		t.Fatalf("admin /server_info: state %q, uptime %q", info.State, info.Uptime)
	}
	epoch, ok := gw.stats(t, `^server\.hot_restart_epoch$`)["server.hot_restart_epoch"]
	if !ok {
		t.Fatal("no server.hot_restart_epoch in /stats")
	}
	return envoyState{at: at, epoch: epoch, uptime: uptime}
}

// ecdsStats returns the ECDS counters of the plugin's filter (config_reload,
// config_fail, update_success, update_rejected, ...) by their short names.
func (gw *gateway) ecdsStats(t *testing.T) map[string]int64 {
	t.Helper()
	prefix := "extension_config_discovery.http_filter." + ecdsFilter + "."
	m := map[string]int64{}
	for name, v := range gw.stats(t, "^"+regexp.QuoteMeta(prefix)) {
		m[strings.TrimPrefix(name, prefix)] = v
	}
	return m
}

// awaitECDS waits until each ECDS counter of delta has grown by its value
// since before, and fails the test if one grows more or too late.
func (gw *gateway) awaitECDS(t *testing.T, before, delta map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(requestTimeout)
	for {
		now, done := gw.ecdsStats(t), true
		for name, d := range delta {
			if _, ok := now[name]; !ok {
				t.Fatalf("no ECDS counter %s in %v", name, now)
			}
			switch got := now[name] - before[name]; {
			case got > d:
				t.Fatalf("ECDS %s grew by %d, want %d (counters %v)", name, got, d, now)
			case got < d:
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ECDS counters %v, want %v more than %v", now, delta, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
