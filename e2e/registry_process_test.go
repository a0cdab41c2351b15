package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// startRegistryProcess serves the registry command bin with config and returns its
// host:port once /v2/ answers. prepare, when not nil, may adjust the command
// before it starts. The registry is stopped at cleanup, and its log shown if
// the test failed.
func startRegistryProcess(t testing.TB, bin, config string, prepare func(*exec.Cmd)) string {
	t.Helper()
	host := freeLoopbackAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", config)
	cmd.Env = append(os.Environ(),
		"REGISTRY_HTTP_ADDR="+host,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+t.TempDir(),
	)
	cmd.Stdout, cmd.Stderr = &log, &log
	if prepare != nil {
		prepare(cmd)
	}
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

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
