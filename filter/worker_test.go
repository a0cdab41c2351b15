package filter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/proxyhost"
)

// These tests run the real modules on proxyhost, which, unlike the SDK's
// emulator, runs several VMs over one shared-data store as Envoy's worker
// threads do, and reconfigures a running VM.

// wasmLegs are the module legs of legs().
func wasmLegs() []leg {
	var l []leg
	for _, x := range legs() {
		if x.wasm != "" {
			l = append(l, x)
		}
	}
	return l
}

// moduleFor reads a leg's module; a missing module fails the test.
func moduleFor(t testing.TB, l leg) []byte {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "out", l.wasm))
	if err != nil {
		t.Fatalf("%s leg: %v (run `make build` to build the modules)", l.name, err)
	}
	return wasm
}

// workerHost is one proxy: a Host whose clock the test sets, and the
// compiled module its VMs (workers) run.
type workerHost struct {
	*proxyhost.Host
	module *proxyhost.Module
	now    atomic.Int64
}

func newWorkerHost(t testing.TB, l leg) *workerHost {
	t.Helper()
	w := &workerHost{}
	w.now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	h, err := proxyhost.NewHost(proxyhost.Options{
		Properties: map[string]string{"plugin_name": "wasmgate", "plugin_root_id": "wasmgate"},
		Clock:      func() time.Time { return time.Unix(0, w.now.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if w.module, err = h.Compile(moduleFor(t, l)); err != nil {
		t.Fatal(err)
	}
	w.Host = h
	return w
}

func (w *workerHost) worker(t testing.TB, config string) *proxyhost.VM {
	t.Helper()
	vm, err := w.NewVM(w.module, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Close() })
	return vm
}

// tick runs each VM's timer once, which flushes the plugin's counts to the
// host's metrics.
func tick(t testing.TB, vms ...*proxyhost.VM) {
	t.Helper()
	for _, vm := range vms {
		if err := vm.Tick(); err != nil {
			t.Fatal(err)
		}
	}
}

// serve runs one request through vm and returns the stream after its
// request headers; the stream is done.
func serve(t testing.TB, vm *proxyhost.VM, headers [][2]string) *proxyhost.HTTPStream {
	t.Helper()
	s, err := vm.NewHTTPStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestHeaders(headers, true); err != nil {
		t.Fatal(err)
	}
	status := "200"
	if lr := s.LocalResponse(); lr != nil {
		status = fmt.Sprint(lr.StatusCode)
	}
	if _, err := s.ResponseHeaders([][2]string{{":status", status}}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWorkers_ShareOneBucket(t *testing.T) {
	const workers, perWorker, budget = 2, 150, 20
	config := `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 20, "tokensPerFill": 1, "fillInterval": "1h"}}}]}`
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			vms := make([]*proxyhost.VM, workers)
			for i := range vms {
				vms[i] = w.worker(t, config)
			}
			var admitted, denied atomic.Int64
			var wg sync.WaitGroup
			for _, vm := range vms {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perWorker {
						if serve(t, vm, request("/x")).LocalResponse() == nil {
							admitted.Add(1)
						} else {
							denied.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			tick(t, vms...)
			if admitted.Load() != budget || denied.Load() != workers*perWorker-budget {
				t.Errorf("admitted %d, denied %d over %d workers; want exactly %d admitted",
					admitted.Load(), denied.Load(), workers, budget)
			}
			m, _ := w.Metric("wasmgate.route.api.rate_limited")
			if m.Value != uint64(denied.Load()) {
				t.Errorf("rate_limited metric = %d, want %d", m.Value, denied.Load())
			}
		})
	}
}

// TestWorkers_KeysShareNothing sends eight keys' requests from two workers
// at once: workers race to create each key's bucket, and every key still
// gets exactly its own budget. (The eight keys' home slots are at least
// KeyProbes apart in the default table, so no arrival order can make one
// key search past another's.)
func TestWorkers_KeysShareNothing(t *testing.T) {
	const workers, keys, perKey, budget = 2, 8, 12, 5
	config := `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 5, "tokensPerFill": 1, "fillInterval": "1h"},
	                "key": {"header": "x-api-key"}}}]}`
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			var admitted [keys]atomic.Int64
			var wg sync.WaitGroup
			var vms []*proxyhost.VM
			for range workers {
				vm := w.worker(t, config)
				vms = append(vms, vm)
				wg.Go(func() {
					for range perKey / workers {
						for k := range keys {
							if serve(t, vm, request("/x", [2]string{"x-api-key", fmt.Sprint("key-", k)})).LocalResponse() == nil {
								admitted[k].Add(1)
							}
						}
					}
				})
			}
			wg.Wait()
			tick(t, vms...)
			for k := range admitted {
				if got := admitted[k].Load(); got != budget {
					t.Errorf("key-%d: admitted %d of %d, want %d", k, got, perKey, budget)
				}
			}
			if m, _ := w.Metric("wasmgate.route.api.key_shared"); m.Value != 0 {
				t.Errorf("key_shared = %d, want 0", m.Value)
			}
		})
	}
}

func TestWorkers_Refill(t *testing.T) {
	config := `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 2, "tokensPerFill": 1, "fillInterval": "10s"}}}]}`
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			a, b := w.worker(t, config), w.worker(t, config)
			admitted := func(vm *proxyhost.VM) bool { return serve(t, vm, request("/x")).LocalResponse() == nil }
			if !admitted(a) || !admitted(b) {
				t.Fatal("a full bucket of 2 denied one of the first 2 requests")
			}
			s := serve(t, a, request("/x"))
			if s.LocalResponse() == nil {
				t.Fatal("third request admitted from an empty bucket")
			}
			if got, _ := s.LocalResponse().Headers.Get("retry-after"); got != "10" {
				t.Errorf("retry-after = %q, want 10", got)
			}
			w.now.Add(int64(9 * time.Second))
			if admitted(b) {
				t.Fatal("admitted 9s into a 10s fill interval")
			}
			w.now.Add(int64(time.Second))
			if !admitted(b) || admitted(a) {
				t.Fatal("want exactly one token after one fill interval")
			}
		})
	}
}

