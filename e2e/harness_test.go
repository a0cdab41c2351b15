package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var wasmFlag = flag.String("wasm", "", "comma-separated .wasm files to test, relative to the repository root "+
	"(default $WASMGATE_WASM, else out/wasmgate-go.wasm,out/wasmgate-tinygo.wasm)")

// Timeouts for one Envoy: V8 compiles the module once per worker, which takes
// seconds for the upstream-Go build on a busy machine.
const (
	envoyStartTimeout = 90 * time.Second
	envoyStopTimeout  = 10 * time.Second
	requestTimeout    = 10 * time.Second
)

// repoRoot is the repository root: the tests run in e2e/.
var repoRoot = func() string {
	dir, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return dir
}()

// upstreams maps a cluster name of envoy.yaml to the address of the demo
// upstream serving it. TestMain fills it.
var upstreams = map[string]string{}

func TestMain(m *testing.M) {
	flag.Parse()
	stop, err := startUpstreams()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting demo upstreams:", err)
		stop()
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startUpstreams builds cmd/demo-upstream and starts one process per cluster
// of envoy.yaml, each on a port the kernel picks. The default backend is a
// separate process so a test can tell it from product-service.
func startUpstreams() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "wasmgate-e2e-")
	if err != nil {
		return func() {}, err
	}
	var procs []*exec.Cmd
	stop = func() {
		for _, p := range procs {
			stopProcess(p)
		}
		_ = os.RemoveAll(dir)
	}
	upstreamBinary = filepath.Join(dir, "demo-upstream")
	compile := exec.Command("go", "build", "-o", upstreamBinary, "./cmd/demo-upstream")
	compile.Dir = repoRoot
	out, err := compile.CombinedOutput()
	if err != nil {
		return stop, fmt.Errorf("go build ./cmd/demo-upstream: %v\n%s", err, out)
	}
	for _, u := range []struct{ name, version string }{
		{"product-service", "v1"}, {"product-service-v2", "v2"}, {"default-backend", "v1"},
	} {
		cmd, addr, err := startUpstream(u.name, u.version)
		if cmd != nil {
			procs = append(procs, cmd)
		}
		if err != nil {
			return stop, err
		}
		upstreams[u.name] = addr
	}
	return stop, nil
}

// upstreamBinary is cmd/demo-upstream, built by startUpstreams.
var upstreamBinary string

var listening = regexp.MustCompile(`listening on (\S+)$`)

// startUpstream starts a demo upstream answering as name and version on a
// port the kernel picks, and returns its address.
func startUpstream(name, version string) (*exec.Cmd, string, error) {
	cmd := exec.Command(upstreamBinary, "-listen", "127.0.0.1:0", "-name", name, "-version", version)
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	m := listening.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return cmd, "", fmt.Errorf("%s: want a %q line, got %q (%v)", name, "listening on", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return cmd, m[1], nil
}

func stopProcess(p *exec.Cmd) {
	_ = p.Process.Signal(syscall.SIGTERM)
	_ = p.Wait()
}

// build is one plugin module under test.
type build struct {
	// name is the subtest name: "go" for out/wasmgate-go.wasm.
	name string
	// wasm is the module's absolute path.
	wasm string
}

// builds lists the modules to test: -wasm, else $WASMGATE_WASM, else both
// builds of make build.
func builds() []build {
	list := *wasmFlag
	if list == "" {
		list = os.Getenv("WASMGATE_WASM")
	}
	if list == "" {
		list = "out/wasmgate-go.wasm,out/wasmgate-tinygo.wasm"
	}
	var bs []build
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(repoRoot, p)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "wasmgate-"), ".wasm")
		bs = append(bs, build{name: name, wasm: p})
	}
	return bs
}

