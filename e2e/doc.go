// Package e2e holds wasmgate's end-to-end tests: each test starts a real Envoy
// (two worker threads) with a configuration derived from the repository's
// envoy.yaml, the plugin .wasm under test, and demo upstreams
// (cmd/demo-upstream), then sends real HTTP requests through it.
//
// The package is black-box: it sees the plugin only through Envoy. Of
// wasmgate it imports only the delivery tool under test, build/oci, and the
// test registry runner internal/registrytest: the live-reload test publishes
// the module to a real registry and pulls it back by digest, as istio-agent
// does, before Envoy loads it over ECDS.
//
// # Running
//
//	go test ./e2e/                          # both builds in out/
//	go test ./e2e/ -wasm out/wasmgate-go.wasm
//	WASMGATE_WASM=out/wasmgate-tinygo.wasm go test ./e2e/ -run 'TestEnvoy_Canary'
//
// The Envoy binary is $WASMGATE_ENVOY, else the one `make envoy` installs
// into the tools cache, else envoy on PATH. A missing Envoy, registry or .wasm skips
// the tests locally (naming the make target that provides it) and fails them
// under CI=true.
package e2e
