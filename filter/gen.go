package filter

// The tetratelabs-SDK shims are generated from the proxy-wasm-SDK ones;
// TestShims_InSync (shims_test.go) fails when they are stale.
//go:generate sh ../build/gen-tetrate-shim.sh sdk_proxywasm.go sdk_tetrate.go
//go:generate sh ../build/gen-tetrate-shim.sh sdk_proxywasm_test.go sdk_tetrate_test.go
