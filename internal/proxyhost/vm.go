package proxyhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// rootContextID is the id of a VM's only root (plugin) context. Envoy
// numbers contexts per VM from 1, the root context first.
const rootContextID = 1

// ErrVMFailed is wrapped by every error from a VM whose guest trapped,
// exited or was closed; like Envoy, the host never calls into it again.
var ErrVMFailed = errors.New("proxyhost: vm failed")

// ErrStartFailed is wrapped by NewVM and Reconfigure errors when the plugin
// refused its configuration (proxy_on_vm_start or proxy_on_configure
// returned false), which makes Envoy reject the plugin config.
var ErrStartFailed = errors.New("proxyhost: plugin start failed")

// VM is one instance of a plugin with its root context, like the VM of one
// Envoy worker thread.
//
// # Notes
//
// A VM is not safe for concurrent use: drive each VM from one goroutine.
type VM struct {
	host   *Host
	mod    api.Module
	ctx    context.Context
	stderr *tailWriter

	alloc        api.Function
	lastAlloc    Allocation
	onCreate     api.Function
	onVMStart    api.Function
	onConfigure  api.Function
	onReqHeaders api.Function
	onResHeaders api.Function
	onDone       api.Function
	onLog        api.Function
	onDelete     api.Function
	onTick       api.Function
	onGrpcRecv   api.Function
	onGrpcClose  api.Function

	// stack is reused by every call into the guest; allocStack by the
	// allocator, which runs while another call is on stack.
	stack      [3]uint64
	allocStack [1]uint64

	err      error
	nextID   uint32
	streams  map[uint32]*HTTPStream
	active   *HTTPStream // stream of the running callback, nil for root
	vmConfig []byte      // non-nil, so readable, during proxy_on_vm_start only
	plugConf []byte      // non-nil, so readable, during proxy_on_configure only
	props    map[string]string
	tick     time.Duration

	// gRPC calls: every one made, and the answer or status of the call
	// whose callback runs.
	nextToken   uint32
	grpcCalls   []GrpcCall
	grpcReceive []byte
	grpcStatus  uint32
	grpcMessage string
}

// GrpcCall is a call the plugin made with proxy_grpc_call.
type GrpcCall struct {
	Token uint32
	// Stream is the id of the stream that made it (0: the root context).
	Stream uint32
	// Service is the serialized GrpcService; ServiceName and Method name
	// the gRPC method; Message is the request.
	Service             []byte
	ServiceName, Method string
	Message             []byte
	TimeoutMillis       uint32
	// Cancelled is set once the plugin cancelled the call.
	Cancelled bool
}

// GrpcCalls returns the calls the plugin made, in order.
func (vm *VM) GrpcCalls() []GrpcCall { return append([]GrpcCall(nil), vm.grpcCalls...) }

// GrpcReceive answers the call token with message, as Envoy does: through
// proxy_on_grpc_receive on the root context.
func (vm *VM) GrpcReceive(token uint32, message []byte) error {
	vm.grpcReceive = message
	defer func() { vm.grpcReceive = nil }()
	_, err := vm.call("proxy_on_grpc_receive", vm.onGrpcRecv, rootContextID, uint64(token), uint64(len(message)))
	return err
}

// GrpcClose ends the call token with a gRPC status (14 for a timeout, as
// Envoy) through proxy_on_grpc_close on the root context.
func (vm *VM) GrpcClose(token, status uint32, message string) error {
	vm.grpcStatus, vm.grpcMessage = status, message
	defer func() { vm.grpcStatus, vm.grpcMessage = 0, "" }()
	_, err := vm.call("proxy_on_grpc_close", vm.onGrpcClose, rootContextID, uint64(token), uint64(status))
	return err
}

type vmKey struct{}

func vmFrom(ctx context.Context) *VM {
	vm, _ := ctx.Value(vmKey{}).(*VM)
	return vm
}

