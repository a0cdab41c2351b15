package istio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository root: the tests run in e2e/istio.
var repoRoot = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

// build is one plugin module under test.
type build struct {
	name string // "go" for out/wasmgate-go.wasm
	wasm string // absolute path
}

// builds are both builds of `make build`, or $WASMGATE_WASM's list.
func builds() []build {
	list := os.Getenv("WASMGATE_WASM")
	if list == "" {
		list = "out/wasmgate-go.wasm,out/wasmgate-tinygo.wasm"
	}
	var bs []build
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(repoRoot, p)
		}
		bs = append(bs, build{name: strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "wasmgate-"), ".wasm"), wasm: p})
	}
	return bs
}

// missing fails the test under CI=true and skips it elsewhere: CI must never
// pass without having run it.
func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// envoyBinary is $WASMGATE_ENVOY, else the tools-cache install of
// build/install-envoy.sh, else envoy on PATH.
func envoyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WASMGATE_ENVOY"); p != "" {
		return p
	}
	version, err := pinnedVersion("ENVOY_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(toolsCache(), "envoy-"+version, "bin", "envoy")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	missing(t, fmt.Sprintf("envoy: not in the tools cache (%s) nor on PATH: run `make envoy`", p))
	return ""
}

// toolsCache is build/lib.sh's WASMGATE_CACHE.
func toolsCache() string {
	if c := os.Getenv("WASMGATE_CACHE"); c != "" {
		return c
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "wasmgate")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "wasmgate")
}

// pinnedVersion reads NAME=value from build/tools.env.
func pinnedVersion(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "build", "tools.env"))
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

// childAttr makes the kernel kill a child process when the test binary dies
// without cleaning up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment
// ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRegistry serves Debian's docker-registry (CNCF Distribution) with the
// project's build/registry.yml on a free loopback port and returns its
// host:port once /v2/ answers.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		missing(t, "docker-registry not found: run `make registry`")
	}
	host := freeLoopbackAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(repoRoot, "build", "registry.yml"))
	cmd.Env = append(os.Environ(), "REGISTRY_HTTP_ADDR="+host, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", log.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry: /v2/ not ready after 15s: %v", err)
		}
	}
}

// cliBinary builds the wasmgate CLI once, in the repository's workspace.
var cliBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wasmgate-cli-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wasmgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(repoRoot, "cmd", "wasmgate")
	// This module runs with GOWORK=off; the CLI builds in the workspace.
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(repoRoot, "go.work"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wasmgate: %v\n%s", err, out)
	}
	return bin, nil
})

// runCLI runs the wasmgate CLI and returns its standard output.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := cliBinary()
	if err != nil {
		t.Fatal(err)
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

// upstream is a backend that answers every request with what it received.
type upstream struct {
	name string
	addr string // 127.0.0.1:port
	// attempts counts the requests per path.
	attempts *attempts
}

type attempts struct {
	mu sync.Mutex
	n  map[string]int
}

// add counts one more request to path and returns the count.
func (a *attempts) add(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n[path]++
	return a.n[path]
}

func (a *attempts) of(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[path]
}

// Upstream behaviours by path, for the route-table features: "/slow..."
// answers after slowFor, "/flaky/<n>/..." answers 503 to the first n
// attempts of each path.
const slowFor = 2 * time.Second

// reply is an upstream's answer.
type reply struct {
	Service string              `json:"service"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// startUpstream serves name on a kernel-picked loopback port.
func startUpstream(t *testing.T, name string) upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := &attempts{n: map[string]int{}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := seen.add(r.URL.Path)
		if strings.HasPrefix(r.URL.Path, "/slow") {
			select {
			case <-time.After(slowFor):
			case <-r.Context().Done():
				return
			}
		}
		if fails, ok := strings.CutPrefix(r.URL.Path, "/flaky/"); ok {
			if k, err := strconv.Atoi(strings.Split(fails, "/")[0]); err == nil && n <= k {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		rep := reply{Service: name, Path: r.RequestURI, Headers: map[string][]string{}}
		for k, v := range r.Header {
			rep.Headers[strings.ToLower(k)] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return upstream{name: name, addr: ln.Addr().String(), attempts: seen}
}
