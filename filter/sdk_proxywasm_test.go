//go:build !tinygo && !wasmgate_tetrate

// shim: The test shim names the SDK's host emulator; its twin is generated.

package filter

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
)

// emulatorSDK names the SDK whose emulator hosts the Go leg. The .wasm
// legs run on proxyhost under one of the two shims only.
const emulatorSDK = "github.com/proxy-wasm/proxy-wasm-go-sdk"

type localResponse = proxytest.LocalHttpResponse

var (
	newEmulatorOption = proxytest.NewEmulatorOption
	newHostEmulator   = func(opt *proxytest.EmulatorOption) (testHost, func()) { return proxytest.NewHostEmulator(opt) }
)
