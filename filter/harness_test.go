package filter

import (
	"flag"
	"io"
	"log"
	"os"
	"strings"
	"testing"
)

// leg is one way of running the filter: as Go on the SDK's host emulator, or
// as a compiled .wasm on wazero through proxyhost, behind the same testHost
// interface.
type leg struct {
	name string
	wasm string // path of the module, "" for the Go leg
}

const upstreamSDK = "github.com/proxy-wasm/proxy-wasm-go-sdk"

// legs are every filter test's runs. The .wasm legs need `make build`; a
// missing module fails the test rather than skipping it.
func legs() []leg {
	l := []leg{{name: "go"}}
	if emulatorSDK == upstreamSDK {
		l = append(l,
			leg{name: "wasm-tinygo", wasm: "wasmgate-tinygo.wasm"},
			leg{name: "wasm-go", wasm: "wasmgate-go.wasm"})
	}
	return l
}

// testHost is what the filter tests drive: the SDK's host emulator for the
// Go leg, a proxyhost VM for the .wasm legs (wasmHost).
type testHost interface {
	StartPlugin() onPluginStatus
	Tick()
	InitializeHttpContext() uint32
	CallOnRequestHeaders(id uint32, headers [][2]string, endOfStream bool) action
	CallOnResponseHeaders(id uint32, headers [][2]string, endOfStream bool) action
	CompleteHttpContext(id uint32)
	GetCurrentRequestHeaders(id uint32) [][2]string
	GetCurrentResponseHeaders(id uint32) [][2]string
	GetSentLocalResponse(id uint32) *localResponse
	GetCounterMetric(name string) (uint64, error)
	GetCriticalLogs() []string
}

// forEachLeg runs f once per leg with a fresh host holding the plugin
// configuration config; the plugin is not started yet.
func forEachLeg(t *testing.T, config string, f func(t *testing.T, l leg, host testHost)) {
	t.Helper()
	for _, l := range legs() {
		t.Run(l.name, func(t *testing.T) {
			host, reset := newHost(t, l, config)
			defer reset()
			f(t, l, host)
		})
	}
}

// newHost returns a host for leg l with config as the plugin configuration.
// The plugin is not started yet.
func newHost(t *testing.T, l leg, config string) (testHost, func()) {
	t.Helper()
	if l.wasm != "" {
		return newWasmHost(t, l, config), func() {}
	}
	opt := newEmulatorOption().WithVMContext(&vmContext{}).
		WithPluginConfiguration([]byte(config)).
		WithProperty([]string{"plugin_name"}, []byte("wasmgate")).
		WithProperty([]string{"source", "address"}, []byte(testClientAddress)).
		WithProperty(destinationPortProperty, testListenerPort[:])
	return newHostEmulator(opt)
}

const testClientAddress = "192.0.2.7:51234"

// testListenerPort is the destination.port property of every test stream:
// 10000, as Envoy encodes an integer property.
var testListenerPort = [8]byte{0x10, 0x27}

// header returns the value of name in hs, and whether it is there.
func header(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// TestMain keeps the emulator's per-call log lines (every foreign call and
// proxy log) out of the output unless the run is verbose.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		log.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}
