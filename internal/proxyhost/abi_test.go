package proxyhost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// allocAddr is where the bare module's allocator always answers.
const allocAddr = 1024

// bareModule is a hand-assembled plugin with no callbacks: it declares ABI
// 0.2.0 and, when withAlloc, a proxy_on_memory_allocate that always returns
// allocAddr. It lets tests call host functions with any guest input.
func bareModule(withAlloc bool) []byte {
	section := func(id byte, payload ...byte) []byte {
		return append([]byte{id, byte(len(payload))}, payload...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	export := func(n string, kind, index byte) []byte { return append(name(n), kind, index) }

	funcs := []byte{1, 0} // abi version: type 0
	exports := export("proxy_abi_version_0_2_0", 0, 0)
	exports = append(exports, export("memory", 2, 0)...)
	bodies := []byte{2, 0, 0x0b} // no locals, end
	if withAlloc {
		funcs = []byte{2, 0, 1}
		exports = append(exports, export("proxy_on_memory_allocate", 0, 1)...)
		bodies = append(bodies, 5, 0, 0x41, 0x80, 0x08, 0x0b) // i32.const 1024
	}
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, section(1, 2, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f)...) // () -> (), (i32) -> i32
	m = append(m, section(3, funcs...)...)
	m = append(m, section(5, 1, 0, 1)...) // one memory of one page
	exportCount := byte(2)
	if withAlloc {
		exportCount = 3
	}
	m = append(m, section(7, append([]byte{exportCount}, exports...)...)...)
	return append(m, section(10, append([]byte{funcs[0]}, bodies...)...)...)
}

// newBareVM starts the bare module with one open stream carrying the
// request headers ":path: /p?q" and "a: 1".
func newBareVM(t *testing.T, opts Options) (*Host, *VM, *HTTPStream) {
	t.Helper()
	h, vm := newTestVM(t, bareModule(true), opts, "")
	s := mustStream(t, vm)
	if _, err := s.RequestHeaders([][2]string{{":path", "/p?q"}, {"a", "1"}}, true); err != nil {
		t.Fatal(err)
	}
	return h, vm, s
}

// callHost calls the host function name as the guest would, from stream s
// (nil: the root context).
func callHost(vm *VM, s *HTTPStream, name string, args ...uint64) Status {
	for _, f := range abiFuncs {
		if f.name == name {
			vm.active = s
			defer func() { vm.active = nil }()
			return f.fn(vm, append(args, 0))
		}
	}
	panic("no host function " + name)
}

func (vm *VM) poke(addr uint32, data []byte) {
	if !vm.mod.Memory().Write(addr, data) {
		panic("poke out of range")
	}
}

func (vm *VM) peekU32(addr uint32) uint32 {
	v, _ := vm.mod.Memory().ReadUint32Le(addr)
	return v
}

func TestHostFunctions_Status(t *testing.T) {
	const (
		str     = 100 // "ac"
		pair    = 200 // a truncated pairs buffer
		out     = 300 // out-pointers
		bad     = 0xfffffff0
		counter = 1 // id of the counter defined below
	)
	h, vm, s := newBareVM(t, Options{})
	vm.poke(str, []byte("ac"))
	vm.poke(pair, []byte{5, 0, 0, 0, 1, 0, 0, 0})
	if id, _ := h.defineMetric(MetricCounter, "c"); id != counter {
		t.Fatalf("counter id = %d", id)
	}
	tests := []struct {
		name   string
		fn     string
		root   bool
		args   []uint64
		status Status
	}{
		{"log level out of range", "proxy_log", false, []uint64{6, str, 1}, StatusBadArgument},
		{"log message out of memory", "proxy_log", false, []uint64{2, bad, 100}, StatusInvalidMemoryAccess},
		{"header map type out of range", "proxy_get_header_map_value", false, []uint64{99, str, 1, out, out + 4}, StatusBadArgument},
		{"response headers not received yet", "proxy_get_header_map_value", false, []uint64{2, str, 1, out, out + 4}, StatusBadArgument},
		{"trailers absent", "proxy_add_header_map_value", false, []uint64{1, str, 1, str, 1}, StatusBadArgument},
		{"header map at root context", "proxy_get_header_map_pairs", true, []uint64{0, out, out + 4}, StatusBadArgument},
		{"header key out of memory", "proxy_get_header_map_value", false, []uint64{0, bad, 100, out, out + 4}, StatusInvalidMemoryAccess},
		{"header missing", "proxy_get_header_map_value", false, []uint64{0, str + 1, 0, out, out + 4}, StatusNotFound},
		{"header out-pointer out of memory", "proxy_get_header_map_value", false, []uint64{0, str, 1, bad, out}, StatusInvalidMemoryAccess},
		{"header value out of memory", "proxy_replace_header_map_value", false, []uint64{0, str, 1, bad, 100}, StatusInvalidMemoryAccess},
		{"truncated pairs", "proxy_set_header_map_pairs", false, []uint64{0, pair, 8}, StatusBadArgument},
		{"local response at root context", "proxy_send_local_response", true, []uint64{200, 0, 0, 0, 0, 0, 0, 0}, StatusBadArgument},
		{"local response with truncated pairs", "proxy_send_local_response", false, []uint64{200, 0, 0, 0, 0, pair, 8, 0}, StatusBadArgument},
		{"shared key missing", "proxy_get_shared_data", false, []uint64{str, 1, out, out + 4, out + 8}, StatusNotFound},
		{"shared value out of memory", "proxy_set_shared_data", false, []uint64{str, 1, bad, 100, 0}, StatusInvalidMemoryAccess},
		{"metric type out of range", "proxy_define_metric", false, []uint64{3, str, 1, out}, StatusBadArgument},
		{"counter redefined as a gauge", "proxy_define_metric", false, []uint64{1, str + 1, 1, out}, StatusBadArgument},
		{"counter decremented", "proxy_increment_metric", false, []uint64{counter, ^uint64(0)}, StatusBadArgument},
		{"metric unknown", "proxy_get_metric", false, []uint64{99, out}, StatusNotFound},
		{"plugin configuration outside on_configure", "proxy_get_buffer_bytes", true, []uint64{7, 0, 10, out, out + 4}, StatusNotFound},
		{"request body absent", "proxy_get_buffer_bytes", false, []uint64{0, 0, 10, out, out + 4}, StatusNotFound},
		{"buffer type out of range", "proxy_get_buffer_bytes", false, []uint64{9, 0, 10, out, out + 4}, StatusBadArgument},
		{"effective context unknown", "proxy_set_effective_context", false, []uint64{99}, StatusBadArgument},
		{"property missing", "proxy_get_property", false, []uint64{str, 1, out, out + 4}, StatusNotFound},
		{"foreign function unknown", "proxy_call_foreign_function", false, []uint64{str, 1, 0, 0, out, out + 4}, StatusNotFound},
		{"http call", "proxy_http_call", false, make([]uint64, 10), StatusUnimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := s
			if tt.root {
				from = nil
			}
			if got := callHost(vm, from, tt.fn, tt.args...); got != tt.status {
				t.Errorf("%s = %v, want %v", tt.fn, got, tt.status)
			}
		})
	}
	if got := h.Unimplemented(); !reflect.DeepEqual(got, map[string]int{"proxy_http_call": 1}) {
		t.Errorf("unimplemented calls = %v", got)
	}
}

