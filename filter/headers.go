package filter

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// headerView is a stream's request headers, read from the proxy with one
// host call and looked up by the policy as often as it likes.
//
// # Notes
//
// A header sent more than once reads as its values joined with ",", as
// Envoy's router matches it: a client cannot slip past a rule by sending a
// header twice. Cookie lines are joined with "; ", as Envoy joins HTTP/2
// cookie crumbs, so each line's cookies stay readable. FirstHeader reads
// the first value alone, for %REQ()% and rate limit descriptors.
//
// In the modules the proxy writes the header map into buf, which the
// stream's context keeps from one stream to the next, and pairs' strings
// point into it (readRequestHeaders): reading the headers allocates nothing
// once buf and pairs have grown to the requests' size, so requests bring
// no garbage and TinyGo's collector, whose cost grows with every block of
// the heap, does not run (docs/BENCHMARKS.md, "Growth"). The strings are
// valid until the context's next stream loads its headers; nothing keeps
// them past the stream's end (rate limit keys are hashed, descriptors and
// edits copied out by the host calls that send them).
//
// Most lookups are of headers the request does not have (the hint headers
// the plugin strips, an override header): load records a 128-bit signature
// of the names present, and of those present more than once, so that such
// a lookup costs no scan, and a name present once ends its scan at its
// pair, whatever the number of headers (docs/BENCHMARKS.md, "Growth").
type headerView struct {
	pairs [][2]string
	buf   []byte
	// seen has a name's signature bit (nameBit) when a pair may have that
	// name; repeated when more than one pair may.
	seen, repeated [2]uint64
	loaded         bool
}

// nameBit is name's bit in a 128-bit signature: from its length and its
// first, middle and last bytes (header names share prefixes such as "x-",
// and suffixes such as "-id", less often all three and the length).
func nameBit(name string) (word int, bit uint64) {
	n := uint(len(name))
	if n == 0 {
		return 0, 1
	}
	h := (n*131 + uint(name[0])*31 + uint(name[n/2])*7 + uint(name[n-1])) & 127
	return int(h >> 6), 1 << (h & 63)
}

// index records the names of the pairs in seen and repeated.
func (v *headerView) index() {
	v.seen, v.repeated = [2]uint64{}, [2]uint64{}
	for i := range v.pairs {
		w, b := nameBit(v.pairs[i][0])
		v.repeated[w] |= v.seen[w] & b
		v.seen[w] |= b
	}
}

// maxKeptHeaderBuf bounds the header buffer a context keeps between
// streams; a stream with larger headers gets a buffer of its own.
const maxKeptHeaderBuf = 16 << 10

// load reads the request headers; on error the view is empty.
func (v *headerView) load() {
	pairs, err := readRequestHeaders(&v.buf, v.pairs[:0])
	if err != nil {
		logDebug("wasmgate: reading request headers: " + err.Error())
	}
	v.pairs, v.loaded = pairs, true
	v.index()
}

// reset forgets the stream's headers, keeping the storage for the next.
func (v *headerView) reset() {
	v.pairs, v.loaded = v.pairs[:0], false
	v.seen, v.repeated = [2]uint64{}, [2]uint64{}
	if cap(v.buf) > maxKeptHeaderBuf {
		v.buf = nil
	}
}

// appendHeaderMap encodes headers in the proxy-wasm map layout: the pair
// count, then each key and value length, then each key and value followed
// by a NUL byte, all integers little-endian uint32.
func appendHeaderMap(dst []byte, headers [][2]string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(headers)))
	for _, h := range headers {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h[0])))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h[1])))
	}
	for _, h := range headers {
		dst = append(append(dst, h[0]...), 0)
		dst = append(append(dst, h[1]...), 0)
	}
	return dst
}

// parseHeaderMap appends to pairs the pairs of b, a header map in the
// proxy-wasm layout (the pair count, then each name's and value's length,
// then each name and value followed by a NUL byte; integers little-endian
// uint32). The strings point into b. A map that does not fit its own
// lengths yields the pairs read before the fault and false.
func parseHeaderMap(b []byte, pairs [][2]string) ([][2]string, bool) {
	if len(b) < 4 {
		return pairs, len(b) == 0
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n > uint64(len(b)-4)/8 {
		return pairs, false
	}
	sizes, data := b[4:4+8*n], b[4+8*n:]
	for i := uint64(0); i < n; i++ {
		kn := uint64(binary.LittleEndian.Uint32(sizes[8*i:]))
		vn := uint64(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if kn+vn+2 > uint64(len(data)) {
			return pairs, false
		}
		pairs = append(pairs, [2]string{bytesString(data[:kn]), bytesString(data[kn+1 : kn+1+vn])})
		data = data[kn+vn+2:]
	}
	return pairs, true
}

// bytesString is b as a string without a copy; b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Header implements policy.HeaderGetter. name is lower-case, as the proxy
// keeps header names.
func (v *headerView) Header(name string) (string, bool) {
	w, b := nameBit(name)
	i := v.first(name, w, b)
	if i < 0 {
		return "", false
	}
	if v.repeated[w]&b != 0 {
		for _, p := range v.pairs[i+1:] {
			if p[0] == name {
				return v.joined(name, i), true
			}
		}
	}
	return v.pairs[i][1], true
}

// FirstHeader implements policy.FirstHeaderGetter.
func (v *headerView) FirstHeader(name string) (string, bool) {
	w, b := nameBit(name)
	if i := v.first(name, w, b); i >= 0 {
		return v.pairs[i][1], true
	}
	return "", false
}

// first is the index of name's first pair, or -1; w and b are its
// nameBit, so that an absent name costs no scan.
func (v *headerView) first(name string, w int, b uint64) int {
	if v.seen[w]&b == 0 {
		return -1
	}
	for i := range v.pairs {
		if v.pairs[i][0] == name {
			return i
		}
	}
	return -1
}

// joined returns every value of name from the first one on, joined with
// "," ("; " for cookie).
func (v *headerView) joined(name string, first int) string {
	sep := ","
	if name == "cookie" {
		sep = "; "
	}
	var b strings.Builder
	b.WriteString(v.pairs[first][1])
	for _, p := range v.pairs[first+1:] {
		if p[0] == name {
			b.WriteString(sep)
			b.WriteString(p[1])
		}
	}
	return b.String()
}

func (v *headerView) value(name string) string {
	s, _ := v.Header(name)
	return s
}
