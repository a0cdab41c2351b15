//go:build !wasm

package filter

// Native builds count through the SDK's host emulator (metrics_wasm.go has
// the modules' own calls).
type metricCounter = sdkMetricCounter

var defineCounterMetric = sdkDefineCounterMetric
