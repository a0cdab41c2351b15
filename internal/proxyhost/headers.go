package proxyhost

import (
	"encoding/binary"
	"strings"
)

// Headers is an HTTP header map in order, as Envoy keeps it: lower-case
// names, pseudo-headers (":path") included, a name may repeat.
type Headers [][2]string

// Get returns the first value of name, as proxy_get_header_map_value does.
func (h Headers) Get(name string) (string, bool) {
	name = strings.ToLower(name)
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// Values returns every value of name in order.
func (h Headers) Values(name string) []string {
	name = strings.ToLower(name)
	var vs []string
	for _, kv := range h {
		if kv[0] == name {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// newHeaders copies hs with lower-cased names, as Envoy's codecs deliver them.
func newHeaders(hs [][2]string) Headers {
	out := make(Headers, len(hs))
	for i, kv := range hs {
		out[i] = [2]string{strings.ToLower(kv[0]), kv[1]}
	}
	return out
}

// add appends a value; an existing name gets one more value.
func (h *Headers) add(name, value string) {
	*h = append(*h, [2]string{name, value})
}

// replace sets name to the single value: the first entry is overwritten in
// place and the others removed; a missing name is appended.
func (h *Headers) replace(name, value string) {
	found := false
	out := (*h)[:0]
	for _, kv := range *h {
		if kv[0] != name {
			out = append(out, kv)
			continue
		}
		if !found {
			found = true
			out = append(out, [2]string{name, value})
		}
	}
	if !found {
		out = append(out, [2]string{name, value})
	}
	*h = out
}

// remove drops every entry of name.
func (h *Headers) remove(name string) {
	out := (*h)[:0]
	for _, kv := range *h {
		if kv[0] != name {
			out = append(out, kv)
		}
	}
	*h = out
}

// marshalPairs serializes pairs in the proxy-wasm map format: a little-endian
// u32 count, count (key size, value size) u32 pairs, then each key and value
// followed by a NUL byte.
func marshalPairs(h Headers) []byte {
	size := 4
	for _, kv := range h {
		size += 8 + len(kv[0]) + 1 + len(kv[1]) + 1
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(h)))
	sizes, data := 4, 4+8*len(h)
	for _, kv := range h {
		binary.LittleEndian.PutUint32(b[sizes:], uint32(len(kv[0])))
		binary.LittleEndian.PutUint32(b[sizes+4:], uint32(len(kv[1])))
		sizes += 8
		data += copy(b[data:], kv[0]) + 1
		data += copy(b[data:], kv[1]) + 1
	}
	return b
}

// unmarshalPairs parses the proxy-wasm map format written by a guest. It
// reports false for a malformed or truncated buffer instead of reading past it.
// Names are lower-cased, as Envoy does when it builds a header map from pairs.
func unmarshalPairs(b []byte) (Headers, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if len(b) < 4 {
		return nil, false
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if 4+8*n > uint64(len(b)) {
		return nil, false
	}
	h := make(Headers, 0, n)
	data := 4 + 8*n
	for i := uint64(0); i < n; i++ {
		ks := uint64(binary.LittleEndian.Uint32(b[4+8*i:]))
		vs := uint64(binary.LittleEndian.Uint32(b[8+8*i:]))
		if data+ks+1+vs+1 > uint64(len(b)) {
			return nil, false
		}
		k := string(b[data : data+ks])
		data += ks + 1
		v := string(b[data : data+vs])
		data += vs + 1
		h = append(h, [2]string{strings.ToLower(k), v})
	}
	return h, true
}
