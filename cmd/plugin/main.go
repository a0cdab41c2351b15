// Command wasmgate is the proxy-wasm module. The same source builds with
// TinyGo (tetratelabs SDK) and with Go for wasip1 (proxy-wasm SDK); see
// filter's SDK shim.
package main

import "github.com/wasmgate/wasmgate/filter"

func init() { filter.Register() }

func main() {}