// forEachBuild runs f as one subtest per module under test, after checking
// that Envoy and the module exist.
func forEachBuild(t *testing.T, f func(t *testing.T, b build)) {
	for _, b := range builds() {
		t.Run(b.name, func(t *testing.T) {
			if _, err := os.Stat(b.wasm); err != nil {
				missing(t, fmt.Sprintf("plugin module %s: %v: run `make build`", b.wasm, err))
			}
			envoyBinary(t)
			t.Logf("envoy: %s", envoyLookup.version)
			f(t, b)
		})
	}
}

// missing fails the test under CI=true and skips it elsewhere: CI must never
// pass without having run the end-to-end tests.
func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var envoyLookup struct {
	once          sync.Once
	path, version string
	err           error
}

// envoyBinary returns the Envoy to run: $WASMGATE_ENVOY, else the tools-cache
// install of build/install-envoy.sh, else envoy on PATH.
func envoyBinary(t *testing.T) string {
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
		missing(t, fmt.Sprintf("envoy: %v: run `make envoy` or set WASMGATE_ENVOY", l.err))
	}
	return l.path
}

func findEnvoy() (string, error) {
	if p := os.Getenv("WASMGATE_ENVOY"); p != "" {
		return p, nil
	}
	version, err := pinnedVersion("ENVOY_VERSION")
	if err != nil {
		return "", err
	}
	p := filepath.Join(toolsCache(), "envoy-"+version, "bin", "envoy")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("not in the tools cache (%s) nor on PATH", p)
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

// readEnvoyYAML returns the repository's envoy.yaml.
func readEnvoyYAML(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// seedPolicy returns the policy embedded in envoy.yaml, decoded.
func seedPolicy(t *testing.T) map[string]any {
	t.Helper()
	cfg := readEnvoyYAML(t)
	block, err := findPolicyBlock(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(cfg[block.start:block.end]), &p); err != nil {
		t.Fatalf("envoy.yaml policy: %v", err)
	}
	return p
}

// seedRoute returns routes[0] of a policy from seedPolicy, for editing.
func seedRoute(p map[string]any) map[string]any {
	return p["routes"].([]any)[0].(map[string]any)
}

// policyBlock locates the plugin configuration in envoy.yaml: the lines of
// the literal block `value: |` after the StringValue type.
type policyBlock struct {
	start, end int // byte range of the block's lines
	indent     int // indentation of the `value` key
}

func findPolicyBlock(cfg string) (policyBlock, error) {
	typeAt := strings.Index(cfg, "type.googleapis.com/google.protobuf.StringValue")
	if typeAt < 0 {
		return policyBlock{}, errors.New("envoy.yaml: no google.protobuf.StringValue plugin configuration")
	}
	keyAt := strings.Index(cfg[typeAt:], "value: |\n")
	if keyAt < 0 {
		return policyBlock{}, errors.New("envoy.yaml: the plugin configuration is not a `value: |` block")
	}
	keyAt += typeAt
	b := policyBlock{start: keyAt + len("value: |\n")}
	b.indent = keyAt - (strings.LastIndex(cfg[:keyAt], "\n") + 1)
	// The block runs while lines are blank or indented deeper than the key.
	b.end = b.start
	for b.end < len(cfg) {
		line, _, _ := strings.Cut(cfg[b.end:], "\n")
		if strings.TrimSpace(line) != "" && len(line)-len(strings.TrimLeft(line, " ")) <= b.indent {
			break
		}
		b.end = min(b.end+len(line)+1, len(cfg))
	}
	return b, nil
}

// envoyProcess is a running (or exited) Envoy.
type envoyProcess struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
	dir     string
	logPath string
}

// launchEnvoy starts Envoy with envoy.yaml derived for this test
// (envoyConfig), policy as the plugin configuration (a JSON value, or a
// string taken verbatim). It stops Envoy at cleanup and prints Envoy's log if
// the test failed.
func launchEnvoy(t *testing.T, b build, policy any) *envoyProcess {
	t.Helper()
	return runEnvoy(t, envoyConfig(t, "envoy.yaml", b.wasm, policy))
}

// runEnvoy starts Envoy with the configuration cfg, whose admin interface
// must listen on a kernel-picked port. It stops Envoy at cleanup and prints
// Envoy's log if the test failed.
func runEnvoy(t *testing.T, cfg string) *envoyProcess {
	t.Helper()
	dir := t.TempDir()
	e := &envoyProcess{dir: dir, logPath: filepath.Join(dir, "envoy.log"), exited: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "envoy.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	e.cmd = exec.Command(envoyBinary(t), "-c", "envoy.yaml",
		"--concurrency", "2",
		"--admin-address-path", "admin-address",
		// Several Envoys may run at once (parallel test binaries).
		"--disable-hot-restart",
		// Access-log lines reach the log within 100 ms (default 10 s).
		"--file-flush-interval-msec", "100",
		"--log-level", "info")
	e.cmd.Dir = dir
	e.cmd.SysProcAttr = childAttr()
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("envoy log (%s):\n%s", e.logPath, e.logTail(300))
		}
	})
	return e
}

