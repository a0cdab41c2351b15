package filter

// The tetratelabs-SDK shims are generated from the proxy-wasm-SDK ones;
// TestSDKShims_InSync fails when they are stale.
//go:generate sh gen_tetrate.sh sdk_proxywasm.go sdk_tetrate.go
//go:generate sh gen_tetrate.sh sdk_proxywasm_test.go sdk_tetrate_test.go
