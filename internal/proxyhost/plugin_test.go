package proxyhost

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The test plugin in testdata/plugin is built once per test binary, by each
// toolchain, into a directory removed when the tests end.

var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proxyhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pluginBuild is one way of building the test plugin.
type pluginBuild struct {
	name  string
	build func(out string) error

	once sync.Once
	wasm []byte
	err  error
}

var builds = []*pluginBuild{
	{name: "go", build: buildGo},
	{name: "tinygo", build: buildTinyGo},
}

// errToolMissing marks a build whose toolchain is not installed.
var errToolMissing = errors.New("not installed: run `make tinygo`")

// wasmFor returns the test plugin built by b. A missing TinyGo skips the
// test locally and fails it under CI=true.
func wasmFor(t testing.TB, b *pluginBuild) []byte {
	t.Helper()
	b.once.Do(func() {
		out := filepath.Join(buildDir, b.name+".wasm")
		if b.err = b.build(out); b.err == nil {
			b.wasm, b.err = os.ReadFile(out)
		}
	})
	switch {
	case errors.Is(b.err, errToolMissing) && os.Getenv("CI") != "true":
		t.Skip(b.err)
	case b.err != nil:
		t.Fatalf("build test plugin with %s: %v", b.name, b.err)
	}
	return b.wasm
}

func buildGo(out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/plugin")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, b)
	}
	return nil
}

func buildTinyGo(out string) error {
	tinygo, err := tinyGoPath()
	if err != nil {
		return err
	}
	cmd := exec.Command(tinygo, "build", "-o", out, "-target=wasi", "-scheduler=none",
		"-buildmode=wasi-legacy", "-no-debug", ".")
	cmd.Dir = filepath.Join("testdata", "plugin")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, b)
	}
	return nil
}

// tinyGoPath finds TinyGo where build/install-tinygo.sh puts it:
// $WASMGATE_CACHE/tinygo-$TINYGO_VERSION/bin/tinygo, the version pinned in
// build/tools.env.
func tinyGoPath() (string, error) {
	version, err := pinnedVersion(filepath.Join("..", "..", "build", "tools.env"), "TINYGO_VERSION")
	if err != nil {
		return "", err
	}
	root := os.Getenv("WASMGATE_CACHE")
	if root == "" {
		user, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("tinygo %s: %w (%v)", version, errToolMissing, err)
		}
		root = filepath.Join(user, "wasmgate")
	}
	path := filepath.Join(root, "tinygo-"+version, "bin", "tinygo")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("tinygo %s: %w", version, errToolMissing)
	}
	return path, nil
}

// pinnedVersion reads NAME=value from a tools.env file.
func pinnedVersion(file, name string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+"="); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: %s not set", file, name)
}

// forEachBuild runs f as a subtest per build of the test plugin.
func forEachBuild(t *testing.T, f func(t *testing.T, wasm []byte)) {
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) { f(t, wasmFor(t, b)) })
	}
}

// newTestVM compiles wasm on a new host and starts one VM with config.
func newTestVM(t testing.TB, wasm []byte, opts Options, config string) (*Host, *VM) {
	t.Helper()
	h, err := NewHost(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	m, err := h.Compile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := h.NewVM(m, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return h, vm
}

// mustStream opens a stream on vm or fails the test.
func mustStream(t testing.TB, vm *VM) *HTTPStream {
	t.Helper()
	s, err := vm.NewHTTPStream()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
