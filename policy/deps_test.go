package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPolicy_Deps keeps the engine pure: it must build without any
// proxy-wasm SDK, so it can be tested and fuzzed as plain Go.
func TestPolicy_Deps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || !strings.Contains(string(out), "github.com/tidwall/gjson") {
		t.Fatalf("go list -deps gave no gjson; the check would prove nothing:\n%s", out)
	}
	for _, dep := range deps {
		if strings.Contains(dep, "proxy-wasm") {
			t.Errorf("policy depends on %s", dep)
		}
	}
}
