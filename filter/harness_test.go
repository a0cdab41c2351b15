package filter

import (
	"flag"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// leg is one way of running the filter: as Go on the SDK's host emulator, or
// as a compiled .wasm on wazero behind the same emulator.
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

// forEachLeg runs f once per leg with a fresh emulator holding the plugin
// configuration config, already started (when start is true).
func forEachLeg(t *testing.T, config string, f func(t *testing.T, l leg, host hostEmulator)) {
	t.Helper()
	for _, l := range legs() {
		t.Run(l.name, func(t *testing.T) {
			host, reset := newHost(t, l, config)
			defer reset()
			f(t, l, host)
		})
	}
}

// newHost returns an emulator hosting leg l's VM with config as the plugin
// configuration. The plugin is not started yet.
func newHost(t *testing.T, l leg, config string) (hostEmulator, func()) {
	t.Helper()
	vm := vmFor(t, l)
	opt := newEmulatorOption().WithVMContext(vm).
		WithPluginConfiguration([]byte(config)).
		WithProperty([]string{"plugin_name"}, []byte("wasmgate")).
		WithProperty([]string{"source", "address"}, []byte("192.0.2.7:51234"))
	host, reset := newHostEmulator(opt)
	host.RegisterForeignFunction("clear_route_cache", func([]byte) []byte {
		routeCacheClears++
		return []byte{0}
	})
	return host, reset
}

var routeCacheClears int

var (
	wasmVMsMu sync.Mutex
	wasmVMs   = map[string]vmContextAPI{}
)

// vmFor returns the leg's VM context. A .wasm is compiled once per test
// binary: compiling the Go build takes seconds, and every emulator starts
// its own plugin and stream contexts in the VM.
func vmFor(t *testing.T, l leg) vmContextAPI {
	t.Helper()
	if l.wasm == "" {
		return &vmContext{}
	}
	wasmVMsMu.Lock()
	defer wasmVMsMu.Unlock()
	if vm, ok := wasmVMs[l.wasm]; ok {
		return vm
	}
	path := filepath.Join("..", "out", l.wasm)
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s leg: %v (run `make build` to build the modules)", l.name, err)
	}
	vm, err := newWasmVMContext(wasm)
	if err != nil {
		t.Fatalf("%s leg: loading %s: %v", l.name, path, err)
	}
	wasmVMs[l.wasm] = vm
	return vm
}

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
