package istio

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

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
