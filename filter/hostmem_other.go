//go:build !wasm

package filter

// readRequestHeaders appends the request headers to pairs. Outside a
// module the SDK's test host serves them; buf is unused.
func readRequestHeaders(_ *[]byte, pairs [][2]string) ([][2]string, error) {
	hs, err := getHTTPRequestHeaders()
	return append(pairs, hs...), err
}

// readSharedData reads a shared-data value through the SDK's test host.
func readSharedData(key string) ([]byte, uint32, error) { return getSharedData(key) }
