package e2e

import (
	"github.com/wasmgate/wasmgate/e2e/harness"

	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an upstream that counts the requests to each path and
// behaves as the path says: "/slow..." answers after slowFor, "/flaky..."
// answers 503 to the first attempt of each path and 200 after.
type recorder struct {
	mu    sync.Mutex
	count map[string]int
	hosts map[string]string // the last :authority seen per path
}

const slowFor = 1500 * time.Millisecond

// delay is the fault.delay of the route "delayed".
const delay = 400 * time.Millisecond

// timerSlack is how much earlier than its duration an Envoy timer may fire.
const timerSlack = 10 * time.Millisecond

func startRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	rec := &recorder{count: map[string]int{}, hosts: map[string]string{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return rec, l.Addr().String()
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.count[r.URL.Path]++
	n := rec.count[r.URL.Path]
	rec.hosts[r.URL.Path] = r.Host
	rec.mu.Unlock()
	switch {
	case strings.Contains(r.URL.Path, "/slow"):
		select {
		case <-time.After(slowFor):
		case <-r.Context().Done():
			return
		}
	case strings.HasPrefix(r.URL.Path, "/flaky") && n == 1:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("x-answered-by", "recorder")
	w.Write([]byte("ok\n"))
}

func (rec *recorder) seen(path string) (int, string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.count[path], rec.hosts[path]
}

// waitSeen waits (bounded) until the recorder saw path at least once.
func (rec *recorder) waitSeen(path string) (int, string) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, host := rec.seen(path); n > 0 || time.Now().After(deadline) {
			return n, host
		}
	}
}

// TestEnvoy_RouteLevel proves what the route table does for a policy
// route's timeout, retries, corsPolicy, mirror and fault.delay, in Envoy configured by
// envoy-config: behaviour, measured at the client and at the upstreams.
// Two policy routes share the destination: only the one with the timeout
// times out, so the route table tells them apart by the route header.
func TestEnvoy_RouteLevel(t *testing.T) {
	upstream, upstreamAddr := startRecorder(t)
	mirror, mirrorAddr := startRecorder(t)
	dest := []any{map[string]any{"destination": map[string]any{"host": "rl-upstream"}}}
	route := func(name, prefix string, fields map[string]any) map[string]any {
		r := map[string]any{"name": name, "match": []any{map[string]any{"uri": map[string]any{"prefix": prefix}}}, "route": dest}
		for k, v := range fields {
			r[k] = v
		}
		return r
	}
	pol := map[string]any{"routes": []any{
		route("timed", "/timed", map[string]any{"timeout": "300ms"}),
		route("retried", "/flaky/retried", map[string]any{"retries": map[string]any{"attempts": 2, "retryOn": "503"}}),
		route("cors", "/cors", map[string]any{"corsPolicy": map[string]any{
			"allowOrigins": []any{map[string]any{"exact": "https://app.example"}},
			"allowMethods": []any{"GET", "PUT"}, "allowHeaders": []any{"x-token"}, "maxAge": "60s"}}),
		route("mirrored", "/mirrored", map[string]any{"mirror": map[string]any{"host": "rl-mirror"}}),
		route("delayed", "/delayed", map[string]any{"fault": map[string]any{"delay": map[string]any{"fixedDelay": delay.String()}}}),
		route("plain", "/", nil),
	}}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, pol,
			"-upstream", "rl-upstream="+upstreamAddr, "-upstream", "rl-mirror="+mirrorAddr)))
		t.Run("timeout", func(t *testing.T) {
			r, err := gw.get(gw.client, "/timed/slow/"+b.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusGatewayTimeout {
				t.Fatalf("GET /timed/slow: status %d (%q), want 504", r.Status, r.Body)
			}
			t.Logf("route with timeout 300ms, upstream taking %v: status %d", slowFor, r.Status)
			// The same destination through a route without timeout.
			r, err = gw.get(gw.client, "/plain/slow/"+b.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusOK {
				t.Fatalf("GET /plain/slow: status %d (%q), want 200: only the route with the timeout times out", r.Status, r.Body)
			}
			t.Logf("route without timeout, same destination: status %d", r.Status)
			// A client naming the timed route does not get its entry.
			r, err = gw.get(gw.client, "/plain/slow/forged/"+b.Name, map[string]string{"x-wasmgate-route": "timed"})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusOK {
				t.Fatalf("GET /plain/slow with x-wasmgate-route: timed: status %d, want 200: the plugin removes a client's route header", r.Status)
			}
		})
		t.Run("retries", func(t *testing.T) {
			path := "/flaky/retried/" + b.Name
			r, err := gw.get(gw.client, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := upstream.seen(path)
			if r.Status != http.StatusOK || n != 2 {
				t.Fatalf("GET %s: status %d after %d attempts, want 200 after 2 (the first answered 503)", path, r.Status, n)
			}
			t.Logf("first attempt 503: status %d after %d attempts", r.Status, n)
			// Without retries the client sees the 503.
			path = "/flaky/plain/" + b.Name
			if r, err = gw.get(gw.client, path, nil); err != nil {
				t.Fatal(err)
			}
			if n, _ := upstream.seen(path); r.Status != http.StatusServiceUnavailable || n != 1 {
				t.Fatalf("GET %s: status %d after %d attempts, want 503 after 1", path, r.Status, n)
			}
		})
		t.Run("cors preflight", func(t *testing.T) {
			path := "/cors/" + b.Name
			req, err := http.NewRequest(http.MethodOptions, gw.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", "https://app.example")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			r, err := do(gw.client, req)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":  "https://app.example",
				"Access-Control-Allow-Methods": "GET,PUT",
				"Access-Control-Allow-Headers": "x-token",
				"Access-Control-Max-Age":       "60",
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("preflight: %s = %q, want %q (status %d, headers %v)", k, got, v, r.Status, r.Header)
				}
			}
			if n, _ := upstream.seen(path); r.Status != http.StatusOK || n != 0 {
				t.Errorf("preflight: status %d, %d requests reached the upstream; want 200 from the proxy, none", r.Status, n)
			}
			t.Logf("preflight: status %d, allow-origin %q, allow-methods %q, max-age %q", r.Status,
				r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Methods"), r.Header.Get("Access-Control-Max-Age"))
			// An origin the policy does not allow gets no CORS headers.
			req.Header.Set("Origin", "https://other.example")
			if r, err = do(gw.client, req); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("preflight from another origin: Access-Control-Allow-Origin %q, want none", got)
			}
		})
		t.Run("fault delay", func(t *testing.T) {
			path := "/delayed/" + b.Name
			start := time.Now()
			r, err := gw.get(gw.client, path, nil)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			// Envoy arms the delay on its event loop's cached clock, so the
			// timer may fire a few milliseconds before the client's clock
			// says (398ms measured for 400ms): timerSlack allows that.
			if r.Status != http.StatusOK || took < delay-timerSlack {
				t.Fatalf("GET %s: status %d after %v, want 200 after at least %v (less %v)", path, r.Status, took, delay, timerSlack)
			}
			t.Logf("fault.delay %v: status %d after %v", delay, r.Status, took.Round(time.Millisecond))
		})
		t.Run("mirror", func(t *testing.T) {
			path := "/mirrored/" + b.Name
			r, err := gw.get(gw.client, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := upstream.seen(path); r.Status != http.StatusOK || n != 1 {
				t.Fatalf("GET %s: status %d, %d at the destination; want 200, 1", path, r.Status, n)
			}
			n, host := mirror.waitSeen(path)
			if n != 1 {
				t.Fatalf("the mirror saw %s %d times, want 1", path, n)
			}
			t.Logf("mirror received the copy (authority %q)", host)
			if n, _ := mirror.seen("/plain/slow/" + b.Name); n != 0 {
				t.Errorf("the mirror saw a request of a route without mirror")
			}
		})
	})
}
