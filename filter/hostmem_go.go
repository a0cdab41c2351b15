//go:build wasm && !tinygo

package filter

// malloc is the module's allocator for the proxy (hostmem_wasm.go).
//
//go:wasmexport malloc
func malloc(size uint32) *byte { return hostAllocate(size) }