func TestWorkers_Reconfigure(t *testing.T) {
	const good2 = `{"routes": [{"name": "v2", "match": [{"uri": {"prefix": "/"}}],
	  "headers": {"request": {"set": {"x-policy": "v2"}}}}]}`
	const bad = `{"routes": [{"name": "v3", "match": [{"uri": {"prefx": "/"}}]}]}`
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			vm := w.worker(t, seedPolicy)
			check := func(when, wantPath, wantPolicy string) {
				t.Helper()
				s := serve(t, vm, request("/products/7"))
				if got, _ := s.Request().Get(":path"); got != wantPath {
					t.Errorf("%s: :path = %q, want %q", when, got, wantPath)
				}
				if got, _ := s.Request().Get("x-policy"); got != wantPolicy {
					t.Errorf("%s: x-policy = %q, want %q", when, got, wantPolicy)
				}
			}
			check("seed policy", "/7", "")
			// A stream started under the seed policy keeps it.
			inflight, err := vm.NewHTTPStream()
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := vm.Reconfigure([]byte(bad)); ok || !errors.Is(err, proxyhost.ErrStartFailed) {
				t.Fatalf("Reconfigure(bad) = %v, %v; want refused", ok, err)
			}
			want := invalidPolicyPrefix + `routes[0].match[0].uri: unknown field "prefx"; known fields: exact, prefix, regex, pathPrefix`
			if logs := w.Logs(proxyhost.LogCritical); len(logs) != 1 || logs[0] != want {
				t.Errorf("critical logs = %q, want [%q]", logs, want)
			}
			check("after a refused policy", "/7", "")
			if ok, err := vm.Reconfigure([]byte(good2)); !ok || err != nil {
				t.Fatalf("Reconfigure(good) = %v, %v; want accepted", ok, err)
			}
			check("after policy v2", "/products/7", "v2")
			if _, err := inflight.RequestHeaders(request("/products/8"), true); err != nil {
				t.Fatal(err)
			}
			if got, _ := inflight.Request().Get(":path"); got != "/8" {
				t.Errorf("in-flight stream: :path = %q, want the seed policy's /8", got)
			}
		})
	}
}

// TestWorkers_HostCalls pins the host calls of one seed request, the cost
// that dominates the plugin's time in Envoy (about 1.2 µs each): one read of
// the request headers; :path, x-envoy-original-path, x-forwarded-proto and
// the hint written; the route recorded for access logs; x-served-by written
// on the response. Counts are flushed on ticks, not per request, and absent
// headers are not removed.
func TestWorkers_HostCalls(t *testing.T) {
	const want = 7
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			vm := w.worker(t, seedPolicy)
			serve(t, vm, request("/products/1", [2]string{"x-user-id", "warm-up"}))
			before, beforeByName := w.HostCalls(), w.HostCallsByName()
			const n = 100
			for i := range n {
				serve(t, vm, request(fmt.Sprint("/products/", i), [2]string{"x-user-id", fmt.Sprint("user-", i)}))
			}
			if got := (w.HostCalls() - before) / n; got != want {
				byName := w.HostCallsByName()
				for name, c := range beforeByName {
					byName[name] -= c
				}
				t.Errorf("host calls per request = %d, want %d; over %d requests: %v", got, want, n, byName)
			}
		})
	}
}

// TestWorkers_LogRequests turns on the per-request debug line and checks
// what it says for a rewritten, routed and limited request.
func TestWorkers_LogRequests(t *testing.T) {
	config := strings.Replace(seedPolicy, `{"routes": [{`, `{"logRequests": true, "routes": [{`, 1)
	config = strings.Replace(config, `"overrideHeader": "x-canary"}`,
		`"overrideHeader": "x-canary"}, "rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1h"}}`, 1)
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			w := newWorkerHost(t, l)
			vm := w.worker(t, config)
			for range 2 {
				serve(t, vm, request("/products/7?q=1", [2]string{"x-canary", "product-service-v2"}))
			}
			serve(t, vm, request("/orders"))
			want := []string{
				`wasmgate: request "/products/7?q=1" route=products path="/7?q=1" destination="product-service-v2" (override) limit=allowed remaining=0`,
				`wasmgate: request "/products/7?q=1" route=products path="/7?q=1" destination="product-service-v2" (override) limit=denied retry_after_ns=3600000000000`,
				`wasmgate: request "/orders" route=-`,
			}
			if got := w.Logs(proxyhost.LogDebug); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("debug logs:\n%q\nwant\n%q", got, want)
			}
		})
	}
}
