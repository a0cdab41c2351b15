//go:build !wasm

package filter

import "errors"

// Native builds run on the SDK's host emulator, which has no gRPC calls: a
// call fails, and the limit's failureMode decides, as when the service is
// down.
var errNoGrpc = errors.New("proxy_grpc_call: not available outside a proxy-wasm host")

func grpcCall([]byte, string, string, []byte, uint32) (uint32, error) { return 0, errNoGrpc }
func grpcCancel(uint32)                                               {}
func grpcReceiveBuffer(uint32) ([]byte, error)                        { return nil, errNoGrpc }
func grpcStatusMessage() string                                       { return "" }
