package filter

import (
	"bytes"
	"testing"
)

// TestModule_Dependencies fails when the TinyGo module links a package
// that only a size regression brings in: fmt (the SDKs' metric wrappers,
// formatting) or encoding/json (gjson's Get, through its modifiers). The
// module's name section (kept by -no-debug) names every function.
func TestModule_Dependencies(t *testing.T) {
	wasm := moduleFor(t, leg{name: "wasm-tinygo", wasm: "wasmgate-tinygo.wasm"})
	for _, pkg := range []string{"fmt", "encoding/json"} {
		t.Run(pkg, func(t *testing.T) {
			if bytes.Contains(wasm, []byte(pkg+".")) {
				t.Errorf("out/wasmgate-tinygo.wasm links %s (docs/BENCHMARKS.md, \"Module size\")", pkg)
			}
		})
	}
}
