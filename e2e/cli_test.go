package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// cliBinary builds the wasmgate CLI (cmd/wasmgate) once per test binary.
var cliBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wasmgate-cli-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wasmgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(repoRoot, "cmd", "wasmgate")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &exec.ExitError{Stderr: out, ProcessState: cmd.ProcessState}
	}
	return bin, nil
})

// runCLI runs the wasmgate CLI with args and returns its standard output; a
// failure fails the test with what it printed.
func runCLI(t testing.TB, args ...string) string {
	t.Helper()
	bin, err := cliBinary()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("building cmd/wasmgate: %v\n%s", err, stderr)
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wasmgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
