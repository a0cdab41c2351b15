//go:build !wasm

package filter

import "github.com/wasmgate/wasmgate/policy"

// sendLocalResponse answers the stream from the proxy. Native builds run on
// the SDK's host emulator, which has no response-code details.
func sendLocalResponse(status uint32, _ string, headers [][2]string, body string) error {
	return sdkSendHTTPResponse(status, headers, []byte(body), -1)
}

// setRouteProperty records the matched route's name in the stream's filter
// state; see the wasm build's.
func setRouteProperty(name []byte) error {
	return sdkSetProperty([]string{policy.RouteProperty}, name)
}
