package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestDemo_Run runs the body of `make run` (build/demo.sh) as a user does:
// it waits for the banner, pastes every curl example the demo prints and
// checks what each shows, then presses Ctrl-C and expects everything to
// stop. The demo's upstreams use envoy.yaml's fixed ports; its gateway and
// admin ports are picked free.
func TestDemo_Run(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		for _, port := range []string{"18081", "18082"} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
				c.Close()
				harness.Missing(t, "port "+port+" of envoy.yaml's upstreams is in use: is `make run` running?")
			}
		}
		gatewayPort, adminPort := freePort(t), freePort(t)
		demo := startDemo(t, b.Wasm, gatewayPort, adminPort)
		examples := demo.examples(t)
		t.Logf("demo printed %d examples", len(examples))

		checks := []struct {
			comment string // the start of the example's comment line
			check   func(out string) error
		}{
			{"# Rewrite", wants(`"path": "/123?x=1"`)},
			{"# Headers", func(out string) error {
				if err := wants(`x-served-by: product-service`, `"x-forwarded-proto": [`, `"https"`)(out); err != nil {
					return err
				}
				if strings.Contains(strings.ToLower(out), "x-internal-debug") {
					return fmt.Errorf("x-internal-debug reached the upstream")
				}
				return nil
			}},
			{"# Canary: about", func(out string) error {
				counts := versionCounts(out)
				if counts["v1"]+counts["v2"] != 50 || counts["v1"] <= counts["v2"] {
					return fmt.Errorf("versions %v over 50 requests, want mostly v1", counts)
				}
				return nil
			}},
			{"# Canary override", wants(`"version": "v2"`)},
			{"# Sticky", func(out string) error {
				if counts := versionCounts(out); len(counts) != 1 {
					return fmt.Errorf("one user reached versions %v, want one", counts)
				}
				return nil
			}},
			{"# Rate limit", wants(" 429\n")},
			{"# The plugin's counters", wants("wasmcustom.wasmgate.route.products.rate_limited: ", "policy loaded")},
		}
		for _, c := range checks {
			var cmds []string
			for _, e := range examples {
				if strings.HasPrefix(e.comment, c.comment) {
					cmds = e.commands
				}
			}
			if len(cmds) == 0 {
				t.Errorf("the demo printed no example %q", c.comment)
				continue
			}
			out := pasteCommands(t, cmds)
			if err := c.check(out); err != nil {
				t.Errorf("%s\n%s\n%v; it printed:\n%s", c.comment, strings.Join(cmds, "\n"), err, out)
			}
		}
		demo.interrupt(t)
		for _, port := range []string{gatewayPort, adminPort, "18081", "18082"} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
				c.Close()
				t.Errorf("port %s still accepts connections after Ctrl-C", port)
			}
		}
	})
}

// TestDemo_Policy runs the demo with a policy of the corpus (make run
// POLICY=...): every destination gets an upstream, a second demo on the same
// ports is refused before it starts anything, and Ctrl-C ends it with status 0.
func TestDemo_Policy(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gatewayPort, adminPort := freePort(t), freePort(t)
		demo := startDemo(t, b.Wasm, gatewayPort, adminPort, "POLICY=e2e/testdata/corpus/istio/policy.yaml")
		demo.examples(t)
		if out := demo.output(); !strings.Contains(out, "search-b: http://127.0.0.1:") {
			t.Errorf("the banner lists no upstream for search-b:\n%s", out)
		}
		gw := &gateway{url: "http://127.0.0.1:" + gatewayPort, client: &http.Client{Timeout: requestTimeout}}
		r, err := gw.get(gw.client, "/search?q=x", map[string]string{"cookie": "session=s1"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Reply == nil || r.Reply.Service != "search" || r.Reply.Version != "search-a" || r.Reply.Host != "search.internal" {
			t.Errorf("/search?q=x reached %+v, want search's upstream search-a with authority search.internal", r.Reply)
		}

		// The running demo's Envoy keeps appending to its log; a second demo
		// must not truncate it.
		logPath := filepath.Join(harness.Root, "out", "envoy.log")
		logBefore, _ := os.ReadFile(logPath)
		second := exec.Command("bash", "build/demo.sh", b.Wasm)
		second.Dir = harness.Root
		second.Env = append(os.Environ(), "GATEWAY_PORT="+gatewayPort, "ADMIN_PORT="+adminPort, "WASMGATE_ENVOY="+harness.EnvoyBinary(t))
		out, err := second.CombinedOutput()
		want := "demo: port " + gatewayPort + " for the gateway (GATEWAY_PORT) is taken"
		if err == nil || !strings.Contains(string(out), want) || strings.Contains(string(out), "Ctrl-C stops it") {
			t.Errorf("a second demo on the same ports: %v\n%s\nwant it refused with %q before any banner", err, out, want)
		}
		if logAfter, _ := os.ReadFile(logPath); len(logBefore) == 0 || !bytes.HasPrefix(logAfter, logBefore) {
			t.Error("the refused demo rewrote out/envoy.log")
		}

		demo.interrupt(t)
		if demo.err != nil {
			t.Errorf("the demo ended with %v after Ctrl-C, want status 0", demo.err)
		}
	})
}

