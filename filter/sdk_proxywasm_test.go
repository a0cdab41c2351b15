//go:build !tinygo && !wasmgate_tetrate

// shim: The test shim names the SDK's host emulator; its twin is generated.

package filter

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// emulatorSDK names the SDK whose emulator hosts the tests. Only the
// proxy-wasm SDK's emulator starts reactor modules (the Go build), so the
// .wasm legs run under it alone.
const emulatorSDK = "github.com/proxy-wasm/proxy-wasm-go-sdk"

type (
	hostEmulator = proxytest.HostEmulator
	vmContextAPI = types.VMContext
)

var (
	newEmulatorOption = proxytest.NewEmulatorOption
	newHostEmulator   = proxytest.NewHostEmulator
	newWasmVMContext  = func(wasm []byte) (vmContextAPI, error) { return proxytest.NewWasmVMContext(wasm) }
)
