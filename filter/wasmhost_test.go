package filter

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/internal/proxyhost"
)

// wasmHost runs a leg's module on proxyhost behind the testHost interface.
// Unlike the SDKs' emulators, proxyhost provides every host function the
// module imports (proxy_get_log_level among them), as Envoy does.
type wasmHost struct {
	t       testing.TB
	w       *workerHost
	config  []byte
	vm      *proxyhost.VM
	streams map[uint32]*proxyhost.HTTPStream
	started bool
}

func newWasmHost(t testing.TB, l leg, config string) *wasmHost {
	return &wasmHost{t: t, w: newWorkerHost(t, l), config: []byte(config), streams: map[uint32]*proxyhost.HTTPStream{}}
}

func (h *wasmHost) StartPlugin() onPluginStatus {
	h.t.Helper()
	if h.vm != nil {
		if ok, err := h.vm.Reconfigure(h.config); !ok || err != nil {
			return pluginStartFailed
		}
		return pluginStartOK
	}
	vm, err := h.w.NewVM(h.w.module, h.config)
	if errors.Is(err, proxyhost.ErrStartFailed) {
		return pluginStartFailed
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = vm.Close() })
	h.vm = vm
	return pluginStartOK
}

func (h *wasmHost) Tick() {
	if h.vm != nil {
		if err := h.vm.Tick(); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *wasmHost) InitializeHttpContext() uint32 {
	h.t.Helper()
	if h.vm == nil {
		h.t.Fatal("InitializeHttpContext before a successful StartPlugin")
	}
	s, err := h.vm.NewHTTPStream()
	if err != nil {
		h.t.Fatal(err)
	}
	s.SetProperty("source.address", testClientAddress)
	s.SetProperty("destination.port", string(testListenerPort[:]))
	h.streams[s.ID()] = s
	return s.ID()
}

func (h *wasmHost) stream(id uint32) *proxyhost.HTTPStream {
	h.t.Helper()
	s, ok := h.streams[id]
	if !ok {
		h.t.Fatalf("no stream %d", id)
	}
	return s
}

func (h *wasmHost) CallOnRequestHeaders(id uint32, headers [][2]string, end bool) action {
	return h.callHeaders(h.stream(id).RequestHeaders, headers, end)
}

func (h *wasmHost) CallOnResponseHeaders(id uint32, headers [][2]string, end bool) action {
	return h.callHeaders(h.stream(id).ResponseHeaders, headers, end)
}

func (h *wasmHost) callHeaders(call func([][2]string, bool) (proxyhost.Action, error), headers [][2]string, end bool) action {
	h.t.Helper()
	a, err := call(headers, end)
	if err != nil {
		h.t.Fatal(err)
	}
	if a == proxyhost.ActionContinue {
		return actionContinue
	}
	return actionPause
}

func (h *wasmHost) CompleteHttpContext(id uint32) {
	h.t.Helper()
	if err := h.stream(id).Done(); err != nil {
		h.t.Fatal(err)
	}
	delete(h.streams, id)
}

func (h *wasmHost) GetCurrentRequestHeaders(id uint32) [][2]string {
	return h.stream(id).Request()
}

func (h *wasmHost) GetCurrentResponseHeaders(id uint32) [][2]string {
	return h.stream(id).Response()
}

func (h *wasmHost) GetSentLocalResponse(id uint32) *localResponse {
	lr := h.stream(id).LocalResponse()
	if lr == nil {
		return nil
	}
	return &localResponse{StatusCode: lr.StatusCode, StatusCodeDetail: lr.Details,
		Data: lr.Body, Headers: lr.Headers, GRPCStatus: lr.GRPCStatus}
}

func (h *wasmHost) GetCounterMetric(name string) (uint64, error) {
	m, ok := h.w.Metric(name)
	if !ok {
		return 0, fmt.Errorf("no metric %q", name)
	}
	return m.Value, nil
}

func (h *wasmHost) GetCriticalLogs() []string { return h.w.Logs(proxyhost.LogCritical) }
