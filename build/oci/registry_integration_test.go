package oci

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestClient_Distribution runs the push and pull round trip against a real
// registry: Debian's docker-registry (CNCF Distribution 2.8), started on a
// free loopback port with the project's build/registry.yml and a temporary
// storage directory.
func TestClient_Distribution(t *testing.T) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		const msg = "docker-registry not found: run `make registry`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	testPushPull(t, startDistribution(t, bin))
}

// startDistribution starts the registry command bin and returns its
// host:port once /v2/ answers. The registry is stopped, and its log shown if
// the test failed, at cleanup.
func startDistribution(t *testing.T, bin string) string {
	t.Helper()
	config, err := filepath.Abs(filepath.Join("..", "registry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	host := freeLoopbackAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", config)
	cmd.Env = append(os.Environ(),
		"REGISTRY_HTTP_ADDR="+host,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+t.TempDir(),
	)
	cmd.Stdout, cmd.Stderr = &log, &log
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
	deadline := time.Now().Add(15 * time.Second)
	for {
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
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
