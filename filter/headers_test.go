package filter

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// encodeHeaderMap is the proxy's side of parseHeaderMap.
func encodeHeaderMap(pairs [][2]string) []byte { return appendHeaderMap(nil, pairs) }

func TestParseHeaderMap(t *testing.T) {
	pairs := [][2]string{{":method", "GET"}, {":path", "/a?b=c"}, {"x-empty", ""}, {"cookie", strings.Repeat("c", 4096)}, {"x-dup", "1"}, {"x-dup", "2"}}
	b := encodeHeaderMap(pairs)
	got, ok := parseHeaderMap(b, nil)
	if !ok || !slices.Equal(got, pairs) {
		t.Fatalf("parseHeaderMap = %q, %v; want %q, true", got, ok, pairs)
	}
	// Appends to what it is given, reusing its storage.
	again, ok := parseHeaderMap(b, got[:0])
	if !ok || &again[0] != &got[0] || !slices.Equal(again, pairs) {
		t.Errorf("parseHeaderMap into got[:0] = %q, %v: not the same storage or not the same pairs", again, ok)
	}
	if got, ok := parseHeaderMap(nil, nil); !ok || len(got) != 0 {
		t.Errorf("empty map: %q, %v", got, ok)
	}
	if got, ok := parseHeaderMap(encodeHeaderMap(nil), nil); !ok || len(got) != 0 {
		t.Errorf("map of no pairs: %q, %v", got, ok)
	}
	for _, bad := range []struct {
		name string
		b    []byte
		keep int
	}{
		{"short count", b[:3], 0},
		{"count past the end", binary.LittleEndian.AppendUint32(nil, 1<<31), 0},
		{"truncated data", b[:len(b)-5], len(pairs) - 1},
		{"size past the end", func() []byte {
			c := slices.Clone(b)
			binary.LittleEndian.PutUint32(c[4+8*1:], 1<<30) // :path's name
			return c
		}(), 1},
	} {
		got, ok := parseHeaderMap(bad.b, nil)
		if ok || len(got) != bad.keep {
			t.Errorf("%s: %d pairs, ok %v; want %d, false", bad.name, len(got), ok, bad.keep)
		}
	}
}

// FuzzParseHeaderMap: no input makes the parser panic, and what it reads
// of a well-formed map is the map.
func FuzzParseHeaderMap(f *testing.F) {
	f.Add(encodeHeaderMap([][2]string{{":path", "/"}, {"a", "b"}}))
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseHeaderMap(b, nil)
		if !ok || len(b) == 0 {
			return
		}
		// The sizes read are the sizes written, and the pairs fit in b
		// (the parser does not insist on the NUL after each string).
		e := encodeHeaderMap(got)
		if n := 4 + 8*len(got); len(e) > len(b) || string(e[:n]) != string(b[:n]) {
			t.Errorf("parsed %q from %x: not the map's sizes", got, b)
		}
	})
}

// TestFilter_HeadersPerStream: each stream reads the values it was sent,
// also when streams overlap on one VM (a stream waiting for the rate limit
// service, or HTTP/2 multiplexing) and when a finished stream's context is
// reused: the modules read headers into a buffer each context keeps, and a
// response header rendered from a request header must not see another
// stream's request.
func TestFilter_HeadersPerStream(t *testing.T) {
	const policy = `{"routes": [{"name": "echo", "match": [{"uri": {"prefix": "/"}}],
	  "headers": {"request": {"set": {"x-seen": "%REQ(x-tag)%"}}, "response": {"set": {"x-echo": "%REQ(x-tag)%", "x-path": "%REQ(:path)%"}}}}]}`
	forEachLeg(t, policy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		// Four overlapping streams, then their responses in reverse order:
		// in round 0 of headers of one size (a buffer shared by streams
		// would be overwritten), in round 1 of growing sizes (each outgrows
		// the buffer the last one used), in round 2 of shrinking sizes, on
		// the contexts the earlier rounds left.
		for round := range 3 {
			ids := make([]uint32, 4)
			tags := make([]string, len(ids))
			for i := range ids {
				ids[i] = host.InitializeHttpContext()
				tags[i] = fmt.Sprintf("r%d-s%d-", round, i) + strings.Repeat(string(rune('a'+i)), [3]int{600, 500 << i, 4000 >> i}[round])
				hs := request(fmt.Sprintf("/s/%d/%d", round, i), [2]string{"x-tag", tags[i]})
				host.CallOnRequestHeaders(ids[i], hs, true)
				if got, _ := header(host.GetCurrentRequestHeaders(ids[i]), "x-seen"); got != tags[i] {
					t.Fatalf("round %d stream %d: x-seen = %.40q…, want %.40q…", round, i, got, tags[i])
				}
			}
			for i := len(ids) - 1; i >= 0; i-- {
				host.CallOnResponseHeaders(ids[i], [][2]string{{":status", "200"}}, true)
				res := host.GetCurrentResponseHeaders(ids[i])
				if got, _ := header(res, "x-echo"); got != tags[i] {
					t.Errorf("round %d stream %d: x-echo = %.40q…, want %.40q…", round, i, got, tags[i])
				}
				if got, want := headerOr(res, "x-path"), fmt.Sprintf("/s/%d/%d", round, i); got != want {
					t.Errorf("round %d stream %d: x-path = %q, want %q", round, i, got, want)
				}
				host.CompleteHttpContext(ids[i])
			}
		}
	})
}

