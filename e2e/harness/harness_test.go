package harness

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	want, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if Root != want {
		t.Errorf("Root = %s, want %s", Root, want)
	}
}

func TestPinnedVersion(t *testing.T) {
	if v, err := PinnedVersion("ENVOY_VERSION"); err != nil || v == "" {
		t.Errorf("ENVOY_VERSION = %q, %v; want a version", v, err)
	}
	if _, err := PinnedVersion("NO_SUCH_TOOL"); err == nil || err.Error() != "build/tools.env: no NO_SUCH_TOOL" {
		t.Errorf("NO_SUCH_TOOL: err = %v", err)
	}
}

func TestBuilds(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "wasmgate-x.wasm")
	for _, tc := range []struct {
		name, list, env string
		want            []Build
	}{
		{"default", "", "", []Build{
			{"go", filepath.Join(Root, "out", "wasmgate-go.wasm")},
			{"tinygo", filepath.Join(Root, "out", "wasmgate-tinygo.wasm")},
		}},
		{"environment", "", "out/wasmgate-go.wasm", []Build{{"go", filepath.Join(Root, "out", "wasmgate-go.wasm")}}},
		{"list over environment", " out/a.wasm, ," + abs, "out/wasmgate-go.wasm", []Build{
			{"a", filepath.Join(Root, "out", "a.wasm")}, {"x", abs},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WASMGATE_WASM", tc.env)
			got := Builds(tc.list)
			if len(got) != len(tc.want) {
				t.Fatalf("Builds(%q) = %v, want %v", tc.list, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("Builds(%q)[%d] = %v, want %v", tc.list, i, got[i], tc.want[i])
				}
			}
		})
	}
}

// recorder is a testing.TB that records how Missing ended the test; like
// testing's, its Fatal and Skip end the goroutine.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = args[0].(string); runtime.Goexit() }
func (r *recorder) Skip(args ...any)  { r.skipped = args[0].(string); runtime.Goexit() }

func TestMissing(t *testing.T) {
	const msg = "envoy: not found: run `make envoy`"
	for _, tc := range []struct {
		ci                 string
		wantFail, wantSkip string
	}{
		{"true", msg, ""},
		{"", "", msg},
		{"false", "", msg},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Missing(r, msg)
			}()
			<-done
			if r.failed != tc.wantFail || r.skipped != tc.wantSkip {
				t.Errorf("failed %q, skipped %q; want failed %q, skipped %q", r.failed, r.skipped, tc.wantFail, tc.wantSkip)
			}
		})
	}
}

// TestStandardLibraryOnly keeps the module free of requirements, so
// requiring it moves no version in the modules that share it.
func TestStandardLibraryOnly(t *testing.T) {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "require" || f[0] == "replace") {
			t.Errorf("go.mod:%d: %q: the harness must need only the standard library", i+1, line)
		}
	}
}
