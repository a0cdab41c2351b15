package proxyhost

import (
	"context"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one proxy-wasm import: every one returns a Status.
type hostFunc struct {
	name   string
	params []api.ValueType
	fn     func(vm *VM, stack []uint64) Status
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32s(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = i32
	}
	return ts
}

// abiFuncs are the "env" imports of proxy-wasm ABI 0.2.1 that the Go SDKs
// declare. Every import must exist or instantiation fails, so the ones a
// header filter has no use for answer StatusUnimplemented and are counted.
var abiFuncs = []hostFunc{
	{"proxy_log", i32s(3), proxyLog},
	{"proxy_get_current_time_nanoseconds", i32s(1), getCurrentTime},
	{"proxy_set_tick_period_milliseconds", i32s(1), setTickPeriod},
	{"proxy_set_effective_context", i32s(1), setEffectiveContext},

	{"proxy_get_buffer_bytes", i32s(5), getBufferBytes},
	{"proxy_set_buffer_bytes", i32s(5), setBufferBytes},

	{"proxy_get_header_map_value", i32s(5), getHeaderMapValue},
	{"proxy_add_header_map_value", i32s(5), addHeaderMapValue},
	{"proxy_replace_header_map_value", i32s(5), replaceHeaderMapValue},
	{"proxy_remove_header_map_value", i32s(3), removeHeaderMapValue},
	{"proxy_get_header_map_pairs", i32s(3), getHeaderMapPairs},
	{"proxy_set_header_map_pairs", i32s(3), setHeaderMapPairs},
	{"proxy_send_local_response", i32s(8), sendLocalResponse},

	{"proxy_get_shared_data", i32s(5), getSharedData},
	{"proxy_set_shared_data", i32s(5), setSharedData},

	{"proxy_define_metric", i32s(4), defineMetric},
	{"proxy_increment_metric", []api.ValueType{i32, i64}, incrementMetric},
	{"proxy_record_metric", []api.ValueType{i32, i64}, recordMetric},
	{"proxy_get_metric", i32s(2), getMetric},

	{"proxy_get_property", i32s(4), getProperty},
	{"proxy_set_property", i32s(4), setProperty},
	{"proxy_call_foreign_function", i32s(6), callForeignFunction},

	{"proxy_continue_stream", i32s(1), continueStream},
	{"proxy_grpc_call", i32s(12), grpcCall},
	{"proxy_grpc_cancel", i32s(1), grpcCancel},
	{"proxy_get_status", i32s(3), getStatus},

	unimplemented("proxy_done", 0),
	unimplemented("proxy_close_stream", 1),
	unimplemented("proxy_http_call", 10),
	unimplemented("proxy_register_shared_queue", 3),
	unimplemented("proxy_resolve_shared_queue", 5),
	unimplemented("proxy_dequeue_shared_queue", 3),
	unimplemented("proxy_enqueue_shared_queue", 3),
}

func unimplemented(name string, params int) hostFunc {
	return hostFunc{name, i32s(params), func(vm *VM, _ []uint64) Status {
		vm.host.recordUnimplemented(name)
		return StatusUnimplemented
	}}
}

// instantiateABI exports abiFuncs as the "env" module of rt. The functions
// find their VM in the call's context, so one module serves every VM.
func instantiateABI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	for i, f := range abiFuncs {
		fn := f.fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				vm := vmFrom(ctx)
				if vm == nil {
					stack[0] = uint64(StatusInternalFailure)
					return
				}
				vm.host.hostCalls[i].Add(1)
				stack[0] = uint64(fn(vm, stack))
			}), f.params, []api.ValueType{i32}).
			Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// Guest memory access. Every pointer and size comes from the guest, so each
// access is bounds-checked and a bad one becomes StatusInvalidMemoryAccess.

func arg(stack []uint64, i int) uint32 { return uint32(stack[i]) }

// view returns guest memory in place; it is valid until the guest runs again
// (an allocation may move memory).
func (vm *VM) view(ptr, size uint32) ([]byte, bool) {
	return vm.mod.Memory().Read(ptr, size)
}

