//go:build tinygo

package filter

import "unsafe"

// malloc is the module's allocator for the proxy (hostmem_wasm.go). TinyGo
// exports its own malloc unless built with -tags=custommalloc, as the
// Makefile does: TinyGo's keeps every block until free, which the proxy
// never calls.
//
//export malloc
func malloc(size uintptr) unsafe.Pointer { return unsafe.Pointer(hostAllocate(uint32(size))) }
