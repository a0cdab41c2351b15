package proxyhost

import (
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

func TestHTTPStream_RequestHeaders(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{
			Properties: map[string]string{"plugin_name": "wasmgate", "source.address": "10.0.0.1:1234"},
			Clock:      func() time.Time { return fixedNow },
		}, "cfg-1")
		tests := []struct {
			name    string
			path    string
			headers [][2]string
			prop    string // source.address for this stream only, if set
			want    Headers
		}{
			{
				name:    "every edit",
				path:    "/a",
				headers: [][2]string{{"X-Remove-Me", "x"}, {"x-keep", "1"}},
				want: Headers{
					{":path", "/a"}, {"x-keep", "1"}, {"x-config", "cfg-1"}, {"x-added", "1"},
					{"x-now", strconv.FormatInt(fixedNow.UnixNano(), 10)},
					{"x-source", "10.0.0.1:1234"}, {"x-plugin", "wasmgate"}, {"x-header-count", "7"},
				},
			},
			{
				name:    "path rewritten, add appends, stream property",
				path:    "/old",
				headers: [][2]string{{"x-rewrite", "/new?q=1"}, {"x-added", "0"}},
				prop:    "192.0.2.7:80",
				want: Headers{
					{":path", "/new?q=1"}, {"x-rewrite", "/new?q=1"}, {"x-added", "0"}, {"x-config", "cfg-1"},
					{"x-added", "1"}, {"x-now", strconv.FormatInt(fixedNow.UnixNano(), 10)},
					{"x-source", "192.0.2.7:80"}, {"x-plugin", "wasmgate"}, {"x-header-count", "8"},
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := mustStream(t, vm)
				if tt.prop != "" {
					s.SetProperty("source.address", tt.prop)
				}
				a, err := s.RequestHeaders(append([][2]string{{":path", tt.path}}, tt.headers...), true)
				if err != nil {
					t.Fatal(err)
				}
				if a != ActionContinue {
					t.Errorf("action = %v, want continue", a)
				}
				if got := s.Request(); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("request headers\n got %q\nwant %q", got, tt.want)
				}
				if s.LocalResponse() != nil {
					t.Errorf("unexpected local response %+v", s.LocalResponse())
				}
				if err := s.Done(); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

func TestHTTPStream_ResponseHeaders(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		if _, err := s.RequestHeaders([][2]string{{":path", "/"}}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResponseHeaders([][2]string{{":status", "200"}}, false); err != nil {
			t.Fatal(err)
		}
		want := Headers{{":status", "200"}, {"x-served-by", "testplugin"}}
		if got := s.Response(); !reflect.DeepEqual(got, want) {
			t.Errorf("response headers = %q, want %q", got, want)
		}
	})
}

func TestHTTPStream_LocalResponse(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		a, err := s.RequestHeaders([][2]string{{":path", "/deny"}}, true)
		if err != nil {
			t.Fatal(err)
		}
		if a != ActionPause {
			t.Errorf("action = %v, want pause", a)
		}
		want := &LocalResponse{StatusCode: 429, Body: []byte("denied"), Headers: Headers{{"retry-after", "1"}}, GRPCStatus: -1}
		if got := s.LocalResponse(); !reflect.DeepEqual(got, want) {
			t.Errorf("local response = %+v, want %+v", got, want)
		}
	})
}

func TestHTTPStream_Property(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		if _, ok := s.Property("source.address"); ok {
			t.Fatal("a property nobody set is there")
		}
		s.SetProperty("source.address", "10.0.0.1:5")
		if v, ok := s.Property("source.address"); !ok || v != "10.0.0.1:5" {
			t.Fatalf("Property = %q, %v", v, ok)
		}
	})
}

func TestHTTPStream_ForeignCalls(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		if _, err := s.RequestHeaders([][2]string{{":path", "/clear"}}, true); err != nil {
			t.Fatal(err)
		}
		want := []ForeignCall{{Name: "clear_route_cache", Status: StatusOK}}
		if got := s.ForeignCalls(); !reflect.DeepEqual(got, want) {
			t.Errorf("foreign calls = %+v, want %+v", got, want)
		}
		if v, ok := s.Request().Get("x-clear-error"); ok {
			t.Errorf("plugin saw error %q", v)
		}
	})
}

func TestHTTPStream_Done(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		h, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		if _, err := s.RequestHeaders([][2]string{{":path", "/"}}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Done(); err != nil {
			t.Fatal(err)
		}
		want := []string{"stream " + strconv.Itoa(int(s.ID())) + " done"}
		if got := h.Logs(LogDebug); !reflect.DeepEqual(got, want) {
			t.Errorf("debug logs = %q, want %q", got, want)
		}
		if _, err := s.RequestHeaders(nil, true); err == nil {
			t.Error("RequestHeaders after Done: no error")
		}
	})
}

