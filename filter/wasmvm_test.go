//go:build !tinygo && !wasmgate_tetrate

package filter

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The SDK's emulator exports no gRPC host functions, so it cannot load the
// plugin, which imports them. The .wasm legs therefore load the module
// themselves: its gRPC imports are moved from "env" to a module of stubs
// that fail like a host without the call (status 12, unimplemented), the
// rest of "env" is the emulator's own, and the emulator's VM wrapper is
// pointed at that module. In the emulator a global limit's call thus
// fails and its failureMode decides; real calls are tested against Envoy
// (e2e).

//go:linkname sdkExportHostABI github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest.exportHostABI
func sdkExportHostABI(ctx context.Context, r wazero.Runtime) error

func init() { newWasmVMContext = newGrpcStubbedVMContext }

// grpcStubs are the gRPC host functions with their parameter counts.
var grpcStubs = map[string]int{"proxy_grpc_call": 12, "proxy_grpc_cancel": 1, "proxy_get_status": 3}

const stubModule = "wasmgate_test_grpc"

const statusUnimplemented = 12

func newGrpcStubbedVMContext(wasm []byte) (vmContextAPI, error) {
	wasm, err := moveImports(wasm, "env", stubModule, grpcStubs)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return nil, err
	}
	if err := sdkExportHostABI(ctx, r); err != nil {
		return nil, err
	}
	b := r.NewHostModuleBuilder(stubModule)
	for name, params := range grpcStubs {
		b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) {
			stack[0] = statusUnimplemented
		}), i32s(params), []api.ValueType{api.ValueTypeI32}).Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return nil, err
	}
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().
		WithStartFunctions("_initialize", "_start", "main").WithStdout(os.Stderr).WithStderr(os.Stderr))
	if err != nil {
		return nil, err
	}
	// The emulator's wrapper of an empty module, re-pointed at mod.
	vm, err := proxytest.NewWasmVMContext([]byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		return nil, err
	}
	if err := vm.Close(); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(vm).Elem()
	if err := setField(v, "runtime", r); err != nil {
		return nil, err
	}
	if err := setField(v, "ctx", ctx); err != nil {
		return nil, err
	}
	abi := v.FieldByName("abi")
	if !abi.IsValid() || abi.Kind() != reflect.Struct {
		return nil, errors.New("the SDK's VM wrapper changed: no abi struct")
	}
	for i := range abi.NumField() {
		export := snakeCase(abi.Type().Field(i).Name) // proxyOnVMStart → proxy_on_vm_start
		var fn any
		if f := mod.ExportedFunction(export); f != nil {
			fn = f
		}
		if err := setField(abi, abi.Type().Field(i).Name, fn); err != nil {
			return nil, err
		}
	}
	return vm, nil
}

func i32s(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = api.ValueTypeI32
	}
	return ts
}

// setField sets the unexported field name of struct v to value.
func setField(v reflect.Value, name string, value any) error {
	f := v.FieldByName(name)
	if !f.IsValid() {
		return errors.New("the SDK's VM wrapper changed: no field " + name)
	}
	val := reflect.ValueOf(value)
	if !val.IsValid() || val.Kind() == reflect.Pointer && val.IsNil() {
		val = reflect.Zero(f.Type())
	}
	if !val.Type().AssignableTo(f.Type()) {
		return errors.New("the SDK's VM wrapper changed: field " + name)
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(val)
	return nil
}

func snakeCase(s string) string {
	var b strings.Builder
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			if i > 0 && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// moveImports rewrites the import section of a wasm binary so the function
// imports of from named in names come from module to instead.
func moveImports(wasm []byte, from, to string, names map[string]int) ([]byte, error) {
	errBad := errors.New("moveImports: malformed module")
	if len(wasm) < 8 {
		return nil, errBad
	}
	out := append([]byte(nil), wasm[:8]...)
	rest := wasm[8:]
	for len(rest) > 0 {
		id := rest[0]
		size, n := binary.Uvarint(rest[1:])
		if n <= 0 || uint64(len(rest)-1-n) < size {
			return nil, errBad
		}
		body := rest[1+n : 1+n+int(size)]
		rest = rest[1+n+int(size):]
		if id == 2 {
			var err error
			if body, err = rewriteImports(body, from, to, names); err != nil {
				return nil, err
			}
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

func rewriteImports(body []byte, from, to string, names map[string]int) ([]byte, error) {
	errBad := errors.New("moveImports: malformed import section")
	r := body
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	name := func() (string, bool) {
		l, ok := uvarint()
		if !ok || uint64(len(r)) < l {
			return "", false
		}
		s := string(r[:l])
		r = r[l:]
		return s, true
	}
	count, ok := uvarint()
	if !ok {
		return nil, errBad
	}
	out := binary.AppendUvarint(nil, count)
	for range count {
		module, ok1 := name()
		field, ok2 := name()
		if !ok1 || !ok2 || len(r) == 0 {
			return nil, errBad
		}
		descStart := r
		kind := r[0]
		r = r[1:]
		switch kind {
		case 0: // function: type index
			ok = skipUvarint(&r)
		case 1: // table: reftype, limits
			if len(r) == 0 {
				return nil, errBad
			}
			r = r[1:]
			ok = skipLimits(&r)
		case 2: // memory: limits
			ok = skipLimits(&r)
		case 3: // global: valtype, mutability
			ok = len(r) >= 2
			if ok {
				r = r[2:]
			}
		default:
			ok = false
		}
		if !ok {
			return nil, errBad
		}
		if _, moved := names[field]; moved && kind == 0 && module == from {
			module = to
		}
		out = binary.AppendUvarint(out, uint64(len(module)))
		out = append(out, module...)
		out = binary.AppendUvarint(out, uint64(len(field)))
		out = append(out, field...)
		out = append(out, descStart[:len(descStart)-len(r)]...)
	}
	if len(r) != 0 {
		return nil, errBad
	}
	return out, nil
}

func skipUvarint(r *[]byte) bool {
	_, n := binary.Uvarint(*r)
	if n <= 0 {
		return false
	}
	*r = (*r)[n:]
	return true
}

func skipLimits(r *[]byte) bool {
	if len(*r) == 0 {
		return false
	}
	flags := (*r)[0]
	*r = (*r)[1:]
	if !skipUvarint(r) {
		return false
	}
	if flags&1 != 0 {
		return skipUvarint(r)
	}
	return true
}
