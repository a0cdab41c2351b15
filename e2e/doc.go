// Package e2e holds wasmgate's end-to-end tests: each test starts a real Envoy
// (two worker threads) with a configuration derived from the repository's
// envoy.yaml, the plugin .wasm under test, and demo upstreams
// (cmd/demo-upstream), then sends real HTTP requests through it.
//
// The package is black-box, in a Go module of its own: it sees the plugin only
// through Envoy and the wasmgate CLI (cmd/wasmgate), which it builds and runs
// as a user does. The live-reload test publishes the module to a real
// registry with the CLI and checks it back by digest, as istio-agent does,
// before Envoy loads it over ECDS.
//
// # Running
//
//	cd e2e && go test .                          # both builds in out/
//	cd e2e && go test . -wasm out/wasmgate-go.wasm
//	cd e2e && WASMGATE_WASM=out/wasmgate-tinygo.wasm go test . -run 'TestEnvoy_Canary'
//
// The Envoy binary is $WASMGATE_ENVOY, else the one `make envoy` installs
// into the tools cache, else envoy on PATH. A missing Envoy, registry or .wasm skips
// the tests locally (naming the make target that provides it) and fails them
// under CI=true.
package e2e