// NewVM instantiates the module and starts the plugin as Envoy does: the WASI
// start function (_initialize, then main if exported, for a reactor such as
// Go's c-shared build; _start for a command such as TinyGo's wasi-legacy
// build), proxy_on_context_create for the root context, proxy_on_vm_start
// and proxy_on_configure with pluginConfig.
//
// # Errors
//
// A refused configuration wraps ErrStartFailed; a trap or exit in the guest
// wraps ErrVMFailed and carries the tail of the guest's stderr.
func (h *Host) NewVM(m *Module, pluginConfig []byte) (*VM, error) {
	vm := &VM{
		host:    h,
		stderr:  &tailWriter{limit: 4096},
		nextID:  rootContextID + 1,
		streams: map[uint32]*HTTPStream{},
		props:   map[string]string{},
	}
	vm.ctx = context.WithValue(context.Background(), vmKey{}, vm)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(vm.stderr).
		WithStderr(vm.stderr).
		WithRandSource(h.opts.Rand)
	if h.opts.Clock != nil {
		cfg = cfg.
			WithWalltime(func() (int64, int32) {
				t := h.opts.Clock()
				return t.Unix(), int32(t.Nanosecond())
			}, sys.ClockResolution(1)).
			WithNanotime(func() int64 { return h.opts.Clock().UnixNano() }, sys.ClockResolution(1))
	} else {
		cfg = cfg.WithSysWalltime().WithSysNanotime()
	}
	mod, err := h.runtime.InstantiateModule(vm.ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("proxyhost: instantiate: %w", err)
	}
	vm.mod = mod
	if vm.alloc = mod.ExportedFunction("malloc"); vm.alloc == nil {
		vm.alloc = mod.ExportedFunction("proxy_on_memory_allocate")
	}
	vm.onCreate = mod.ExportedFunction("proxy_on_context_create")
	vm.onVMStart = mod.ExportedFunction("proxy_on_vm_start")
	vm.onConfigure = mod.ExportedFunction("proxy_on_configure")
	vm.onReqHeaders = mod.ExportedFunction("proxy_on_request_headers")
	vm.onResHeaders = mod.ExportedFunction("proxy_on_response_headers")
	vm.onDone = mod.ExportedFunction("proxy_on_done")
	vm.onLog = mod.ExportedFunction("proxy_on_log")
	vm.onDelete = mod.ExportedFunction("proxy_on_delete")
	vm.onTick = mod.ExportedFunction("proxy_on_tick")
	vm.onGrpcRecv = mod.ExportedFunction("proxy_on_grpc_receive")
	vm.onGrpcClose = mod.ExportedFunction("proxy_on_grpc_close")
	if err := vm.start(h.opts.VMConfiguration, pluginConfig); err != nil {
		_ = vm.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *VM) start(vmConfig, pluginConfig []byte) error {
	if init := vm.mod.ExportedFunction("_initialize"); init != nil {
		if _, err := vm.call("_initialize", init); err != nil {
			return err
		}
		// Envoy calls a reactor's main(0, 0) too, so an SDK may set itself
		// up there; only the C signature qualifies.
		if main := vm.mod.ExportedFunction("main"); main != nil && len(main.Definition().ParamTypes()) == 2 {
			if _, err := vm.call("main", main, 0, 0); err != nil {
				return err
			}
		}
	} else if start := vm.mod.ExportedFunction("_start"); start != nil {
		if _, err := vm.call("_start", start); err != nil {
			var exit *sys.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("%w (a command module must not exit from _start: build TinyGo with -buildmode=wasi-legacy)", err)
			}
			return err
		}
	}
	if _, err := vm.call("proxy_on_context_create", vm.onCreate, rootContextID, 0); err != nil {
		return err
	}
	vm.vmConfig = append([]byte{}, vmConfig...)
	err := vm.callBool("proxy_on_vm_start", vm.onVMStart, uint64(len(vmConfig)))
	vm.vmConfig = nil
	if err != nil {
		return err
	}
	_, err = vm.configure(pluginConfig)
	return err
}

// callBool runs a root-context callback whose false result refuses the
// plugin start. A missing callback accepts, as in Envoy.
func (vm *VM) callBool(name string, fn api.Function, size uint64) error {
	if fn == nil {
		return nil
	}
	ok, err := vm.call(name, fn, rootContextID, size)
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("%w: %s returned false", ErrStartFailed, name)
	}
	return nil
}