func (vm *VM) str(ptr, size uint32) (string, bool) {
	b, ok := vm.view(ptr, size)
	return string(b), ok
}

// copyOut gives data to the guest as Envoy does: in memory from the guest's
// allocator (malloc when exported, else proxy_on_memory_allocate), its
// address at ptrPtr and its size at sizePtr; empty data gives address 0.
func (vm *VM) copyOut(data string, ptrPtr, sizePtr uint32) Status {
	mem := vm.mod.Memory()
	var ptr uint32
	if len(data) > 0 {
		p, ok := vm.allocate(uint32(len(data)))
		if !ok || !mem.WriteString(p, data) {
			return StatusInvalidMemoryAccess
		}
		ptr = p
	}
	if !mem.WriteUint32Le(ptrPtr, ptr) || !mem.WriteUint32Le(sizePtr, uint32(len(data))) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// allocate calls the guest allocator. It runs while the guest is inside a
// host call, so it has its own stack; a failure fails the VM once the
// outer call returns.
func (vm *VM) allocate(size uint32) (uint32, bool) {
	vm.allocStack[0] = uint64(size)
	if err := vm.alloc.CallWithStack(vm.ctx, vm.allocStack[:]); err != nil {
		if vm.err == nil {
			vm.err = vm.failure("allocator", err)
		}
		return 0, false
	}
	p := uint32(vm.allocStack[0])
	vm.lastAlloc = Allocation{Addr: p, Size: size}
	return p, p != 0
}

// Allocation is one block the host had the guest allocate for data it
// handed over.
type Allocation struct{ Addr, Size uint32 }

// LastAllocation is the latest block the host had the guest allocate: a
// test can see whether the guest hands out the same memory each time.
func (vm *VM) LastAllocation() Allocation { return vm.lastAlloc }

func proxyLog(vm *VM, s []uint64) Status {
	level := LogLevel(arg(s, 0))
	if level >= numLogLevels {
		return StatusBadArgument
	}
	msg, ok := vm.str(arg(s, 1), arg(s, 2))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	vm.host.log(level, msg)
	return StatusOK
}

func getCurrentTime(vm *VM, s []uint64) Status {
	if !vm.mod.Memory().WriteUint64Le(arg(s, 0), uint64(vm.host.now().UnixNano())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func setTickPeriod(vm *VM, s []uint64) Status {
	vm.tick = time.Duration(arg(s, 0)) * time.Millisecond
	return StatusOK
}

func setEffectiveContext(vm *VM, s []uint64) Status {
	id := arg(s, 0)
	if id == rootContextID {
		vm.active = nil
		return StatusOK
	}
	st, ok := vm.streams[id]
	if !ok {
		return StatusBadArgument
	}
	vm.active = st
	return StatusOK
}

// Buffer types of the ABI; this host holds the configurations and the
// answer of a gRPC call while its callback runs.
const (
	bufferGrpcReceive         = 5
	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7
	bufferTypeMax             = 8
)

func getBufferBytes(vm *VM, s []uint64) Status {
	var buf []byte
	switch arg(s, 0) {
	case bufferGrpcReceive:
		buf = vm.grpcReceive
	case bufferVMConfiguration:
		buf = vm.vmConfig
	case bufferPluginConfiguration:
		buf = vm.plugConf
	default:
		if arg(s, 0) > bufferTypeMax {
			return StatusBadArgument
		}
	}
	if buf == nil {
		return StatusNotFound
	}
	start, length := uint64(arg(s, 1)), uint64(arg(s, 2))
	if start > uint64(len(buf)) {
		return StatusBadArgument
	}
	end := min(start+length, uint64(len(buf)))
	if end == start {
		// As Envoy: nothing to copy leaves the out-pointers untouched.
		return StatusOK
	}
	return vm.copyOut(string(buf[start:end]), arg(s, 3), arg(s, 4))
}

func setBufferBytes(vm *VM, s []uint64) Status {
	if arg(s, 0) > bufferTypeMax {
		return StatusBadArgument
	}
	vm.host.recordUnimplemented("proxy_set_buffer_bytes")
	return StatusUnimplemented
}

// Header map types of the ABI; this host holds the stream's request and
// response headers.
const (
	mapRequestHeaders  = 0
	mapResponseHeaders = 2
	mapTypeMax         = 7
)

// headerMap returns the map a header call addresses, or a status: a map the
// current context does not have is StatusBadArgument, as in Envoy. That
// includes the request headers once the response is under way.
func (vm *VM) headerMap(typ uint32) (*Headers, Status) {
	if typ > mapTypeMax || vm.active == nil {
		return nil, StatusBadArgument
	}
	var m *Headers
	switch typ {
	case mapRequestHeaders:
		if vm.active.inResponse {
			return nil, StatusBadArgument
		}
		m = &vm.active.request
	case mapResponseHeaders:
		m = &vm.active.response
	}
	if m == nil || *m == nil {
		return nil, StatusBadArgument
	}
	return m, StatusOK
}

// headerKey reads a header name and lower-cases it, as Envoy's
// Http::LowerCaseString does.
func (vm *VM) headerKey(ptr, size uint32) (string, Status) {
	b, ok := vm.view(ptr, size)
	if !ok {
		return "", StatusInvalidMemoryAccess
	}
	return strings.ToLower(string(b)), StatusOK
}

func getHeaderMapValue(vm *VM, s []uint64) Status {
	m, st := vm.headerMap(arg(s, 0))
	if st != StatusOK {
		return st
	}
	key, st := vm.headerKey(arg(s, 1), arg(s, 2))
	if st != StatusOK {
		return st
	}
	v, ok := m.Get(key)
	if !ok {
		return StatusNotFound
	}
	return vm.copyOut(v, arg(s, 3), arg(s, 4))
}

// headerEdit implements add and replace, which share a signature.
func headerEdit(vm *VM, s []uint64, edit func(h *Headers, k, v string)) Status {
	m, st := vm.headerMap(arg(s, 0))
	if st != StatusOK {
		return st
	}
	key, st := vm.headerKey(arg(s, 1), arg(s, 2))
	if st != StatusOK {
		return st
	}
	value, ok := vm.str(arg(s, 3), arg(s, 4))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	edit(m, key, value)
	return StatusOK
}

func addHeaderMapValue(vm *VM, s []uint64) Status {
	return headerEdit(vm, s, (*Headers).add)
}

func replaceHeaderMapValue(vm *VM, s []uint64) Status {
	return headerEdit(vm, s, (*Headers).replace)
}

func removeHeaderMapValue(vm *VM, s []uint64) Status {
	m, st := vm.headerMap(arg(s, 0))
	if st != StatusOK {
		return st
	}
	key, st := vm.headerKey(arg(s, 1), arg(s, 2))
	if st != StatusOK {
		return st
	}
	m.remove(key)
	return StatusOK
}

func getHeaderMapPairs(vm *VM, s []uint64) Status {
	m, st := vm.headerMap(arg(s, 0))
	if st != StatusOK {
		return st
	}
	return vm.copyOut(string(marshalPairs(*m)), arg(s, 1), arg(s, 2))
}

func setHeaderMapPairs(vm *VM, s []uint64) Status {
	m, st := vm.headerMap(arg(s, 0))
	if st != StatusOK {
		return st
	}
	b, ok := vm.view(arg(s, 1), arg(s, 2))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	h, ok := unmarshalPairs(b)
	if !ok {
		return StatusBadArgument
	}
	if h == nil {
		h = Headers{}
	}
	*m = h
	return StatusOK
}

func sendLocalResponse(vm *VM, s []uint64) Status {
	if vm.active == nil {
		return StatusBadArgument
	}
	details, ok1 := vm.str(arg(s, 1), arg(s, 2))
	body, ok2 := vm.view(arg(s, 3), arg(s, 4))
	pairs, ok3 := vm.view(arg(s, 5), arg(s, 6))
	if !ok1 || !ok2 || !ok3 {
		return StatusInvalidMemoryAccess
	}
	headers, ok := unmarshalPairs(pairs)
	if !ok {
		return StatusBadArgument
	}
	vm.active.local = &LocalResponse{
		StatusCode: arg(s, 0),
		Details:    details,
		Body:       append([]byte(nil), body...),
		Headers:    headers,
		GRPCStatus: int32(arg(s, 7)),
	}
	return StatusOK
}

func getSharedData(vm *VM, s []uint64) Status {
	key, ok := vm.str(arg(s, 0), arg(s, 1))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	vm.host.mu.Lock()
	e, found := vm.host.shared[key]
	vm.host.mu.Unlock()
	if !found {
		return StatusNotFound
	}
	if st := vm.copyOut(string(e.value), arg(s, 2), arg(s, 3)); st != StatusOK {
		return st
	}
	if !vm.mod.Memory().WriteUint32Le(arg(s, 4), e.cas) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func setSharedData(vm *VM, s []uint64) Status {
	key, ok1 := vm.str(arg(s, 0), arg(s, 1))
	value, ok2 := vm.view(arg(s, 2), arg(s, 3))
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	return vm.host.SetSharedData(key, value, arg(s, 4))
}

func defineMetric(vm *VM, s []uint64) Status {
	name, ok := vm.str(arg(s, 1), arg(s, 2))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	id, st := vm.host.defineMetric(MetricType(arg(s, 0)), name)
	if st != StatusOK {
		return st
	}
	if !vm.mod.Memory().WriteUint32Le(arg(s, 3), id) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func incrementMetric(vm *VM, s []uint64) Status {
	m := vm.host.metric(arg(s, 0))
	if m == nil {
		return StatusNotFound
	}
	offset := int64(s[1])
	switch {
	case m.typ == MetricGauge, m.typ == MetricCounter && offset >= 0:
		// A negative gauge offset wraps around, as unsigned subtraction.
		m.value.Add(uint64(offset))
		return StatusOK
	}
	return StatusBadArgument
}

func recordMetric(vm *VM, s []uint64) Status {
	m := vm.host.metric(arg(s, 0))
	if m == nil {
		return StatusNotFound
	}
	switch m.typ {
	case MetricCounter:
		m.value.Add(s[1])
	case MetricGauge:
		m.value.Store(s[1])
	case MetricHistogram:
		m.value.Add(s[1])
		m.samples.Add(1)
	}
	return StatusOK
}

func getMetric(vm *VM, s []uint64) Status {
	m := vm.host.metric(arg(s, 0))
	if m == nil {
		return StatusNotFound
	}
	if m.typ == MetricHistogram {
		return StatusBadArgument
	}
	if !vm.mod.Memory().WriteUint64Le(arg(s, 1), m.value.Load()) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// propertyPath reads a property path, whose segments the SDKs separate with
// NUL bytes, as the dot-joined key of Options.Properties.
func (vm *VM) propertyPath(ptr, size uint32) (string, bool) {
	b, ok := vm.view(ptr, size)
	if !ok {
		return "", false
	}
	return strings.ReplaceAll(string(b), "\x00", "."), true
}

func getProperty(vm *VM, s []uint64) Status {
	path, ok := vm.propertyPath(arg(s, 0), arg(s, 1))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	v, found := vm.property(path)
	if !found {
		return StatusNotFound
	}
	return vm.copyOut(v, arg(s, 2), arg(s, 3))
}

// property looks path up in the stream's properties, the VM's (set by the
// plugin from its root context), Options.Properties, then the request
// attributes Envoy derives from the current request headers.
func (vm *VM) property(path string) (string, bool) {
	if st := vm.active; st != nil {
		if v, ok := st.props[path]; ok {
			return v, true
		}
	}
	if v, ok := vm.props[path]; ok {
		return v, true
	}
	if v, ok := vm.host.opts.Properties[path]; ok {
		return v, true
	}
	if vm.active == nil {
		return "", false
	}
	req := vm.active.request
	switch path {
	case "request.path":
		return req.Get(":path")
	case "request.url_path":
		p, ok := req.Get(":path")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return p, ok
	case "request.host":
		return req.Get(":authority")
	case "request.method":
		return req.Get(":method")
	case "request.scheme":
		return req.Get(":scheme")
	case "request.id":
		return req.Get("x-request-id")
	}
	return "", false
}

func setProperty(vm *VM, s []uint64) Status {
	path, ok1 := vm.propertyPath(arg(s, 0), arg(s, 1))
	value, ok2 := vm.str(arg(s, 2), arg(s, 3))
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	if vm.active != nil {
		vm.active.SetProperty(path, value)
	} else {
		vm.props[path] = value
	}
	return StatusOK
}

// clearRouteCache stands in for Envoy's foreign function of that name: the
// route is re-selected after the filter; here the call is only recorded.
func clearRouteCache([]byte) ([]byte, Status) { return nil, StatusOK }

func callForeignFunction(vm *VM, s []uint64) Status {
	name, ok1 := vm.str(arg(s, 0), arg(s, 1))
	args, ok2 := vm.view(arg(s, 2), arg(s, 3))
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	call := ForeignCall{Name: name, Args: append([]byte(nil), args...), Status: StatusNotFound}
	f, found := vm.host.opts.ForeignFunctions[name]
	if !found && name == "clear_route_cache" {
		f, found = clearRouteCache, true
	}
	var result []byte
	if found {
		result, call.Status = f(call.Args)
	}
	if vm.active != nil {
		vm.active.foreign = append(vm.active.foreign, call)
	}
	if !found {
		return StatusNotFound
	}
	// As Envoy: the result is written only where the plugin gave pointers.
	mem := vm.mod.Memory()
	var ptr uint32
	if len(result) > 0 && arg(s, 4) != 0 {
		p, ok := vm.allocate(uint32(len(result)))
		if !ok || !mem.Write(p, result) {
			return StatusInvalidMemoryAccess
		}
		ptr = p
	}
	if arg(s, 4) != 0 && !mem.WriteUint32Le(arg(s, 4), ptr) {
		return StatusInvalidMemoryAccess
	}
	if arg(s, 5) != 0 && !mem.WriteUint32Le(arg(s, 5), uint32(len(result))) {
		return StatusInvalidMemoryAccess
	}
	return call.Status
}

// continueStream resumes the active stream after the plugin paused it.
func continueStream(vm *VM, s []uint64) Status {
	if vm.active == nil {
		return StatusBadArgument
	}
	vm.active.resumed++
	return StatusOK
}

// grpcCall records a call for the test to answer with VM.GrpcReceive or
// VM.GrpcClose; like Envoy, the service must be a serialized GrpcService
// (here: not empty), and the token is odd.
func grpcCall(vm *VM, s []uint64) Status {
	service, ok1 := vm.str(arg(s, 0), arg(s, 1))
	name, ok2 := vm.str(arg(s, 2), arg(s, 3))
	method, ok3 := vm.str(arg(s, 4), arg(s, 5))
	message, ok4 := vm.str(arg(s, 8), arg(s, 9))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return StatusInvalidMemoryAccess
	}
	if service == "" {
		return StatusBadArgument
	}
	vm.nextToken += 2
	c := GrpcCall{Token: vm.nextToken, Service: []byte(service), ServiceName: name, Method: method,
		Message: []byte(message), TimeoutMillis: arg(s, 10)}
	if vm.active != nil {
		c.Stream = vm.active.id
	}
	if !vm.mod.Memory().WriteUint32Le(arg(s, 11), c.Token) {
		return StatusInvalidMemoryAccess
	}
	vm.grpcCalls = append(vm.grpcCalls, c)
	return StatusOK
}

func grpcCancel(vm *VM, s []uint64) Status {
	for i := range vm.grpcCalls {
		if c := &vm.grpcCalls[i]; c.Token == arg(s, 0) && !c.Cancelled {
			c.Cancelled = true
			return StatusOK
		}
	}
	return StatusNotFound
}

// getStatus returns the status of the call whose close callback runs.
func getStatus(vm *VM, s []uint64) Status {
	if !vm.mod.Memory().WriteUint32Le(arg(s, 0), vm.grpcStatus) {
		return StatusInvalidMemoryAccess
	}
	if vm.grpcMessage == "" {
		return StatusOK
	}
	return vm.copyOut(vm.grpcMessage, arg(s, 1), arg(s, 2))
}
