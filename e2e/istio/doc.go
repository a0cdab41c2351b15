// Package istio proves wasmgate through Istio's own control plane, without a
// Kubernetes cluster: the objects `wasmgate render` writes for a policy
// (Gateway, VirtualService, WasmPlugin) go into Istio's discovery server
// (istio.io/istio/pilot/test/xds, in process, on a real TCP listener); a
// real Envoy connects to it over ADS as the ingress gateway; an ADS relay
// does istio-agent's part with Istio's own code (istio.io/istio/pkg/wasm:
// pull the oci:// image from a real registry, check its digest, point the
// extension config at the local file); requests go through the gateway that
// istiod generated.
//
// The module is apart from the others (and out of go.work) because Istio's
// dependencies would move their versions. Run it with GOWORK=off:
//
//	make test-istio
//	cd e2e/istio && GOWORK=off go test -count=1 .
//
// The .wasm files, Envoy and docker-registry come from `make build`, `make
// envoy` and `make registry`; a missing one skips the test locally and fails
// it under CI=true.
//
// # Istio-only extensions
//
// istiod writes a few filters that only istio-proxy (Istio's Envoy build)
// has; upstream Envoy refuses a listener or cluster naming one. Each is
// turned off with Istio's own switch, so nothing is removed behind Istio's
// back:
//
//   - istio.metadata_exchange (HTTP filter, and its cluster-filter twin
//     envoy.tcp.metadataexchange): pilot feature PILOT_ENABLE_METADATA_EXCHANGE=false
//     (features.MetadataExchange).
//   - istio.alpn (HTTP filter): pilot feature PILOT_ENABLE_ALPN_FILTER=false
//     (features.ALPNFilter).
//   - istio.stats (HTTP filter): written only for a metrics provider; the
//     mesh config has none (defaultProviders empty).
//   - Mesh config enableTracing=false (else a zipkin cluster istio-agent
//     would serve) and enableAutoMtls=false (else SDS sockets istio-agent
//     would serve).
//
// With these switches off Envoy 1.40 NACKs the gateway's listener
// (istio.metadata_exchange as io.istio.http.peer_metadata.Config, then
// istio.alpn) and its clusters (envoy.tcp.metadataexchange); the test fails
// at once on any NACK, and checks that no istio.* HTTP filter is left. No
// filter is stripped.
//
// The relay changes one thing more, for the test's sake only: the gateway
// listener istiod binds to 0.0.0.0 on the Gateway's port binds 127.0.0.1 on
// a port the kernel picks (servers here bind loopback only, and a fixed
// port could be taken).
package istio
