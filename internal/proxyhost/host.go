package proxyhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Options configure a Host. The zero value is usable.
type Options struct {
	// Properties answer proxy_get_property, keyed by the dot-joined path:
	// "plugin_name", "plugin_root_id", "source.address", ...
	// HTTPStream.SetProperty overrides them for one stream.
	Properties map[string]string
	// VMConfiguration is the vm_config.configuration every VM sees in
	// proxy_on_vm_start.
	VMConfiguration []byte
	// ForeignFunctions are callable by the plugin in addition to
	// clear_route_cache, which is always defined and does nothing but succeed
	// (the call is recorded on the stream, see HTTPStream.ForeignCalls).
	ForeignFunctions map[string]ForeignFunc
	// Clock is the guest's wall and monotonic clock (WASI clock_time_get and
	// proxy_get_current_time_nanoseconds). Nil means the real clock.
	Clock func() time.Time
	// Rand is the guest's WASI random source. Nil means crypto/rand. It is
	// read by every VM, so it must be safe for concurrent use when VMs run
	// on several goroutines.
	Rand io.Reader
	// LogLimit bounds the log messages kept per level (the oldest go first),
	// so a soak run does not grow the host. Zero means 1000.
	LogLimit int
	// OnLog, when set, also receives every message the plugin logs.
	OnLog func(level LogLevel, msg string)
}

// Host is a proxy-wasm host: a wazero runtime plus the state Envoy shares
// across its worker threads: shared data, metrics and logs. Each VM made by
// NewVM plays one worker thread.
//
// # Notes
//
//   - A Host is safe for concurrent use; each VM is not (Envoy runs one VM
//     per worker thread, and so should the caller: one goroutine per VM).
//   - Shared data has one namespace, as with Istio's empty vm_id.
type Host struct {
	opts    Options
	runtime wazero.Runtime

	mu      sync.Mutex
	shared  map[string]sharedEntry
	nextCas uint32

	metricsMu   sync.RWMutex
	metrics     []*metric // index = metric id - 1
	metricNames map[string]uint32

	logsMu        sync.Mutex
	logs          [numLogLevels]ring
	logCounts     [numLogLevels]int
	unimplemented map[string]int
	hostCalls     []atomic.Uint64 // by abiFuncs index
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

type metric struct {
	name    string
	typ     MetricType
	value   atomic.Uint64
	samples atomic.Uint64
}

var (
	cacheOnce   sync.Once
	sharedCache wazero.CompilationCache
)

// compilationCache is shared by every Host of the process, so a module is
// compiled once per test binary. It lives on disk under the tools cache when
// that exists, so repeated test runs skip compilation too.
func compilationCache() wazero.CompilationCache {
	cacheOnce.Do(func() {
		if dir := cacheDir(); dir != "" {
			if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
				sharedCache = c
				return
			}
		}
		sharedCache = wazero.NewCompilationCache()
	})
	return sharedCache
}

// cacheDir is $WASMGATE_CACHE/wazero, or wazero/ under the default tools
// cache when that already exists; "" when neither is usable.
func cacheDir() string {
	root := os.Getenv("WASMGATE_CACHE")
	if root == "" {
		user, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		root = filepath.Join(user, "wasmgate")
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return ""
		}
	}
	return filepath.Join(root, "wazero")
}

// NewHost starts a wazero runtime with WASI and the proxy-wasm host functions.
func NewHost(opts Options) (*Host, error) {
	if opts.LogLimit <= 0 {
		opts.LogLimit = 1000
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(compilationCache()))
	h := &Host{
		opts:          opts,
		runtime:       rt,
		shared:        map[string]sharedEntry{},
		nextCas:       1,
		metricNames:   map[string]uint32{},
		unimplemented: map[string]int{},
		hostCalls:     make([]atomic.Uint64, len(abiFuncs)),
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("proxyhost: instantiate WASI: %w", err)
	}
	if err := instantiateABI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("proxyhost: instantiate proxy-wasm ABI: %w", err)
	}
	return h, nil
}

