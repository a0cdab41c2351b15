// Command emptyplugin is a proxy-wasm plugin that does nothing: its HTTP
// context continues every callback. It is the floor of the Envoy benchmark
// (build/bench.sh): what any plugin of the same SDK costs before it does any
// work. One source builds with either SDK; sdk_go.go and sdk_tinygo.go pick
// it, with the same build commands as the wasmgate plugin (make bench-modules).
package main

//go:generate sh ../../build/gen-tetrate-shim.sh sdk_go.go sdk_tinygo.go

func main() {}

func init() { setVMContext(&vm{}) }

type vm struct{ defaultVMContext }

func (vm) NewPluginContext(uint32) pluginContext { return &plugin{} }

type plugin struct{ defaultPlugin }

func (plugin) NewHttpContext(uint32) httpContext { return &stream{} }

// stream is the do-nothing HTTP context: the SDK's defaults continue.
type stream struct{ defaultHTTPContext }
