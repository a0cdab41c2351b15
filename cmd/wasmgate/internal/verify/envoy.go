package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DetailsHeader is the response header the verifying Envoy adds to every
// local reply with its %RESPONSE_CODE_DETAILS%.
const DetailsHeader = "x-wasmgate-details"

// FindEnvoy returns the Envoy binary to run: $WASMGATE_ENVOY, else the
// newest install in the tools cache (make envoy), else envoy on PATH.
func FindEnvoy() (string, error) {
	if p := os.Getenv("WASMGATE_ENVOY"); p != "" {
		return p, nil
	}
	cache := os.Getenv("WASMGATE_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err == nil {
			cache = filepath.Join(dir, "wasmgate")
		}
	}
	if cache != "" {
		found, _ := filepath.Glob(filepath.Join(cache, "envoy-*", "bin", "envoy"))
		if len(found) > 0 {
			slices.Sort(found)
			return found[len(found)-1], nil
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", errors.New("no Envoy binary: run `make envoy` (it installs into the tools cache), or set WASMGATE_ENVOY")
}

// withDetails adds a local_reply_config mapper to the first listener's
// connection manager that puts DetailsHeader on every local reply, the
// codec's refusals included.
func withDetails(cfg []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		return nil, err
	}
	hcm, ok := dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config").(map[string]any)
	if !ok {
		return nil, errors.New("no connection manager in the first listener")
	}
	hcm["local_reply_config"] = map[string]any{"mappers": []any{map[string]any{
		"filter": map[string]any{"status_code_filter": map[string]any{"comparison": map[string]any{
			"op": "GE", "value": map[string]any{"default_value": 0, "runtime_key": "wasmgate.verify.unused"}}}},
		"headers_to_add": []any{map[string]any{
			"header":        map[string]any{"key": DetailsHeader, "value": "%RESPONSE_CODE_DETAILS%"},
			"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
		}},
	}}}
	return yaml.Marshal(doc)
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// envoy is a running Envoy.
type envoy struct {
	cmd     *exec.Cmd
	dir     string
	exited  chan struct{}
	waitErr error
	admin   string
	gateway string
}

// startEnvoy runs binary with cfg (admin and listener on kernel-picked
// ports) and waits until it is ready.
func startEnvoy(ctx context.Context, binary string, cfg []byte, timeout time.Duration) (*envoy, error) {
	dir, err := os.MkdirTemp("", "wasmgate-verify-")
	if err != nil {
		return nil, err
	}
	e := &envoy{dir: dir, exited: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(dir, "envoy.yaml"), cfg, 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	e.cmd = exec.Command(binary, "-c", "envoy.yaml", "--concurrency", "2", "--disable-hot-restart",
		"--admin-address-path", "admin-address", "--log-level", "warning")
	e.cmd.Dir, e.cmd.Stdout, e.cmd.Stderr = dir, logFile, logFile
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { e.waitErr = e.cmd.Wait(); close(e.exited) }()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-e.exited:
			return nil, fmt.Errorf("envoy exited before it was ready (%v): %s", e.waitErr, e.logTail())
		case <-ctx.Done():
			e.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("envoy not ready after %s: %s", timeout, e.logTail())
		}
		if e.admin == "" {
			if a, err := os.ReadFile(filepath.Join(dir, "admin-address")); err == nil && len(a) > 0 {
				e.admin = "http://" + strings.TrimSpace(string(a))
			}
		}
		if e.admin != "" {
			if resp, err := client.Get(e.admin + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e.gateway, err = e.listener(client); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// listener asks the admin interface where the first listener bound.
func (e *envoy) listener(client *http.Client) (string, error) {
	resp, err := client.Get(e.admin + "/listeners?format=json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ls struct {
		ListenerStatuses []struct {
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.Unmarshal(body, &ls); err != nil || len(ls.ListenerStatuses) == 0 {
		return "", fmt.Errorf("admin /listeners: %v: %s", err, body)
	}
	sa := ls.ListenerStatuses[0].LocalAddress.SocketAddress
	return fmt.Sprintf("%s:%d", sa.Address, sa.PortValue), nil
}

func (e *envoy) logTail() string {
	data, _ := os.ReadFile(filepath.Join(e.dir, "envoy.log"))
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// stop ends Envoy and removes its directory.
func (e *envoy) stop() {
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
	os.RemoveAll(e.dir)
}
