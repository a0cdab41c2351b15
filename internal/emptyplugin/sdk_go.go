//go:build !tinygo

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
