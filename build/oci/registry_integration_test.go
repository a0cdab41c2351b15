package oci

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/internal/registrytest"
)

// TestClient_Distribution runs the push and pull round trip against a real
// registry: Debian's docker-registry (CNCF Distribution 2.8), started on a
// free loopback port with the project's build/registry.yml and a temporary
// storage directory.
func TestClient_Distribution(t *testing.T) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		const msg = "docker-registry not found: run `make registry`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	config, err := filepath.Abs(filepath.Join("..", "registry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	testPushPull(t, registrytest.Start(t, bin, config, nil))
}
