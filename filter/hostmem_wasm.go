//go:build wasm

package filter

import (
	"errors"
	"strconv"
	"unsafe"
)

// The modules export their own malloc, which Envoy (and proxyhost, like
// it) prefers to the SDKs' proxy_on_memory_allocate for every buffer it
// hands to the plugin. It allocates as the SDKs do, a fresh block of Go
// memory, except while readRequestHeaders or readSharedData has armed
// hostArena: then the proxy writes the header map into the stream's own
// buffer, reused from one stream to the next, or the shared-data value
// into the one buffer of bucket reads.

// hostArena is the buffer the next allocation by the proxy reuses, or nil;
// readRequestHeaders and readSharedData set it around their one host call
// (a VM runs one callback at a time).
var hostArena *[]byte

// hostAllocate serves the proxy's allocations (the malloc export).
func hostAllocate(size uint32) *byte {
	if a := hostArena; a != nil {
		hostArena = nil
		if uint32(cap(*a)) < size {
			*a = make([]byte, 0, arenaSize(size))
		}
		*a = (*a)[:size]
		if size == 0 {
			return &zeroSized
		}
		return &(*a)[0]
	}
	if size == 0 {
		return &zeroSized // the SDKs index an empty slice here and panic
	}
	buf := make([]byte, size)
	return &buf[0]
}

// zeroSized is what a zero-byte allocation returns.
var zeroSized byte

// arenaSize rounds a header buffer up to a power of two of at least 1 KiB,
// so that a context's buffer settles after a few streams.
func arenaSize(size uint32) uint32 {
	n := uint32(1 << 10)
	for n < size && n < 1<<30 {
		n <<= 1
	}
	if n < size {
		return size
	}
	return n
}

const mapTypeHTTPRequestHeaders = 0

// readRequestHeaders reads the request headers into buf (grown as needed)
// and appends them to pairs, whose strings point into buf.
func readRequestHeaders(buf *[]byte, pairs [][2]string) ([][2]string, error) {
	hostArena = buf
	st := proxyGetHeaderMapPairs(mapTypeHTTPRequestHeaders, unsafe.Pointer(&returnData), &returnSize)
	data, size := returnData, returnSize
	returnData, hostArena = nil, nil
	if st != 0 {
		return pairs, errors.New("proxy_get_header_map_pairs: status " + strconv.FormatUint(uint64(st), 10))
	}
	if data == nil || size <= 0 {
		return pairs, nil
	}
	pairs, ok := parseHeaderMap(unsafe.Slice(data, size), pairs)
	if !ok {
		return pairs, errors.New("proxy_get_header_map_pairs: malformed map")
	}
	return pairs, nil
}

// readSharedData reads a shared-data value into a buffer every read
// reuses: the value is valid until the next read (a bucket is decoded as
// soon as it is read). With the SDKs' read each keyed limit check left a
// block of garbage, and in the Go module an allocation per request costs
// more than the check (docs/BENCHMARKS.md, "Growth").
func readSharedData(key string) ([]byte, uint32, error) {
	hostArena = &sharedValueBuf
	st := proxyGetSharedData(unsafe.StringData(key), int32(len(key)), unsafe.Pointer(&returnData), &returnSize, &returnCAS)
	data, size, cas := returnData, returnSize, returnCAS
	returnData, hostArena = nil, nil
	switch st {
	case 0:
	case statusNotFound:
		return nil, 0, errNotFound
	default:
		return nil, 0, errors.New("proxy_get_shared_data: status " + strconv.FormatUint(uint64(st), 10))
	}
	if data == nil || size <= 0 {
		return nil, cas, nil
	}
	return unsafe.Slice(data, size), cas, nil
}

// sharedValueBuf is the buffer of readSharedData.
var sharedValueBuf []byte

const statusNotFound = 1

// returnData and returnSize are where the proxy writes a host call's
// result: locals whose addresses go to an import escape to the heap in the
// Go build, two allocations per call.
var (
	returnData *byte
	returnSize int32
	returnCAS  uint32
)

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType uint32, returnData unsafe.Pointer, returnSize *int32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(keyData *byte, keySize int32, returnData unsafe.Pointer, returnSize *int32, returnCAS *uint32) uint32