// TestHostFunctions_CopyOut checks the data a host function gives back: it
// lies where the guest allocator said, and the out-pointers name it.
func TestHostFunctions_CopyOut(t *testing.T) {
	h, vm, s := newBareVM(t, Options{
		Properties: map[string]string{"plugin_name": "wasmgate"},
		ForeignFunctions: map[string]ForeignFunc{
			"echo": func(args []byte) ([]byte, Status) { return append([]byte("echo:"), args...), StatusOK },
		},
	})
	const (
		in  = 100
		out = 300
	)
	if st := h.SetSharedData("k", []byte("shared"), 0); st != StatusOK {
		t.Fatal(st)
	}
	_, cas, _ := h.SharedData("k")
	tests := []struct {
		name  string
		input string
		fn    string
		args  []uint64
		want  string
	}{
		{"header value", "A", "proxy_get_header_map_value", []uint64{0, in, 1, out, out + 4}, "1"},
		{"header pairs", "", "proxy_get_header_map_pairs", []uint64{0, out, out + 4},
			"\x02\x00\x00\x00\x05\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00:path\x00/p?q\x00a\x001\x00"},
		{"property by NUL-separated path", "plugin_name", "proxy_get_property", []uint64{in, 11, out, out + 4}, "wasmgate"},
		{"request property derived from headers", "request\x00url_path", "proxy_get_property", []uint64{in, 16, out, out + 4}, "/p"},
		{"shared data", "k", "proxy_get_shared_data", []uint64{in, 1, out, out + 4, out + 8}, "shared"},
		{"foreign function", "xyz", "proxy_call_foreign_function", []uint64{allocAddr + 512, 4, in, 3, out, out + 4}, "echo:xyz"},
	}
	vm.poke(allocAddr+512, []byte("echo"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm.poke(in, []byte(tt.input))
			vm.poke(out, make([]byte, 8))
			if st := callHost(vm, s, tt.fn, tt.args...); st != StatusOK {
				t.Fatalf("%s = %v", tt.fn, st)
			}
			ptr, size := vm.peekU32(out), vm.peekU32(out+4)
			got, _ := vm.view(ptr, size)
			if ptr != allocAddr || string(got) != tt.want {
				t.Errorf("out = %d:%q, want %d:%q", ptr, got, allocAddr, tt.want)
			}
		})
	}
	if got := vm.peekU32(out + 8); got != cas {
		t.Errorf("cas = %d, want %d", got, cas)
	}
}

