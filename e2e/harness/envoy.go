package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// EnvoyStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const EnvoyStopTimeout = 10 * time.Second

// Envoy is a running (or exited) Envoy process.
type Envoy struct {
	Cmd     *exec.Cmd
	Exited  chan struct{} // closed when the process has exited
	WaitErr error         // valid once Exited is closed
	// Dir is Envoy's working directory: envoy.yaml, admin-address.
	Dir     string
	LogPath string
	admin   string // AdminURL, once known
}

// StartEnvoy writes cfg as envoy.yaml into a fresh directory and starts
// EnvoyBinary on it with two workers, the admin address written to a file
// (AdminURL: cfg's admin should listen on a kernel-picked port), no hot
// restart (several Envoys may run at once), then args. Its output goes to
// LogPath. Envoy is stopped at cleanup, and the tail of its log shown if the
// test failed.
func StartEnvoy(t testing.TB, cfg string, args ...string) *Envoy {
	t.Helper()
	dir := t.TempDir()
	e := &Envoy{Dir: dir, LogPath: filepath.Join(dir, "envoy.log"), Exited: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "envoy.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(e.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	e.Cmd = exec.Command(EnvoyBinary(t), append([]string{"-c", "envoy.yaml",
		"--concurrency", "2",
		"--admin-address-path", "admin-address",
		"--disable-hot-restart"}, args...)...)
	e.Cmd.Dir = dir
	e.Cmd.SysProcAttr = ChildAttr()
	e.Cmd.Stdout, e.Cmd.Stderr = logFile, logFile
	if err := e.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.WaitErr = e.Cmd.Wait()
		close(e.Exited)
	}()
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("envoy log (%s):\n%s", e.LogPath, e.LogTail(300))
		}
	})
	return e
}

// Stop stops Envoy (SIGTERM, then SIGKILL after EnvoyStopTimeout) and waits
// until it has exited.
func (e *Envoy) Stop() { Terminate(e.Cmd.Process, e.Exited, EnvoyStopTimeout) }

// Log returns Envoy's log so far.
func (e *Envoy) Log() string {
	data, _ := os.ReadFile(e.LogPath)
	return string(data)
}

// extensionLine matches the lines of Envoy's startup list of extensions.
var extensionLine = regexp.MustCompile(`\]   [a-z][\w.]*: `)

// LogTail returns the last n lines of Envoy's log, without the startup list
// of extensions.
func (e *Envoy) LogTail(n int) string {
	var lines []string
	for _, line := range strings.SplitAfter(e.Log(), "\n") {
		if !extensionLine.MatchString(line) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before ...]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// AdminURL is the admin interface's base URL, or "" before Envoy has written
// its address.
func (e *Envoy) AdminURL() string {
	if e.admin == "" {
		if addr, err := os.ReadFile(filepath.Join(e.Dir, "admin-address")); err == nil && len(addr) > 0 {
			e.admin = "http://" + strings.TrimSpace(string(addr))
		}
	}
	return e.admin
}

// Await calls ready every interval until it returns true. It fails the test,
// with the tail of Envoy's log, when Envoy exits first, and when timeout
// passes; what names the awaited state in that message.
func (e *Envoy) Await(t testing.TB, timeout, interval time.Duration, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-e.Exited:
			t.Fatalf("envoy exited before %s: %v\n%s", what, e.WaitErr, e.LogTail(80))
		default:
		}
		if ready() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy: not %s after %v", what, timeout)
		}
		time.Sleep(interval)
	}
}

// AdminGet GETs path from the admin interface at admin (a base URL) and
// returns the status and body.
func AdminGet(client *http.Client, admin, path string) (status int, body string, err error) {
	resp, err := client.Get(admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// Listener is one listener that the admin interface reports.
type Listener struct {
	Name string
	// Address is the bound host:port.
	Address string
}

// Listeners asks the admin interface at admin (a base URL) for its
// listeners and the addresses they bound.
func Listeners(client *http.Client, admin string) ([]Listener, error) {
	resp, err := client.Get(admin + "/listeners?format=json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
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
	if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil {
		return nil, fmt.Errorf("admin /listeners: %v", err)
	}
	out := make([]Listener, 0, len(ls.ListenerStatuses))
	for _, l := range ls.ListenerStatuses {
		sa := l.LocalAddress.SocketAddress
		out = append(out, Listener{Name: l.Name, Address: fmt.Sprintf("%s:%d", sa.Address, sa.PortValue)})
	}
	return out, nil
}