func headerOr(hs [][2]string, name string) string {
	v, _ := header(hs, name)
	return v
}

// TestHeaderView_Index: the lookups through the name signatures answer as
// a scan of every pair does (values of a repeated name joined, the first
// one alone for FirstHeader), on random requests whose names collide in the
// signature, repeat, and share prefixes and lengths.
func TestHeaderView_Index(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{":path", ":method", ":authority", ":scheme", "cookie", "x-user-id", "x-route-to",
		"x-wasmgate-route", "x-wasmgate-key", "x-wasmgate-destination", "x-canary", "x-internal-debug", "", "a", "b"}
	for i := range 40 {
		names = append(names, fmt.Sprintf("x-extra-%d", i))
	}
	scan := func(pairs [][2]string, name string, first bool) (string, bool) {
		var vals []string
		for _, p := range pairs {
			if p[0] == name {
				vals = append(vals, p[1])
			}
		}
		if len(vals) == 0 {
			return "", false
		}
		sep := ","
		if name == "cookie" {
			sep = "; "
		}
		if first {
			return vals[0], true
		}
		return strings.Join(vals, sep), true
	}
	collisions := 0
	for range 3000 {
		var v headerView
		for range rng.IntN(60) {
			v.pairs = append(v.pairs, [2]string{names[rng.IntN(len(names))], fmt.Sprint(rng.IntN(100))})
		}
		v.index()
		for _, name := range names {
			got, ok := v.Header(name)
			want, wantOK := scan(v.pairs, name, false)
			if got != want || ok != wantOK {
				t.Fatalf("Header(%q) over %q = %q, %v; want %q, %v", name, v.pairs, got, ok, want, wantOK)
			}
			got, ok = v.FirstHeader(name)
			want, wantOK = scan(v.pairs, name, true)
			if got != want || ok != wantOK {
				t.Fatalf("FirstHeader(%q) over %q = %q, %v; want %q, %v", name, v.pairs, got, ok, want, wantOK)
			}
			if w, b := nameBit(name); !wantOK && v.seen[w]&b != 0 {
				collisions++
			}
		}
	}
	if collisions == 0 {
		t.Error("no absent name shared a signature bit with a present one: the test does not reach the scans behind a collision")
	}
}

// TestWasm_HeaderBufferReused: in the modules the proxy writes each
// request's header map into the buffer of the stream's context, which the
// context keeps: one stream after another, the header map lands at the
// same address (with the SDKs' allocator every request got fresh memory,
// garbage for TinyGo's collector), and a larger request grows the buffer
// once.
func TestWasm_HeaderBufferReused(t *testing.T) {
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			vm := newWorkerHost(t, l).worker(t, seedPolicy)
			var first uint32
			for i := range 50 {
				hs := request(fmt.Sprintf("/products/%d?x=%d", i, i*7919), [2]string{"x-user-id", fmt.Sprint("user-", i)})
				if i >= 40 {
					hs = append(hs, [2]string{"cookie", strings.Repeat("c", 3000)})
				}
				serve(t, vm, hs)
				a := vm.LastAllocation()
				if a.Size < 40 {
					t.Fatalf("request %d: the last allocation, %d bytes, is not the header map", i, a.Size)
				}
				switch {
				case i == 0:
					first = a.Addr
				case i < 40 && a.Addr != first:
					t.Fatalf("request %d: header map at %#x, request 0's at %#x: the buffer is not reused", i, a.Addr, first)
				case i == 41:
					first = a.Addr
				case i > 41 && a.Addr != first:
					t.Fatalf("request %d (with a 3 KB cookie): header map at %#x, request 41's at %#x", i, a.Addr, first)
				}
			}
		})
	}
}

// TestWasm_SharedDataBufferReused: a keyed limit's bucket is read from the
// proxy's shared data into one buffer every read reuses (the bucket is
// decoded at once), so a limited request leaves no garbage either.
func TestWasm_SharedDataBufferReused(t *testing.T) {
	for _, l := range wasmLegs() {
		t.Run(l.name, func(t *testing.T) {
			vm := newWorkerHost(t, l).worker(t, keyedLimitPolicy)
			var first uint32
			for i := range 50 {
				// Few users, so that each request finds its bucket and the
				// last allocation of the request is the bucket's read.
				s := serve(t, vm, request("/products/1", [2]string{"x-user-id", fmt.Sprint("user-", i%4)}))
				if lr := s.LocalResponse(); lr != nil {
					t.Fatalf("request %d answered locally with %d", i, lr.StatusCode)
				}
				a := vm.LastAllocation()
				if i == 4 {
					first = a.Addr
				} else if i > 4 && a.Addr != first {
					t.Fatalf("request %d: the bucket read at %#x (%d bytes), request 4's at %#x: not reused", i, a.Addr, a.Size, first)
				}
			}
		})
	}
}
