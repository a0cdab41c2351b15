//go:build !tinygo && !wasmgate_tetrate

// shim: The SDK shim is the only file that names a proxy-wasm SDK; its twin
// shim: sdk_tetrate.go is generated from it (gen.go), so the TinyGo and the
// shim: Go builds share every other line of the filter.

package filter

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

type (
	vmContextIface     = types.VMContext
	pluginContextIface = types.PluginContext
	httpContextIface   = types.HttpContext
	defaultVMContext   = types.DefaultVMContext
	defaultPlugin      = types.DefaultPluginContext
	defaultHTTP        = types.DefaultHttpContext
	action             = types.Action
	onVMStartStatus    = types.OnVMStartStatus
	onPluginStatus     = types.OnPluginStartStatus
	sdkMetricCounter   = proxywasm.MetricCounter
)

const (
	actionContinue    = types.ActionContinue
	actionPause       = types.ActionPause
	pluginStartOK     = types.OnPluginStartStatusOK
	pluginStartFailed = types.OnPluginStartStatusFailed
	vmStartOK         = types.OnVMStartStatusOK
)

var (
	errCasMismatch = types.ErrorStatusCasMismatch
	errNotFound    = types.ErrorStatusNotFound
)

var (
	setVMContext              = proxywasm.SetVMContext
	getPluginConfiguration    = proxywasm.GetPluginConfiguration
	getProperty               = proxywasm.GetProperty
	sdkSetProperty            = proxywasm.SetProperty
	getHTTPRequestHeaders     = proxywasm.GetHttpRequestHeaders
	replaceHTTPRequestHeader  = proxywasm.ReplaceHttpRequestHeader
	addHTTPRequestHeader      = proxywasm.AddHttpRequestHeader
	removeHTTPRequestHeader   = proxywasm.RemoveHttpRequestHeader
	replaceHTTPResponseHeader = proxywasm.ReplaceHttpResponseHeader
	addHTTPResponseHeader     = proxywasm.AddHttpResponseHeader
	removeHTTPResponseHeader  = proxywasm.RemoveHttpResponseHeader
	sdkSendHTTPResponse       = proxywasm.SendHttpResponse
	resumeHTTPRequest         = proxywasm.ResumeHttpRequest
	setEffectiveContext       = proxywasm.SetEffectiveContext
	getSharedData             = proxywasm.GetSharedData
	setSharedData             = proxywasm.SetSharedData
	setTickPeriod             = proxywasm.SetTickPeriodMilliSeconds
	sdkDefineCounterMetric    = proxywasm.DefineCounterMetric
	logCritical               = proxywasm.LogCritical
	logDebug                  = proxywasm.LogDebug
	logInfo                   = proxywasm.LogInfo
)
