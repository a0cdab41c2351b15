//go:build tinygo

package filter

import (
	"sync/atomic"
)

// reserveHeap grows TinyGo's heap once, at VM start, by allocating a block
// that releaseHeap drops at plugin start. TinyGo collects when its heap is
// full and grows the heap only when little is free after a collection; a
// plugin keeps almost nothing live, so the heap would stay at a few pages
// and each request's header buffers would bring a collection every few
// hundred requests. With the reserve, collections come heapReserve bytes of
// garbage apart.
func reserveHeap() {
	reserve := make([]byte, heapReserve)
	heapSink.Store(&reserve[0])
}

// releaseHeap drops the reserve; the next collection frees it for good.
func releaseHeap() { heapSink.Store(nil) }

const heapReserve = 1 << 20

// heapSink holds the reserve between the two calls. It is atomic so that
// whole-program optimization cannot drop the allocation as unused.
var heapSink atomic.Pointer[byte]
