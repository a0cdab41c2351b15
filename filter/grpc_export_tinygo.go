//go:build wasm && tinygo

package filter

// The gRPC callbacks of the TinyGo build (//export); grpc_export_go.go has
// the upstream Go build's.

//export proxy_on_grpc_receive
func proxyOnGrpcReceive(_, token, size uint32) { onGrpcReceive(token, size) }

//export proxy_on_grpc_close
func proxyOnGrpcClose(_, token, status uint32) { onGrpcClose(token, status) }

// A unary call gets no metadata callbacks from Envoy; they are exported so
// a host that sends them finds them.

//export proxy_on_grpc_receive_initial_metadata
func proxyOnGrpcReceiveInitialMetadata(_, _, _ uint32) {}

//export proxy_on_grpc_receive_trailing_metadata
func proxyOnGrpcReceiveTrailingMetadata(_, _, _ uint32) {}
