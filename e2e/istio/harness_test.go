package istio

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// upstream is a backend that answers every request with what it received.
type upstream struct {
	name string
	addr string // 127.0.0.1:port
}

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
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := reply{Service: name, Path: r.RequestURI, Headers: map[string][]string{}}
		for k, v := range r.Header {
			rep.Headers[strings.ToLower(k)] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return upstream{name: name, addr: ln.Addr().String()}
}