// Close releases the runtime and every VM still open.
func (h *Host) Close() error {
	return h.runtime.Close(context.Background())
}

// Module is a compiled plugin: compile once, instantiate many VMs.
type Module struct {
	compiled wazero.CompiledModule
	// abi is the proxy_abi_version_* export, e.g. "0_2_0".
	abi string
}

// ABIVersion returns the proxy-wasm ABI version the module declares, such as
// "0.2.0".
func (m *Module) ABIVersion() string { return m.abi }

// abiVersions are the versions Envoy accepts, newest first.
var abiVersions = []string{"0.2.1", "0.2.0", "0.1.0"}

// Compile compiles a plugin. It refuses a module that Envoy would refuse:
// one without a known proxy_abi_version_* export or without an allocator
// (malloc or proxy_on_memory_allocate).
//
// # Errors
//
// The message names the missing export, e.g.
// "proxyhost: compile: missing export proxy_abi_version_0_2_0 (or 0.1.0, 0.2.1)".
func (h *Host) Compile(wasm []byte) (*Module, error) {
	compiled, err := h.runtime.CompileModule(context.Background(), wasm)
	if err != nil {
		return nil, fmt.Errorf("proxyhost: compile: %w", err)
	}
	exports := compiled.ExportedFunctions()
	m := &Module{compiled: compiled}
	for _, v := range abiVersions {
		if _, ok := exports["proxy_abi_version_"+underscored(v)]; ok {
			m.abi = v
			break
		}
	}
	if m.abi == "" {
		return nil, errors.New("proxyhost: compile: missing export proxy_abi_version_0_2_0 (or 0.1.0, 0.2.1)")
	}
	_, hasMalloc := exports["malloc"]
	_, hasAlloc := exports["proxy_on_memory_allocate"]
	if !hasMalloc && !hasAlloc {
		return nil, errors.New("proxyhost: compile: missing export malloc or proxy_on_memory_allocate")
	}
	return m, nil
}

