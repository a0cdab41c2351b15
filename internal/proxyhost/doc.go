// Package proxyhost is a small proxy-wasm host for tests: it runs a plugin's
// .wasm on wazero the way Envoy runs it, with several VMs over one shared
// state, fast enough for million-request soak runs.
//
// The SDKs' own proxytest.NewWasmVMContext runs one VM per emulator,
// compiles on every call and never deletes contexts, so it can show neither
// two Envoy worker threads sharing a rate-limit budget nor a plugin's memory
// over a long run. This host does both.
//
// # Driving it
//
//	h, _ := proxyhost.NewHost(proxyhost.Options{
//		Properties: map[string]string{"plugin_name": "wasmgate", "plugin_root_id": "wasmgate"},
//	})
//	defer h.Close()
//	m, _ := h.Compile(wasm)                  // compile once
//	vm, err := h.NewVM(m, []byte(policyJSON)) // one per emulated worker thread
//	s, _ := vm.NewHTTPStream()
//	s.SetProperty("source.address", "10.0.0.1:5555")
//	action, err := s.RequestHeaders([][2]string{{":path", "/products/1"}}, true)
//	s.Request()       // headers as the plugin left them
//	s.LocalResponse() // non-nil when the plugin answered itself
//	s.ResponseHeaders([][2]string{{":status", "200"}}, true)
//	s.Done()
//	h.Metric("name"); h.Logs(proxyhost.LogCritical); h.SharedData("key")
//	vm.MemorySize() // linear memory bytes, for soak runs
//
// # Envoy semantics kept
//
//   - Imports: the "env" functions Envoy 1.40 gives a module of the ABI
//     versions the Go SDKs declare (0.2.0), and no others: a module that
//     imports one Envoy lacks (proxy_get_log_level, for one) fails to load
//     here as it does there.
//   - Start: _initialize (then main(0, 0) if exported) for a reactor such as
//     Go's -buildmode=c-shared, or _start for a command such as TinyGo's
//     -buildmode=wasi-legacy; then proxy_on_context_create(1, 0),
//     proxy_on_vm_start, proxy_on_configure. A false result fails the start
//     (ErrStartFailed); a trap or exit fails the VM for good (ErrVMFailed).
//   - Stream end: proxy_on_done, proxy_on_log, proxy_on_delete.
//   - Memory handed to the guest comes from its malloc export when it has one,
//     else proxy_on_memory_allocate, as Envoy chooses. TinyGo exports a malloc
//     that keeps every block alive until free, which the SDKs never call, so
//     a TinyGo build leaks there, under Envoy as here, unless it is built with
//     -tags=custommalloc (then the module's own malloc, or else
//     proxy_on_memory_allocate, is used).
//   - Header maps: names lower-cased; get returns the first value; add
//     appends; replace overwrites the first and drops the rest; remove drops
//     all; pairs use the ABI's serialization. A map the context does not
//     have (response headers during the request, request headers once the
//     response headers arrived, any map at the root context, trailers) is
//     BAD_ARGUMENT.
//   - Shared data: get returns (value, cas), NOT_FOUND when missing; set
//     with cas 0 is unconditional, with a stale cas CAS_MISMATCH; a missing
//     key is always written. One namespace per Host, as Istio's empty vm_id.
//   - Metrics are per Host and shared by name, as in Envoy's stats store;
//     counters reject negative increments.
//   - Buffers: the VM configuration is readable in proxy_on_vm_start and the
//     plugin configuration in proxy_on_configure only.
//   - The clear_route_cache foreign function succeeds and is recorded on the
//     stream (HTTPStream.ForeignCalls).
//   - Unary gRPC calls (proxy_grpc_call) are recorded, not sent
//     (VM.GrpcCalls); the test answers one with VM.GrpcReceive (the answer
//     is buffer 5 while proxy_on_grpc_receive runs) or ends it with
//     VM.GrpcClose (status via proxy_get_status), both on the root context,
//     as Envoy does. proxy_grpc_cancel marks the call; proxy_continue_stream
//     resumes the effective stream (HTTPStream.Resumed).
//   - Bad pointers or malformed input from the guest give
//     INVALID_MEMORY_ACCESS or BAD_ARGUMENT, never a host panic.
//
// # Limitations
//
//   - HTTP headers only: no bodies, trailers, TCP, HTTP callouts, gRPC
//     streams or shared queues. Those imports exist (a module importing them must
//     instantiate) but answer UNIMPLEMENTED and are counted in
//     Host.Unimplemented.
//   - A local response is recorded, not sent: call ResponseHeaders with its
//     headers to emulate Envoy running the response path for it.
//   - Properties are plain strings from Options.Properties, the stream and
//     proxy_set_property, plus request.path, request.url_path, request.host,
//     request.method, request.scheme and request.id from the request headers;
//     no CEL attributes, no typed (binary) values.
//   - Root-context shutdown does not wait for proxy_done.
//   - Each VM is single-threaded: drive one VM from one goroutine; the Host
//     is shared safely.
//
// Compiled code is cached for the process, and on disk under
// $WASMGATE_CACHE/wazero (or the default tools cache) when it exists, so
// repeated test runs skip compiling the Go build's .wasm.
package proxyhost

// The test plugin's TinyGo SDK shim is generated from its Go one.
//go:generate sh ../../build/gen-tetrate-shim.sh testdata/plugin/sdk_go.go testdata/plugin/sdk_tinygo.go
