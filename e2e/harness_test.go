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

	"github.com/wasmgate/wasmgate/e2e/harness"
)

var wasmFlag = flag.String("wasm", "", "comma-separated .wasm files to test, relative to the repository root "+
	"(default $WASMGATE_WASM, else out/wasmgate-go.wasm,out/wasmgate-tinygo.wasm)")

// Timeouts for one Envoy: V8 compiles the module once per worker, which takes
// seconds for the upstream-Go build on a busy machine.
const (
	envoyStartTimeout = 90 * time.Second
	requestTimeout    = 10 * time.Second
)

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
	compile.Dir = harness.Root
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
	cmd.SysProcAttr = harness.ChildAttr()
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

// forEachBuild runs f as one subtest per module under test, after checking
// that Envoy and the module exist.
func forEachBuild(t *testing.T, f func(t *testing.T, b harness.Build)) {
	for _, b := range harness.Builds(*wasmFlag) {
		t.Run(b.Name, func(t *testing.T) {
			harness.RequireModule(t, b)
			t.Logf("envoy: %s", harness.EnvoyVersion(t))
			f(t, b)
		})
	}
}

// readEnvoyYAML returns the repository's envoy.yaml.
func readEnvoyYAML(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.Root, "envoy.yaml"))
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

// launchEnvoy starts Envoy with envoy.yaml derived for this test
// (envoyConfig), policy as the plugin configuration (a JSON value, or a
// string taken verbatim). It stops Envoy at cleanup and prints Envoy's log if
// the test failed.
func launchEnvoy(t *testing.T, b harness.Build, policy any) *harness.Envoy {
	t.Helper()
	return runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, policy))
}

// runEnvoy starts Envoy with the configuration cfg, whose admin interface
// must listen on a kernel-picked port. It stops Envoy at cleanup and prints
// Envoy's log if the test failed.
func runEnvoy(t *testing.T, cfg string) *harness.Envoy {
	t.Helper()
	return harness.StartEnvoy(t, cfg,
		// Access-log lines reach the log within 100 ms (default 10 s).
		"--file-flush-interval-msec", "100",
		"--log-level", "info")
}

// gateway is a ready Envoy with wasmgate in its filter chain.
type gateway struct {
	*harness.Envoy
	// url is the listener's base URL, admin the admin interface's.
	url, admin string
	client     *http.Client
}

// startGateway launches Envoy and waits until its admin interface reports it
// ready, failing the test with Envoy's log if it exits first.
func startGateway(t *testing.T, b harness.Build, policy any) *gateway {
	t.Helper()
	return awaitGateway(t, launchEnvoy(t, b, policy))
}

// awaitGateway waits until the admin interface of e reports it ready, failing
// the test with Envoy's log if it exits first.
func awaitGateway(t *testing.T, e *harness.Envoy) *gateway {
	t.Helper()
	// A redirect is an answer to check, never one to follow.
	gw := &gateway{Envoy: e, client: &http.Client{Timeout: requestTimeout, CheckRedirect: noRedirects}}
	t.Cleanup(gw.client.CloseIdleConnections)
	e.Await(t, envoyStartTimeout, 100*time.Millisecond, "ready", func() bool {
		if gw.admin = e.AdminURL(); gw.admin == "" {
			return false
		}
		status, body, err := gw.adminGet("/ready")
		if err == nil && status == http.StatusOK {
			t.Logf("envoy ready: %s", strings.TrimSpace(body))
			return true
		}
		return false
	})
	addr, err := gw.listenerAddress()
	if err != nil {
		t.Fatal(err)
	}
	gw.url = "http://" + addr
	return gw
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (gw *gateway) adminGet(path string) (status int, body string, err error) {
	return harness.AdminGet(gw.client, gw.admin, path)
}

// listenerAddress asks the admin interface which port the listener bound.
func (gw *gateway) listenerAddress() (string, error) {
	ls, err := harness.Listeners(gw.client, gw.admin)
	if err != nil {
		return "", err
	}
	for _, l := range ls {
		if l.Name == "gateway" {
			return l.Address, nil
		}
	}
	return "", fmt.Errorf("admin /listeners: no listener %q in %v", "gateway", ls)
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
