//go:build !wasm

package filter

import "errors"

// Native builds run on the SDK's host emulator, which has no gRPC calls.
// nativeGrpc stands in for the proxy's: nil (the default) means none, so a
// call fails and the limit's failureMode decides, as when the service is
// down. The filter's Go tests put a scripted service here.
var nativeGrpc interface {
	call(service []byte, serviceName, method string, message []byte, timeoutMillis uint32) (uint32, error)
	cancel(token uint32)
	received() []byte
}

var errNoGrpc = errors.New("proxy_grpc_call: not available outside a proxy-wasm host")

func grpcCall(service []byte, serviceName, method string, message []byte, timeoutMillis uint32) (uint32, error) {
	if nativeGrpc == nil {
		return 0, errNoGrpc
	}
	return nativeGrpc.call(service, serviceName, method, message, timeoutMillis)
}

func grpcCancel(token uint32) {
	if nativeGrpc != nil {
		nativeGrpc.cancel(token)
	}
}

func grpcReceiveBuffer(uint32) ([]byte, error) {
	if nativeGrpc == nil {
		return nil, errNoGrpc
	}
	return nativeGrpc.received(), nil
}

func grpcStatusMessage() string { return "" }
