package wasmplugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

// TestDeploy_EnvoyNative decodes deploy/envoy-native.yaml (the seed policy
// in Envoy's own filters, the anchor of make bench) strictly into Envoy's
// bootstrap API; make bench runs it and checks what it does.
func TestDeploy_EnvoyNative(t *testing.T) {
	readBootstrap(t, "envoy-native.yaml")
}

// readBootstrap decodes deploy/name strictly into Envoy's bootstrap API and
// checks Envoy's field rules.
func readBootstrap(t *testing.T, name string) *bootstrap.Bootstrap {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrap.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("not a valid Envoy bootstrap: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Envoy's field rules: %v", err)
	}
	return &b
}

// TestDeploy_EnvoyRemote decodes deploy/envoy-remote.yaml strictly into
// Envoy's bootstrap API, and checks that it loads the module remotely with a
// sha256 and carries the seed policy.
func TestDeploy_EnvoyRemote(t *testing.T) {
	b := readBootstrap(t, "envoy-remote.yaml")
	var conn hcm.HttpConnectionManager
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&conn); err != nil {
		t.Fatal(err)
	}
	var w wasmfilter.Wasm
	if err := conn.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&w); err != nil {
		t.Fatal(err)
	}
	remote := w.GetConfig().GetVmConfig().GetCode().GetRemote()
	if remote.GetSha256() == "" || remote.GetHttpUri().GetCluster() != "wasm-artifacts" {
		t.Errorf("code = %v, want remote code from wasm-artifacts with a sha256", w.GetConfig().GetVmConfig().GetCode())
	}
	if got := w.GetConfig().GetFailurePolicy().String(); got != "FAIL_CLOSED" {
		t.Errorf("failure_policy = %s, want FAIL_CLOSED", got)
	}
	var config wrapperspb.StringValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&config); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Parse([]byte(config.GetValue())); err != nil {
		t.Errorf("configuration: %v", err)
	}
	if !sameJSON(t, []byte(config.GetValue()), seedPolicy(t)) {
		t.Errorf("configuration is not deploy/policy.json:\n%s", config.GetValue())
	}
}
