//go:build !tinygo && !wasmgate_tetrate

// shim: The upstream SDK, built by Go as a wasip1 reactor (-buildmode=c-shared).
// shim: Its twin sdk_tinygo.go, for TinyGo, is generated from this file.

package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

type (
	action             = types.Action
	defaultVMContext   = types.DefaultVMContext
	defaultPlugin      = types.DefaultPluginContext
	defaultHTTPContext = types.DefaultHttpContext
	pluginContext      = types.PluginContext
	httpContext        = types.HttpContext
	pluginStartStatus  = types.OnPluginStartStatus
	counter            = proxywasm.MetricCounter
)

const (
	actionContinue = types.ActionContinue
	actionPause    = types.ActionPause
)

var (
	errCasMismatch = types.ErrorStatusCasMismatch
	errNotFound    = types.ErrorStatusNotFound

	setVMContext           = proxywasm.SetVMContext
	getPluginConfiguration = proxywasm.GetPluginConfiguration
	defineCounter          = proxywasm.DefineCounterMetric
	getRequestHeader       = proxywasm.GetHttpRequestHeader
	getRequestHeaders      = proxywasm.GetHttpRequestHeaders
	addRequestHeader       = proxywasm.AddHttpRequestHeader
	replaceRequestHeader   = proxywasm.ReplaceHttpRequestHeader
	removeRequestHeader    = proxywasm.RemoveHttpRequestHeader
	addResponseHeader      = proxywasm.AddHttpResponseHeader
	sendHTTPResponse       = proxywasm.SendHttpResponse
	getProperty            = proxywasm.GetProperty
	getSharedData          = proxywasm.GetSharedData
	setSharedData          = proxywasm.SetSharedData
	callForeignFunction    = proxywasm.CallForeignFunction
	logInfo                = proxywasm.LogInfo
	logCritical            = proxywasm.LogCritical
	logDebugf              = proxywasm.LogDebugf
)