func (e *envoyProcess) stop() { terminate(e.cmd.Process, e.exited, envoyStopTimeout) }

// terminate sends p SIGTERM, then SIGKILL after timeout, and waits until
// exited is closed; it does nothing when exited is closed already.
func terminate(p *os.Process, exited <-chan struct{}, timeout time.Duration) {
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

// log returns Envoy's log so far.
func (e *envoyProcess) log() string {
	data, _ := os.ReadFile(e.logPath)
	return string(data)
}

// extensionLine matches the lines of Envoy's startup list of extensions.
var extensionLine = regexp.MustCompile(`\]   [a-z][\w.]*: `)

// logTail returns the last n lines of Envoy's log, without the startup list
// of extensions.
func (e *envoyProcess) logTail(n int) string {
	var lines []string
	for _, line := range strings.SplitAfter(e.log(), "\n") {
		if !extensionLine.MatchString(line) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before ...]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// gateway is a ready Envoy with wasmgate in its filter chain.
type gateway struct {
	*envoyProcess
	// url is the listener's base URL, admin the admin interface's.
	url, admin string
	client     *http.Client
}

// startGateway launches Envoy and waits until its admin interface reports it
// ready, failing the test with Envoy's log if it exits first.
func startGateway(t *testing.T, b build, policy any) *gateway {
	t.Helper()
	return awaitGateway(t, launchEnvoy(t, b, policy))
}

// awaitGateway waits until the admin interface of e reports it ready, failing
// the test with Envoy's log if it exits first.
func awaitGateway(t *testing.T, e *envoyProcess) *gateway {
	t.Helper()
	// A redirect is an answer to check, never one to follow.
	gw := &gateway{envoyProcess: e, client: &http.Client{Timeout: requestTimeout, CheckRedirect: noRedirects}}
	t.Cleanup(gw.client.CloseIdleConnections)
	deadline := time.Now().Add(envoyStartTimeout)
	for {
		select {
		case <-e.exited:
			t.Fatalf("envoy exited before it was ready: %v", e.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy not ready after %v", envoyStartTimeout)
		}
		if gw.admin == "" {
			if addr, err := os.ReadFile(filepath.Join(e.dir, "admin-address")); err == nil && len(addr) > 0 {
				gw.admin = "http://" + strings.TrimSpace(string(addr))
			}
		}
		if gw.admin != "" {
			if status, body, err := gw.adminGet("/ready"); err == nil && status == http.StatusOK {
				t.Logf("envoy ready: %s", strings.TrimSpace(body))
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	addr, err := gw.listenerAddress()
	if err != nil {
		t.Fatal(err)
	}
	gw.url = "http://" + addr
	return gw
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (gw *gateway) adminGet(path string) (status int, body string, err error) {
	resp, err := gw.client.Get(gw.admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// listenerAddress asks the admin interface which port the listener bound.
func (gw *gateway) listenerAddress() (string, error) {
	_, body, err := gw.adminGet("/listeners?format=json")
	if err != nil {
		return "", err
	}
	var ls struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.Unmarshal([]byte(body), &ls); err != nil {
		return "", fmt.Errorf("admin /listeners: %v: %s", err, body)
	}
	for _, l := range ls.ListenerStatuses {
		if l.Name == "gateway" {
			sa := l.LocalAddress.SocketAddress
			return fmt.Sprintf("%s:%d", sa.Address, sa.PortValue), nil
		}
	}
	return "", fmt.Errorf("admin /listeners: no listener %q: %s", "gateway", body)
}

// stats returns the admin interface's counters and gauges whose names match
// the regular expression filter.
//
// The plugin adds its counts to Envoy's every flushPeriod in each worker
// (docs/policy.md), so stats first waits three of those: every count of a
// request answered before the call is then in /stats.
func (gw *gateway) stats(t *testing.T, filter string) map[string]int64 {
	t.Helper()
	time.Sleep(3 * flushPeriod)
	status, body, err := gw.adminGet("/stats?filter=" + url.QueryEscape(filter))
	if err != nil || status != http.StatusOK {
		t.Fatalf("admin /stats: %d %v", status, err)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			m[name] = n
		}
	}
	return m
}

// flushPeriod is how often the plugin flushes its counters.
const flushPeriod = 250 * time.Millisecond

// counter returns the plugin counter name, which must exist once behind
// Envoy's prefix for Wasm metrics.
func (gw *gateway) counter(t *testing.T, name string) int64 {
	t.Helper()
	found := gw.stats(t, `(^|\.)`+regexp.QuoteMeta(name)+`$`)
	if len(found) != 1 {
		t.Fatalf("want one counter named *%s, found %v", name, found)
	}
	for _, v := range found {
		return v
	}
	return 0
}

// reply is the JSON a demo upstream answers with.
type reply struct {
	Service string              `json:"service"`
	Version string              `json:"version"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// response is one answer through the gateway. Reply is set when an upstream
// answered.
type response struct {
	Status int
	Header http.Header
	Body   string
	Reply  *reply
}

// get sends GET path through the gateway with the given request headers.
func (gw *gateway) get(client *http.Client, path string, header map[string]string) (*response, error) {
	req, err := http.NewRequest(http.MethodGet, gw.url+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(client, req)
}

// do sends a request and reads the answer.
func do(client *http.Client, req *http.Request) (*response, error) {
	path := req.URL.RequestURI()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		r.Reply = &reply{}
		if err := json.Unmarshal(body, r.Reply); err != nil {
			return nil, fmt.Errorf("%s %s: upstream reply: %v: %s", req.Method, path, err, body)
		}
	}
	return r, nil
}

// mustGet is get that fails the test on a transport error or when no
// upstream answered.
func (gw *gateway) mustGet(t *testing.T, path string, header map[string]string) *response {
	t.Helper()
	r, err := gw.get(gw.client, path, header)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reply == nil {
		t.Fatalf("GET %s: status %d, no upstream reply: %q", path, r.Status, r.Body)
	}
	return r
}

// many sends n GET requests over conc concurrent clients and returns the
// responses in completion order. With fresh set, every request opens a new
// connection, so the kernel spreads them over Envoy's workers.
func (gw *gateway) many(t *testing.T, n, conc int, fresh bool, path string, header func(i int) map[string]string) []*response {
	t.Helper()
	transport := &http.Transport{DisableKeepAlives: fresh, MaxIdleConnsPerHost: conc}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: requestTimeout, CheckRedirect: noRedirects}
	var (
		mu    sync.Mutex
		out   []*response
		errs  []error
		next  int
		group sync.WaitGroup
	)
	for range conc {
		group.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				var h map[string]string
				if header != nil {
					h = header(i)
				}
				r, err := gw.get(client, path, h)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out = append(out, r)
				}
				mu.Unlock()
			}
		})
	}
	group.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", len(errs), n, errs[0])
	}
	return out
}

// countStatus counts responses by status code.
func countStatus(rs []*response) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}
