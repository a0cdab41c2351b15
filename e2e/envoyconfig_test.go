package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// envoyConfig is what `wasmgate envoy-config` derives from template (a
// path under the repository root) for module wasm ("" keeps the
// template's): policy as the plugin configuration (a JSON value, or text
// taken verbatim; nil keeps the template's; one the plugin refuses goes in
// all the same), the listener and admin on kernel-picked ports, the
// template's clusters on the demo upstreams, then args (more envoy-config
// flags).
func envoyConfig(t *testing.T, template, wasm string, policy any, args ...string) string {
	t.Helper()
	cmd := []string{"envoy-config", "-template", filepath.Join(harness.Root, template),
		"-gateway-port", "0", "-admin-port", "0", "-unchecked"}
	if wasm != "" {
		cmd = append(cmd, "-wasm", wasm)
	}
	if policy != nil {
		text, ok := policy.(string)
		if !ok {
			data, err := json.MarshalIndent(policy, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			text = string(data)
		}
		file := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = append(cmd, "-policy", file)
	}
	for name, addr := range upstreams {
		cmd = append(cmd, "-upstream", name+"="+addr)
	}
	return harness.RunCLI(t, append(cmd, args...)...)
}

// upstreamFlag starts a demo upstream answering as cluster, stopped at
// cleanup, and returns the envoy-config flag that puts the cluster on it.
func upstreamFlag(t *testing.T, cluster string) []string {
	t.Helper()
	cmd, addr, err := startUpstream(cluster, "")
	if cmd != nil {
		t.Cleanup(func() { stopProcess(cmd) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-upstream", cluster + "=" + addr}
}
