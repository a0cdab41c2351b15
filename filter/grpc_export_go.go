//go:build wasm && !tinygo

package filter

// The gRPC callbacks of the upstream Go build (//go:wasmexport);
// grpc_export_tinygo.go has the TinyGo build's.

//go:wasmexport proxy_on_grpc_receive
func proxyOnGrpcReceive(_, token, size uint32) { onGrpcReceive(token, size) }

//go:wasmexport proxy_on_grpc_close
func proxyOnGrpcClose(_, token, status uint32) { onGrpcClose(token, status) }

// A unary call gets no metadata callbacks from Envoy; they are exported so
// a host that sends them finds them.

//go:wasmexport proxy_on_grpc_receive_initial_metadata
func proxyOnGrpcReceiveInitialMetadata(_, _, _ uint32) {}

//go:wasmexport proxy_on_grpc_receive_trailing_metadata
func proxyOnGrpcReceiveTrailingMetadata(_, _, _ uint32) {}
