//go:build wasm

package filter

import (
	"errors"
	"strconv"
	"unsafe"
)

// Neither Go SDK wraps proxy-wasm's gRPC calls: the host functions are
// declared here, and the callbacks exported in grpc_export_*.go.

// grpcCall starts a unary call to service (a serialized GrpcService) and
// returns its token. The answer comes to onGrpcReceive or onGrpcClose.
func grpcCall(service []byte, serviceName, method string, message []byte, timeoutMillis uint32) (uint32, error) {
	var token uint32
	st := proxyGrpcCall(unsafe.SliceData(service), int32(len(service)),
		unsafe.StringData(serviceName), int32(len(serviceName)),
		unsafe.StringData(method), int32(len(method)),
		nil, 0,
		unsafe.SliceData(message), int32(len(message)),
		timeoutMillis, &token)
	if st != 0 {
		return 0, errors.New("proxy_grpc_call: status " + strconv.FormatUint(uint64(st), 10))
	}
	return token, nil
}

func grpcCancel(token uint32) { proxyGrpcCancel(token) }

// grpcReceiveBuffer returns the answer of the call whose callback runs, in
// memory the host allocated for it (valid until the callback returns).
func grpcReceiveBuffer(size uint32) ([]byte, error) {
	var data *byte
	var n int32
	if st := proxyGetBufferBytes(grpcReceiveBufferType, 0, int32(size), unsafe.Pointer(&data), &n); st != 0 {
		return nil, errors.New("proxy_get_buffer_bytes: status " + strconv.FormatUint(uint64(st), 10))
	}
	if data == nil || n <= 0 {
		return nil, nil
	}
	return unsafe.Slice(data, n), nil
}

// grpcStatusMessage is the message of the failed call whose close callback
// runs.
func grpcStatusMessage() string {
	var code uint32
	var data *byte
	var n int32
	if proxyGetStatus(&code, unsafe.Pointer(&data), &n) != 0 || data == nil || n <= 0 {
		return ""
	}
	return string(unsafe.Slice(data, n))
}

const grpcReceiveBufferType = 5

//go:wasmimport env proxy_grpc_call
func proxyGrpcCall(service *byte, serviceSize int32, serviceName *byte, serviceNameSize int32,
	method *byte, methodSize int32, metadata *byte, metadataSize int32,
	message *byte, messageSize int32, timeoutMillis uint32, token *uint32) uint32

//go:wasmimport env proxy_grpc_cancel
func proxyGrpcCancel(token uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code *uint32, message unsafe.Pointer, messageSize *int32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufferType uint32, start, maxSize int32, data unsafe.Pointer, size *int32) uint32
