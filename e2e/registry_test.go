package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestImage_Distribution pushes both image layouts with the wasmgate CLI to a
// real registry (Debian's docker-registry, CNCF Distribution 2.8) and pulls
// them back by tag and by digest: each holds the module that was pushed.
func TestImage_Distribution(t *testing.T) {
	host := harness.StartRegistry(t)
	wasm := filepath.Join(t.TempDir(), "plugin.wasm")
	module := []byte("\x00asm\x01\x00\x00\x00registry round trip")
	if err := os.WriteFile(wasm, module, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"compat", "oci"} {
		t.Run(variant, func(t *testing.T) {
			tag := host + "/wasmgate:" + variant
			digest := strings.TrimSpace(harness.RunCLI(t, "image", "push", "-wasm", wasm, "-ref", tag, "-variant", variant))
			if offline := strings.TrimSpace(harness.RunCLI(t, "image", "digest", "-wasm", wasm, "-variant", variant)); offline != digest {
				t.Errorf("push printed %s, the offline digest is %s", digest, offline)
			}
			for _, ref := range []string{tag, host + "/wasmgate@" + digest} {
				want := fmt.Sprintf("%s: %s variant, manifest %s, module %d bytes\n", ref, variant, digest, len(module))
				if got := harness.RunCLI(t, "image", "check", "-ref", ref, "-wasm", wasm); got != want {
					t.Errorf("image check = %q, want %q", got, want)
				}
			}
		})
	}
}