func TestHost_Metric(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		h, vm1 := newTestVM(t, wasm, Options{}, "")
		m, err := h.Compile(wasm)
		if err != nil {
			t.Fatal(err)
		}
		vm2, err := h.NewVM(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, vm := range []*VM{vm1, vm2, vm2} {
			s, err := vm.NewHTTPStream()
			if err != nil {
				t.Fatal(i, err)
			}
			if _, err := s.RequestHeaders([][2]string{{":path", "/"}}, true); err != nil {
				t.Fatal(i, err)
			}
		}
		want := Metric{Name: "testplugin.requests", Type: MetricCounter, Value: 3}
		if got, ok := h.Metric("testplugin.requests"); !ok || got != want {
			t.Errorf("metric = %+v, %v; want %+v", got, ok, want)
		}
		if all := h.Metrics(); !slices.Contains(all, want) {
			t.Errorf("Metrics() = %+v, want it to hold %+v", all, want)
		}
	})
}

// TestHost_SharedDataAcrossVMs is the two-worker case: two VMs over one
// shared-data store, driven concurrently, CAS-increment one counter; every
// increment lands exactly once.
func TestHost_SharedDataAcrossVMs(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		const perVM = 300
		h, vm1 := newTestVM(t, wasm, Options{}, "")
		m, err := h.Compile(wasm)
		if err != nil {
			t.Fatal(err)
		}
		vm2, err := h.NewVM(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The counter exists before the race: both VMs seeing it absent
		// would both write it with cas 0, which is unconditional (shared
		// data has no create-if-absent; the filter's buckets handle that
		// themselves, this test plugin does not).
		if st := h.SetSharedData("testplugin.count", make([]byte, 8), 0); st != StatusOK {
			t.Fatalf("creating the counter: %v", st)
		}
		counts := make([][]int, 2)
		retries := make([]int, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for w, vm := range []*VM{vm1, vm2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perVM {
					s, err := vm.NewHTTPStream()
					if err == nil {
						_, err = s.RequestHeaders([][2]string{{":path", "/count"}}, true)
					}
					if err == nil {
						err = s.Done()
					}
					if err != nil {
						errs[w] = err
						return
					}
					n, _ := strconv.Atoi(s.Request().Values("x-count")[0])
					r, _ := strconv.Atoi(s.Request().Values("x-cas-retries")[0])
					counts[w] = append(counts[w], n)
					retries[w] += r
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, c := range append(counts[0], counts[1]...) {
			if seen[c] {
				t.Errorf("count %d handed out twice", c)
			}
			seen[c] = true
		}
		for n := 1; n <= 2*perVM; n++ {
			if !seen[n] {
				t.Errorf("count %d never handed out", n)
			}
		}
		v, _, ok := h.SharedData("testplugin.count")
		if !ok || len(v) != 8 || binary.LittleEndian.Uint64(v) != 2*perVM {
			t.Errorf("shared value = %v, %v; want %d", v, ok, 2*perVM)
		}
		t.Logf("CAS retries under interleaving: %d", retries[0]+retries[1])
	})
}

func TestHost_NewVM_Errors(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		h, err := NewHost(Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		m, err := h.Compile(wasm)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.NewVM(m, []byte("reject"))
		if !errors.Is(err, ErrStartFailed) || err.Error() != "proxyhost: plugin start failed: proxy_on_configure returned false" {
			t.Errorf("err = %v", err)
		}
		want := []string{"configuration rejected: reject"}
		if got := h.Logs(LogCritical); !reflect.DeepEqual(got, want) {
			t.Errorf("critical logs = %q, want %q", got, want)
		}
	})
}

func TestVM_Reconfigure(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "v1")
		config := func() string {
			t.Helper()
			s := mustStream(t, vm)
			if _, err := s.RequestHeaders([][2]string{{":path", "/"}}, true); err != nil {
				t.Fatal(err)
			}
			v, _ := s.Request().Get("x-config")
			return v
		}
		if ok, err := vm.Reconfigure([]byte("reject")); ok || !errors.Is(err, ErrStartFailed) {
			t.Errorf("Reconfigure(reject) = %v, %v", ok, err)
		}
		if got := config(); got != "v1" {
			t.Errorf("after a refused config x-config = %q, want v1", got)
		}
		if ok, err := vm.Reconfigure([]byte("v2")); !ok || err != nil {
			t.Errorf("Reconfigure(v2) = %v, %v", ok, err)
		}
		if got := config(); got != "v2" {
			t.Errorf("x-config = %q, want v2", got)
		}
	})
}

func TestVM_Trap(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		s := mustStream(t, vm)
		_, err := s.RequestHeaders([][2]string{{":path", "/panic"}}, true)
		if !errors.Is(err, ErrVMFailed) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("err = %v, want a VM failure naming the panic", err)
		}
		if _, err := vm.NewHTTPStream(); !errors.Is(err, ErrVMFailed) {
			t.Errorf("next stream: err = %v, want ErrVMFailed", err)
		}
		if err := vm.Close(); err != nil {
			t.Errorf("Close after a trap: %v", err)
		}
	})
}

func TestVM_MemorySize(t *testing.T) {
	forEachBuild(t, func(t *testing.T, wasm []byte) {
		_, vm := newTestVM(t, wasm, Options{}, "")
		if got := vm.MemorySize(); got == 0 || got%65536 != 0 {
			t.Errorf("MemorySize = %d, want whole 64 KiB pages", got)
		}
	})
}
