//go:build wasm

package filter

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/wasmgate/wasmgate/policy"
)

// sendLocalResponse answers the stream from the proxy. Unlike the SDKs'
// SendHttpResponse it passes response-code details, which Envoy shows as
// %RESPONSE_CODE_DETAILS% in access logs.
func sendLocalResponse(status uint32, details string, headers [][2]string, body string) error {
	localReplyBuf = appendHeaderMap(localReplyBuf[:0], headers)
	st := proxySendLocalResponse(status, unsafe.StringData(details), int32(len(details)),
		unsafe.StringData(body), int32(len(body)), &localReplyBuf[0], int32(len(localReplyBuf)), -1)
	if st != 0 {
		return errors.New("proxy_send_local_response: status " + strconv.FormatUint(uint64(st), 10))
	}
	return nil
}

// localReplyBuf is reused: a VM runs one callback at a time.
var localReplyBuf []byte

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(statusCode uint32, detailsData *byte, detailsSize int32,
	bodyData *byte, bodySize int32, headersData *byte, headersSize int32, grpcStatus int32) uint32

// setRouteProperty records the matched route's name in the stream's filter
// state as wasm.wasmgate_route (%FILTER_STATE(wasm.wasmgate_route:PLAIN)% in
// access logs). name is a precomputed byte copy of the route name, and the
// path is passed as the proxy keys it, so the call allocates nothing (the
// SDKs serialize the path anew on every call).
func setRouteProperty(name []byte) error {
	if st := proxySetProperty(&routeProperty[0], int32(len(routeProperty)), &name[0], int32(len(name))); st != 0 {
		return errors.New("proxy_set_property: status " + strconv.FormatUint(uint64(st), 10))
	}
	return nil
}

var routeProperty = []byte(policy.RouteProperty)

//go:wasmimport env proxy_set_property
func proxySetProperty(pathData *byte, pathSize int32, valueData *byte, valueSize int32) uint32
