//go:build !tinygo && !wasmgate_tetrate

// shim: The SDK shim names the upstream proxy-wasm SDK; sdk_tinygo.go is
// shim: generated from it for the tetratelabs SDK (go generate).

package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

type (
	defaultVMContext   = types.DefaultVMContext
	defaultPlugin      = types.DefaultPluginContext
	defaultHTTPContext = types.DefaultHttpContext
	pluginContext      = types.PluginContext
	httpContext        = types.HttpContext
)

var setVMContext = proxywasm.SetVMContext
