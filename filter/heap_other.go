//go:build !tinygo

package filter

// reserveHeap does nothing for Go's collector, which sizes its heap to the
// live data (GOGC).
func reserveHeap() {}

func releaseHeap() {}
