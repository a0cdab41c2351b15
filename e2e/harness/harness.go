// Package harness is what wasmgate's end-to-end test modules (e2e and
// e2e/istio) share: finding the tools `make` installs, the plugin builds
// under test, the wasmgate CLI, a real registry, and starting, awaiting and
// stopping a real Envoy.
//
// It is a module of its own that needs only the standard library, so each
// test module requires it (through a replace to this directory) without
// tying its dependency versions to the other's.
//
// A tool that is missing skips the test locally, naming the make target that
// installs it, and fails it under CI=true (Missing).
package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Root is the repository root: the nearest directory at or above the working
// directory (a test's package directory) that holds build/tools.env.
var Root = func() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "build", "tools.env")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic("harness: no build/tools.env at or above " + dir)
		}
	}
}()

// Missing fails the test under CI=true and skips it elsewhere: CI must never
// pass without having run it. msg names what is missing and the make target
// that provides it.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// ToolsCache is build/lib.sh's WASMGATE_CACHE, where `make` installs tools.
func ToolsCache() string {
	if c := os.Getenv("WASMGATE_CACHE"); c != "" {
		return c
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "wasmgate")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "wasmgate")
}

// PinnedVersion reads NAME=value from build/tools.env.
func PinnedVersion(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(Root, "build", "tools.env"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("build/tools.env: no %s", name)
}

// Build is one plugin module under test.
type Build struct {
	// Name is the subtest name: "go" for out/wasmgate-go.wasm.
	Name string
	// Wasm is the module's absolute path.
	Wasm string
}

// DefaultBuilds are both modules of `make build`.
const DefaultBuilds = "out/wasmgate-go.wasm,out/wasmgate-tinygo.wasm"

// Builds lists the modules to test from list, comma-separated paths relative
// to Root; an empty list means $WASMGATE_WASM, else DefaultBuilds.
func Builds(list string) []Build {
	if list == "" {
		list = os.Getenv("WASMGATE_WASM")
	}
	if list == "" {
		list = DefaultBuilds
	}
	var bs []Build
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(Root, p)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "wasmgate-"), ".wasm")
		bs = append(bs, Build{Name: name, Wasm: p})
	}
	return bs
}

// RequireModule checks that b's module exists (Missing names `make build`
// when it does not).
func RequireModule(t testing.TB, b Build) {
	t.Helper()
	if _, err := os.Stat(b.Wasm); err != nil {
		Missing(t, fmt.Sprintf("plugin module %s: %v: run `make build`", b.Wasm, err))
	}
}

var envoyLookup struct {
	once          sync.Once
	path, version string
	err           error
}

// EnvoyBinary returns the Envoy to run: $WASMGATE_ENVOY, else the tools-cache
// install of build/install-envoy.sh, else envoy on PATH.
func EnvoyBinary(t testing.TB) string {
	t.Helper()
	l := &envoyLookup
	l.once.Do(func() {
		l.path, l.err = findEnvoy()
		if l.err != nil {
			return
		}
		out, err := exec.Command(l.path, "--version").CombinedOutput()
		if err != nil {
			l.err = fmt.Errorf("%s --version: %v\n%s", l.path, err, out)
			return
		}
		l.version = strings.TrimSpace(string(out))
	})
	if l.err != nil {
		Missing(t, fmt.Sprintf("envoy: %v: run `make envoy` or set WASMGATE_ENVOY", l.err))
	}
	return l.path
}

// EnvoyVersion is what EnvoyBinary's Envoy says to --version.
func EnvoyVersion(t testing.TB) string {
	t.Helper()
	EnvoyBinary(t)
	return envoyLookup.version
}

func findEnvoy() (string, error) {
	if p := os.Getenv("WASMGATE_ENVOY"); p != "" {
		return p, nil
	}
	version, err := PinnedVersion("ENVOY_VERSION")
	if err != nil {
		return "", err
	}
	p := filepath.Join(ToolsCache(), "envoy-"+version, "bin", "envoy")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("not in the tools cache (%s) nor on PATH", p)
}

// FreeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Terminate sends p SIGTERM, then SIGKILL after timeout, and waits until
// exited is closed; it does nothing when exited is closed already.
func Terminate(p *os.Process, exited <-chan struct{}, timeout time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		_ = p.Kill()
		<-exited
	}
}

// StartRegistry serves Debian's docker-registry (CNCF Distribution) with the
// project's build/registry.yml on a free loopback port and a temporary
// storage directory, and returns its host:port once /v2/ answers. The
// registry is stopped at cleanup, and its log shown if the test failed.
func StartRegistry(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		Missing(t, "docker-registry not found: run `make registry`")
	}
	host := FreeLoopbackAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(Root, "build", "registry.yml"))
	cmd.Env = append(os.Environ(),
		"REGISTRY_HTTP_ADDR="+host,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+t.TempDir(),
	)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = ChildAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", log.String())
		}
	})

	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("docker-registry exited before serving: %v\n%s", err, log.String())
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry: /v2/ not ready after 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cliBinary builds the wasmgate CLI (cmd/wasmgate) once per test binary, in
// the repository's workspace (a test module may run with GOWORK=off).
var cliBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wasmgate-cli-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wasmgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(Root, "cmd", "wasmgate")
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(Root, "go.work"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wasmgate: %v\n%s", err, out)
	}
	return bin, nil
})

// CLIBinary returns the path of the wasmgate CLI, built once per test
// binary; a build failure fails the test.
func CLIBinary(t testing.TB) string {
	t.Helper()
	bin, err := cliBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// RunCLI runs the wasmgate CLI with args and returns its standard output; a
// failure fails the test with what it printed.
func RunCLI(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(CLIBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wasmgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
