package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestStatus: `wasmgate status` reads a live gateway's admin interface and
// names a route never matched, beside the observed split. (A destination
// without a cluster, which status also names, cannot be configured through
// envoy-config, whose route table names only clusters it defines: here the
// "missing" destination's cluster points at a closed port.)
func TestStatus(t *testing.T) {
	policy := map[string]any{"routes": []any{
		map[string]any{"name": "products", "match": []any{map[string]any{"uri": map[string]any{"pathPrefix": "/products"}}},
			"route": []any{map[string]any{"destination": map[string]any{"host": "product-service"}, "weight": 50},
				map[string]any{"destination": map[string]any{"host": "missing"}, "weight": 50}},
			"split": map[string]any{"hintHeader": "x-route-to", "stickyBy": map[string]any{"header": "x-user-id"}}},
		map[string]any{"name": "never", "match": []any{map[string]any{"uri": map[string]any{"pathPrefix": "/never"}}}},
	}}
	data, _ := json.Marshal(policy)
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	write(t, policyFile, string(data))
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, policy, "-upstream", "missing=127.0.0.1:"+freePort(t))))
		for i := range 20 {
			if _, err := gw.get(gw.client, fmt.Sprintf("/products/%d", i), map[string]string{"x-user-id": fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(3 * flushPeriod)
		out, err := exec.Command(harness.CLIBinary(t), "status", "-admin", strings.TrimPrefix(gw.admin, "http://"), "-policy", policyFile).Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("status: %v, want exit status 2:\n%s", err, out)
		}
		for _, want := range []string{"  products: 20 matched\n", "  products: split product-service ", "! never: never matched\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("status printed:\n%s\nwant a line with %q", out, want)
			}
		}
	})
}