// configure runs proxy_on_configure with the plugin configuration readable.
func (vm *VM) configure(pluginConfig []byte) (bool, error) {
	vm.plugConf = append([]byte{}, pluginConfig...)
	err := vm.callBool("proxy_on_configure", vm.onConfigure, uint64(len(pluginConfig)))
	vm.plugConf = nil
	return err == nil, err
}

// Reconfigure delivers a new plugin configuration to the running root
// context, as Envoy does on a config update that keeps the VM. It reports
// whether the plugin accepted it; a refusal wraps ErrStartFailed.
func (vm *VM) Reconfigure(pluginConfig []byte) (bool, error) {
	return vm.configure(pluginConfig)
}

// Tick calls proxy_on_tick on the root context, as Envoy's timer does every
// TickPeriod.
func (vm *VM) Tick() error {
	_, err := vm.call("proxy_on_tick", vm.onTick, rootContextID)
	return err
}

// TickPeriod returns the period the plugin set with
// proxy_set_tick_period_milliseconds; 0 means no ticks.
func (vm *VM) TickPeriod() time.Duration { return vm.tick }

// MemorySize returns the size of the guest's linear memory in bytes. It
// never shrinks, so it shows the high-water mark of the guest heap.
func (vm *VM) MemorySize() uint64 {
	if mem := vm.mod.Memory(); mem != nil {
		return uint64(mem.Size())
	}
	return 0
}

// Close shuts the plugin down as Envoy does (proxy_on_done, then
// proxy_on_delete when it answers true) and releases the instance.
func (vm *VM) Close() error {
	if vm.err == nil && vm.onDone != nil {
		if ok, err := vm.call("proxy_on_done", vm.onDone, rootContextID); err == nil && ok != 0 {
			_, _ = vm.call("proxy_on_delete", vm.onDelete, rootContextID)
		}
	}
	if vm.err == nil {
		vm.err = fmt.Errorf("%w: closed", ErrVMFailed)
	}
	return vm.mod.Close(context.Background())
}

// Stderr returns the last bytes the guest wrote to stdout and stderr, where
// a Go panic prints its message.
func (vm *VM) Stderr() string { return vm.stderr.String() }

// call runs a guest export and returns its first result. A missing export is
// skipped as Envoy skips it. Any error fails the VM for good.
func (vm *VM) call(name string, fn api.Function, args ...uint64) (uint64, error) {
	return vm.callIn(nil, name, fn, args...)
}

// callIn is call with s as the context host functions act on (nil: root).
func (vm *VM) callIn(s *HTTPStream, name string, fn api.Function, args ...uint64) (uint64, error) {
	if vm.err != nil {
		return 0, vm.err
	}
	if fn == nil {
		return 0, nil
	}
	stack := vm.stack[:max(len(args), 1)]
	copy(stack, args)
	vm.active = s
	err := fn.CallWithStack(vm.ctx, stack)
	vm.active = nil
	if err != nil {
		vm.err = vm.failure(name, err)
		return 0, vm.err
	}
	if vm.err != nil { // the allocator failed inside a host function
		return 0, vm.err
	}
	if len(fn.Definition().ResultTypes()) == 0 {
		return 0, nil
	}
	return stack[0], nil
}

// failure is the error that fails the VM after name returned err; it ends
// with the guest's last output, where a Go panic prints its message.
func (vm *VM) failure(name string, err error) error {
	out := ""
	if s := strings.TrimSpace(vm.stderr.String()); s != "" {
		out = "; guest output: " + s
	}
	return fmt.Errorf("%w: %s: %v%s", ErrVMFailed, name, err, out)
}

// NewHTTPStream opens an HTTP stream (proxy_on_context_create with the root
// context as parent), as Envoy does when a request reaches the filter.
func (vm *VM) NewHTTPStream() (*HTTPStream, error) {
	s := &HTTPStream{vm: vm, id: vm.nextID}
	vm.nextID++
	vm.streams[s.id] = s
	if _, err := vm.callIn(s, "proxy_on_context_create", vm.onCreate, uint64(s.id), rootContextID); err != nil {
		delete(vm.streams, s.id)
		return nil, err
	}
	return s, nil
}