func TestHostFunctions_HeaderEdits(t *testing.T) {
	_, vm, s := newBareVM(t, Options{})
	const k, v = 100, 200
	edit := func(fn, key, value string) {
		vm.poke(k, []byte(key))
		vm.poke(v, []byte(value))
		args := []uint64{0, k, uint64(len(key)), v, uint64(len(value))}
		if fn == "proxy_remove_header_map_value" {
			args = args[:3]
		}
		if st := callHost(vm, s, fn, args...); st != StatusOK {
			t.Fatalf("%s(%s) = %v", fn, key, st)
		}
	}
	edit("proxy_add_header_map_value", "B", "1")
	edit("proxy_add_header_map_value", "b", "2")
	edit("proxy_add_header_map_value", "c", "3")
	edit("proxy_replace_header_map_value", "b", "new")
	edit("proxy_replace_header_map_value", "d", "4")
	edit("proxy_remove_header_map_value", "C", "")
	want := Headers{{":path", "/p?q"}, {"a", "1"}, {"b", "new"}, {"d", "4"}}
	if got := s.Request(); !reflect.DeepEqual(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
	pairs := marshalPairs(Headers{{"X-New", "v"}})
	vm.poke(k, pairs)
	if st := callHost(vm, s, "proxy_set_header_map_pairs", 0, k, uint64(len(pairs))); st != StatusOK {
		t.Fatal(st)
	}
	if got, want := s.Request(), (Headers{{"x-new", "v"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("after set pairs: headers = %q, want %q", got, want)
	}
}

func TestHost_SetSharedData(t *testing.T) {
	h, err := NewHost(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tests := []struct {
		name    string
		cas     func(current uint32) uint32
		want    Status
		wantVal string
	}{
		{"missing key with any cas", func(uint32) uint32 { return 42 }, StatusOK, "v1"},
		{"current cas", func(c uint32) uint32 { return c }, StatusOK, "v2"},
		{"stale cas", func(c uint32) uint32 { return c - 1 }, StatusCasMismatch, "v2"},
		{"zero cas is unconditional", func(uint32) uint32 { return 0 }, StatusOK, "v4"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before, _ := h.SharedData("k")
			value := []byte{'v', byte('1' + i)}
			if got := h.SetSharedData("k", value, tt.cas(before)); got != tt.want {
				t.Fatalf("status = %v, want %v", got, tt.want)
			}
			v, after, ok := h.SharedData("k")
			if !ok || string(v) != tt.wantVal {
				t.Errorf("value = %q, %v; want %q", v, ok, tt.wantVal)
			}
			if changed := after != before; changed != (tt.want == StatusOK) {
				t.Errorf("cas %d -> %d after status %v", before, after, tt.want)
			}
		})
	}
}

func TestHost_SharedDataSince(t *testing.T) {
	h, err := NewHost(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.SetSharedData("a", []byte("1"), 0)
	keys, next := h.SharedDataSince(0)
	if !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("keys = %q, want [a]", keys)
	}
	h.SetSharedData("c", []byte("1"), 0)
	h.SetSharedData("b", []byte("1"), 0)
	if keys, _ := h.SharedDataSince(next); !slices.Equal(keys, []string{"b", "c"}) {
		t.Fatalf("keys since %d = %q, want [b c]", next, keys)
	}
}

func TestHost_Compile_Errors(t *testing.T) {
	h, err := NewHost(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"not wasm", []byte("nope"), "proxyhost: compile: invalid magic number"},
		{"no ABI version", []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, "proxyhost: compile: missing export proxy_abi_version_0_2_0 (or 0.1.0, 0.2.1)"},
		{"no allocator", bareModule(false), "proxyhost: compile: missing export malloc or proxy_on_memory_allocate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Compile(tt.wasm)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMarshalPairs(t *testing.T) {
	h := Headers{{":path", "/"}, {"a", ""}, {"a", "2"}}
	got, ok := unmarshalPairs(marshalPairs(h))
	if !ok || !reflect.DeepEqual(got, h) {
		t.Errorf("round trip = %q, %v", got, ok)
	}
	want := []byte("\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00k\x00vv\x00")
	if b := marshalPairs(Headers{{"k", "vv"}}); !bytes.Equal(b, want) {
		t.Errorf("marshalPairs = %q, want %q", b, want)
	}
}

func TestUnmarshalPairs_Errors(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		b    []byte
	}{
		{"short count", []byte{1, 0}},
		{"count beyond sizes", le.AppendUint32(nil, 1<<30)},
		{"key beyond buffer", le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1), 10), 0)},
		{"missing NUL after value", []byte("\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\x00v")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, ok := unmarshalPairs(tt.b); ok {
				t.Errorf("unmarshalPairs(%q) = %q, want malformed", tt.b, h)
			}
		})
	}
}

func TestVM_Close(t *testing.T) {
	_, vm, _ := newBareVM(t, Options{})
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.NewHTTPStream(); !errors.Is(err, ErrVMFailed) {
		t.Errorf("NewHTTPStream after Close: err = %v, want ErrVMFailed", err)
	}
}
