package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestEnvoy_RemoteCode runs deploy/envoy-remote.yaml, the example for Envoy
// without Istio: Envoy fetches the module over HTTP when it starts and loads
// it only if its SHA-256 matches.
func TestEnvoy_RemoteCode(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		module, err := os.ReadFile(b.Wasm)
		if err != nil {
			t.Fatal(err)
		}
		var fetches atomic.Int32
		artifacts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			if r.URL.Path != "/wasmgate.wasm" {
				http.NotFound(w, r)
				return
			}
			w.Write(module)
		}))
		defer artifacts.Close()
		sum := sha256.Sum256(module)

		t.Run("verified", func(t *testing.T) {
			gw := awaitGateway(t, runEnvoy(t, remoteConfig(t, artifacts.URL, hex.EncodeToString(sum[:]))))
			if fetches.Load() == 0 {
				t.Fatal("Envoy never fetched the module")
			}
			r := gw.mustGet(t, "/products/123?x=1", nil)
			if r.Reply.Path != "/123?x=1" {
				t.Errorf("upstream saw %q, want /123?x=1", r.Reply.Path)
			}
		})
		t.Run("wrong sha256", func(t *testing.T) {
			wrong := sha256.Sum256([]byte("not the module"))
			e := runEnvoy(t, remoteConfig(t, artifacts.URL, hex.EncodeToString(wrong[:])))
			gw := awaitGateway(t, e)
			// The module is not loaded, and FAIL_CLOSED refuses requests
			// rather than passing them without the policy.
			r, err := gw.get(gw.client, "/products/123?x=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Reply != nil || r.Status < 500 {
				t.Errorf("status %d, upstream reply %+v; want a 5xx from Envoy", r.Status, r.Reply)
			}
			// Envoy 1.40 treats a mismatching hash as a failed fetch: it
			// retries, then gives up on the plugin.
			if log := e.Log(); !strings.Contains(log, "Plugin wasmgate failed to load") {
				t.Errorf("Envoy's log lacks %q", "Plugin wasmgate failed to load")
			}
		})
	})
}

// remoteConfig is deploy/envoy-remote.yaml as envoy-config derives it, with
// the module's hash filled in and the module served by the server at base.
func remoteConfig(t *testing.T, base, sha string) string {
	t.Helper()
	cfg := envoyConfig(t, "deploy/envoy-remote.yaml", "", nil, "-upstream", "wasm-artifacts="+strings.TrimPrefix(base, "http://"))
	for old, new := range map[string]string{
		"sha256: REPLACE_WITH_SHA256_OF_WASM":         "sha256: " + sha,
		"uri: http://127.0.0.1:8000/wasmgate-go.wasm": "uri: " + base + "/wasmgate.wasm",
	} {
		if strings.Count(cfg, old) != 1 {
			t.Fatalf("deploy/envoy-remote.yaml: want one %q", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	return cfg
}