func underscored(v string) string {
	b := []byte(v)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

// SharedData returns a shared-data entry as proxy_get_shared_data would.
func (h *Host) SharedData(key string) (value []byte, cas uint32, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.shared[key]
	return append([]byte(nil), e.value...), e.cas, ok
}

// SharedDataSince returns the keys of the shared-data entries written with
// a cas of at least since, sorted, and the cas the next write will get: pass
// it as since next time to see what a stream wrote.
func (h *Host) SharedDataSince(since uint32) (keys []string, next uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, e := range h.shared {
		if e.cas >= since {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, h.nextCas
}

// SetSharedData writes a shared-data entry as proxy_set_shared_data does:
// cas 0 writes unconditionally; any other cas must match the entry's current
// one or the result is StatusCasMismatch. A missing key is always written.
func (h *Host) SetSharedData(key string, value []byte, cas uint32) Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.shared[key]; ok && cas != 0 && cas != e.cas {
		return StatusCasMismatch
	}
	h.shared[key] = sharedEntry{value: append([]byte(nil), value...), cas: h.nextCas}
	// As Envoy: the CAS sequence skips 0, which means "unconditional".
	h.nextCas++
	if h.nextCas == 0 {
		h.nextCas++
	}
	return StatusOK
}

// Metric returns the metric defined under name.
func (h *Host) Metric(name string) (Metric, bool) {
	h.metricsMu.RLock()
	defer h.metricsMu.RUnlock()
	id, ok := h.metricNames[name]
	if !ok {
		return Metric{}, false
	}
	m := h.metrics[id-1]
	return Metric{Name: m.name, Type: m.typ, Value: m.value.Load(), Samples: m.samples.Load()}, true
}

// Metrics returns every metric defined so far, in the order of definition.
func (h *Host) Metrics() []Metric {
	h.metricsMu.RLock()
	defer h.metricsMu.RUnlock()
	out := make([]Metric, len(h.metrics))
	for i, m := range h.metrics {
		out[i] = Metric{Name: m.name, Type: m.typ, Value: m.value.Load(), Samples: m.samples.Load()}
	}
	return out
}

// defineMetric returns the id of name, defining it on first use. Two VMs
// defining the same name share it, as Envoy's stats store does.
func (h *Host) defineMetric(typ MetricType, name string) (uint32, Status) {
	if typ > MetricHistogram {
		return 0, StatusBadArgument
	}
	h.metricsMu.Lock()
	defer h.metricsMu.Unlock()
	if id, ok := h.metricNames[name]; ok {
		if h.metrics[id-1].typ != typ {
			return 0, StatusBadArgument
		}
		return id, StatusOK
	}
	h.metrics = append(h.metrics, &metric{name: name, typ: typ})
	id := uint32(len(h.metrics))
	h.metricNames[name] = id
	return id, StatusOK
}

func (h *Host) metric(id uint32) *metric {
	h.metricsMu.RLock()
	defer h.metricsMu.RUnlock()
	if id == 0 || int(id) > len(h.metrics) {
		return nil
	}
	return h.metrics[id-1]
}

// HostCalls returns how many proxy-wasm host functions the guests of h have
// called so far (WASI calls not included): the cost that dominates a
// plugin's time in a real proxy.
func (h *Host) HostCalls() uint64 {
	var n uint64
	for i := range h.hostCalls {
		n += h.hostCalls[i].Load()
	}
	return n
}

// HostCallsByName returns HostCalls by host function name, leaving out
// functions never called.
func (h *Host) HostCallsByName() map[string]uint64 {
	m := map[string]uint64{}
	for i := range h.hostCalls {
		if n := h.hostCalls[i].Load(); n > 0 {
			m[abiFuncs[i].name] = n
		}
	}
	return m
}

// Logs returns the messages logged at level, oldest first; at most
// Options.LogLimit are kept.
func (h *Host) Logs(level LogLevel) []string {
	h.logsMu.Lock()
	defer h.logsMu.Unlock()
	if level >= numLogLevels {
		return nil
	}
	return h.logs[level].list()
}

// LogCount returns how many messages were logged at level, dropped ones
// included.
func (h *Host) LogCount(level LogLevel) int {
	h.logsMu.Lock()
	defer h.logsMu.Unlock()
	if level >= numLogLevels {
		return 0
	}
	return h.logCounts[level]
}

// ResetLogs forgets every logged message and count.
func (h *Host) ResetLogs() {
	h.logsMu.Lock()
	defer h.logsMu.Unlock()
	h.logs = [numLogLevels]ring{}
	h.logCounts = [numLogLevels]int{}
}

func (h *Host) log(level LogLevel, msg string) {
	h.logsMu.Lock()
	h.logs[level].push(msg, h.opts.LogLimit)
	h.logCounts[level]++
	h.logsMu.Unlock()
	if h.opts.OnLog != nil {
		h.opts.OnLog(level, msg)
	}
}

// Unimplemented returns how often the plugin called each host function this
// host does not implement (they answer StatusUnimplemented).
func (h *Host) Unimplemented() map[string]int {
	h.logsMu.Lock()
	defer h.logsMu.Unlock()
	out := make(map[string]int, len(h.unimplemented))
	for k, v := range h.unimplemented {
		out[k] = v
	}
	return out
}

func (h *Host) recordUnimplemented(name string) {
	h.logsMu.Lock()
	h.unimplemented[name]++
	h.logsMu.Unlock()
}

func (h *Host) now() time.Time {
	if h.opts.Clock != nil {
		return h.opts.Clock()
	}
	return time.Now()
}

// ring keeps the newest messages up to a limit.
type ring struct {
	buf   []string
	start int // index of the oldest message once buf is full
}

func (r *ring) push(msg string, limit int) {
	if len(r.buf) < limit {
		r.buf = append(r.buf, msg)
		return
	}
	r.buf[r.start] = msg
	r.start = (r.start + 1) % limit
}

func (r *ring) list() []string {
	out := make([]string, 0, len(r.buf))
	return append(append(out, r.buf[r.start:]...), r.buf[:r.start]...)
}
