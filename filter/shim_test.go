package filter

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestSDKShims_InSync fails when a generated tetratelabs shim differs from
// what gen_tetrate.sh makes of its proxy-wasm twin: run `go generate ./filter`.
func TestSDKShims_InSync(t *testing.T) {
	for src, generated := range map[string]string{
		"sdk_proxywasm.go":      "sdk_tetrate.go",
		"sdk_proxywasm_test.go": "sdk_tetrate_test.go",
	} {
		want, err := exec.Command("sh", "gen_tetrate.sh", src, "/dev/stdout").Output()
		if err != nil {
			t.Fatalf("gen_tetrate.sh %s: %v", src, err)
		}
		got, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./filter`", generated)
		}
	}
}