// HTTPStream is one HTTP request/response through the plugin.
type HTTPStream struct {
	vm       *VM
	id       uint32
	request  Headers
	response Headers
	props    map[string]string
	local    *LocalResponse
	foreign  []ForeignCall
	resumed  int // proxy_continue_stream calls
	done     bool
	// inResponse is set once the response headers arrived: from then on
	// the request headers are gone, as in Envoy, which keeps a request
	// header map only while the request passes the filter.
	inResponse bool
}

// ID returns the stream's context id.
func (s *HTTPStream) ID() uint32 { return s.id }

// SetProperty sets a property for this stream only, such as
// "source.address"; it takes precedence over Options.Properties.
func (s *HTTPStream) SetProperty(path, value string) {
	if s.props == nil {
		s.props = map[string]string{}
	}
	s.props[path] = value
}

// Property returns a property of this stream: one set with SetProperty or
// by the plugin during the stream (proxy_set_property), such as the filter
// state a plugin records for access logs.
func (s *HTTPStream) Property(path string) (string, bool) {
	v, ok := s.props[path]
	return v, ok
}

// RequestHeaders delivers the request headers (names are lower-cased) to
// proxy_on_request_headers and returns the plugin's action. The plugin's
// changes are visible in Request afterwards.
func (s *HTTPStream) RequestHeaders(headers [][2]string, endOfStream bool) (Action, error) {
	s.request = newHeaders(headers)
	return s.headers("proxy_on_request_headers", s.vm.onReqHeaders, len(headers), endOfStream)
}

// ResponseHeaders delivers the response headers to proxy_on_response_headers
// and returns the plugin's action. The plugin's changes are visible in
// Response afterwards.
//
// # Notes
//
// Envoy also runs the response path for a local response the plugin sent;
// call ResponseHeaders with LocalResponse's headers to emulate that.
func (s *HTTPStream) ResponseHeaders(headers [][2]string, endOfStream bool) (Action, error) {
	s.response = newHeaders(headers)
	s.inResponse = true
	return s.headers("proxy_on_response_headers", s.vm.onResHeaders, len(headers), endOfStream)
}

func (s *HTTPStream) headers(name string, fn api.Function, n int, endOfStream bool) (Action, error) {
	if s.done {
		return 0, fmt.Errorf("proxyhost: %s: stream %d is done", name, s.id)
	}
	eos := uint64(0)
	if endOfStream {
		eos = 1
	}
	a, err := s.vm.callIn(s, name, fn, uint64(s.id), uint64(n), eos)
	return Action(a), err
}

// Done ends the stream as Envoy does: proxy_on_done, proxy_on_log (the
// SDKs' OnHttpStreamDone), proxy_on_delete. The stream's accessors keep
// working afterwards.
func (s *HTTPStream) Done() error {
	if s.done {
		return nil
	}
	s.done = true
	defer delete(s.vm.streams, s.id)
	for _, c := range []struct {
		name string
		fn   api.Function
	}{
		{"proxy_on_done", s.vm.onDone},
		{"proxy_on_log", s.vm.onLog},
		{"proxy_on_delete", s.vm.onDelete},
	} {
		if _, err := s.vm.callIn(s, c.name, c.fn, uint64(s.id)); err != nil {
			return err
		}
	}
	return nil
}

// Resumed returns how often the plugin resumed the stream
// (proxy_continue_stream).
func (s *HTTPStream) Resumed() int { return s.resumed }

// Request returns a copy of the request headers as the plugin left them.
func (s *HTTPStream) Request() Headers { return append(Headers(nil), s.request...) }

// Response returns a copy of the response headers as the plugin left them.
func (s *HTTPStream) Response() Headers { return append(Headers(nil), s.response...) }

// LocalResponse returns the local response the plugin sent, or nil.
func (s *HTTPStream) LocalResponse() *LocalResponse { return s.local }

// ForeignCalls returns the foreign functions the plugin called on this
// stream, in order.
func (s *HTTPStream) ForeignCalls() []ForeignCall { return append([]ForeignCall(nil), s.foreign...) }

// tailWriter keeps the last limit bytes written to it.
type tailWriter struct {
	limit int
	buf   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.limit; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string { return string(w.buf) }