// wants checks that the output holds every one of the strings.
func wants(subs ...string) func(string) error {
	return func(out string) error {
		for _, s := range subs {
			if !strings.Contains(out, s) {
				return fmt.Errorf("no %q", s)
			}
		}
		return nil
	}
}

var versionCount = regexp.MustCompile(`(?m)^\s*(\d+)\s+"version": "(v\d)"`)

// versionCounts reads the `sort | uniq -c` lines of the canary examples.
func versionCounts(out string) map[string]int {
	counts := map[string]int{}
	for _, m := range versionCount.FindAllStringSubmatch(out, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		counts[m[2]] += n
	}
	return counts
}

// pasteCommands runs commands in one shell from the repository root, as a
// user pasting them would, and returns what they print.
func pasteCommands(t *testing.T, commands []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", strings.Join(commands, "\n"))
	cmd.Dir = harness.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: %v", strings.Join(commands, "; "), err)
	}
	return string(out)
}

// freePort returns a loopback port that was free a moment ago, for a
// program that takes a port number rather than reporting the one it got.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// demoProcess is a running build/demo.sh.
type demoProcess struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	mu     sync.Mutex
	stdout []string // lines so far
	stderr bytes.Buffer
	lines  chan string
}

func startDemo(t *testing.T, wasm, gatewayPort, adminPort string, env ...string) *demoProcess {
	t.Helper()
	d := &demoProcess{done: make(chan struct{}), lines: make(chan string, 256)}
	d.cmd = exec.Command("bash", "build/demo.sh", wasm)
	d.cmd.Dir = harness.Root
	d.cmd.Env = append(append(os.Environ(), "GATEWAY_PORT="+gatewayPort, "ADMIN_PORT="+adminPort,
		"WASMGATE_ENVOY="+harness.EnvoyBinary(t)), env...)
	d.cmd.SysProcAttr = harness.ScriptAttr()
	d.cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.stderr}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			d.mu.Lock()
			d.stdout = append(d.stdout, s.Text())
			d.mu.Unlock()
			d.lines <- s.Text()
		}
		close(d.lines)
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(harness.EnvoyStopTimeout):
				_ = d.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s\ndemo stderr:\n%s\nenvoy log (out/envoy.log):\n%s",
				d.output(), d.errors(), (&harness.Envoy{LogPath: filepath.Join(harness.Root, "out", "envoy.log")}).LogTail(60))
		}
	})
	return d
}

func (d *demoProcess) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.stdout, "\n")
}

func (d *demoProcess) errors() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// example is one block of the demo's printed examples: a comment line and
// the commands under it.
type example struct {
	comment  string
	commands []string
}

// examples waits for the demo's banner and returns the examples it prints,
// which end with the one that greps Envoy's log.
func (d *demoProcess) examples(t *testing.T) []example {
	t.Helper()
	deadline := time.After(envoyStartTimeout + 30*time.Second)
	var out []example
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				<-d.done
				t.Fatalf("demo exited before printing its examples: %v", d.err)
			}
			switch {
			case strings.HasPrefix(line, "# "):
				out = append(out, example{comment: line})
			case strings.HasPrefix(line, "curl ") || strings.HasPrefix(line, "grep "):
				if len(out) == 0 {
					t.Fatalf("demo printed a command before any comment: %q", line)
				}
				out[len(out)-1].commands = append(out[len(out)-1].commands, line)
				if strings.HasPrefix(line, "grep 'wasm log'") {
					return out
				}
			}
		case <-deadline:
			t.Fatal("the demo printed no examples in time")
		}
	}
}

// interrupt presses Ctrl-C and waits for the demo to stop everything.
func (d *demoProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range d.lines { // drain
		}
	}()
	select {
	case <-d.done:
	case <-time.After(harness.EnvoyStopTimeout + 5*time.Second):
		t.Fatal("the demo did not stop after Ctrl-C")
	}
	if !strings.Contains(d.errors(), "demo: stopped") {
		t.Errorf("demo stderr lacks %q after Ctrl-C", "demo: stopped")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
