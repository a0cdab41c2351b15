package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
	"golang.org/x/net/http2"
)

var (
	hostileRequests = flag.Int("hostile", 1500, "requests per build of TestEnvoy_HostileTraffic")
	hostileSeed     = flag.Uint64("hostile-seed", 1, "seed of TestEnvoy_HostileTraffic's generated requests")
)

// Envoy's defaults that the generated requests go up to (and a little past):
// max_request_headers_kb 60 and max_headers_count 100.
const (
	envoyHeaderBytes = 60 << 10
	envoyHeaderCount = 100
)

// TestEnvoy_HostileTraffic sends generated requests (seeded: random header
// names, values, counts and sizes up to and past Envoy's limits, odd paths
// and methods, half over HTTP/1.1 as raw bytes, half over h2c) through the
// gateway with the seed policy, from four clients at once. The plugin's VMs
// never fail or restart, no 5xx comes from Envoy or the plugin (an upstream
// refusing what the client sent is counted, not failed), and
// Envoy's memory stays flat: its growth over the second half of the requests
// is bounded.
func TestEnvoy_HostileTraffic(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		p := seedPolicy(t)
		// Admit everything, so requests reach the upstreams and the plugin's
		// whole plan (rewrite, headers, hint) runs on them.
		seedRoute(p)["rateLimit"] = bucketLimit(1_000_000, 1, "1s")
		gw := startGateway(t, b, p)
		vmsBefore := wasmVMStats(t, gw)
		t.Logf("wasm stats at start: %v", vmsBefore)

		const clients = 4
		n := *hostileRequests
		var (
			mu       sync.Mutex
			outcomes = map[string]int{}
			rss      [3]int64 // after the warm-up, at half, at the end
		)
		record := func(outcome string) {
			mu.Lock()
			outcomes[outcome]++
			mu.Unlock()
		}
		run := func(from, to int) {
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					h2 := h2cClient()
					defer h2.CloseIdleConnections()
					for i := from + c; i < to; i += clients {
						gen := rand.New(rand.NewPCG(*hostileSeed, uint64(i)))
						req := hostileRequest(gen)
						// Go's h2 client sends no :path "*" or starting
						// with "//"; those go over HTTP/1.1.
						if i%2 == 0 || !strings.HasPrefix(req.path, "/") || strings.HasPrefix(req.path, "//") {
							record(sendHTTP1(gw, req))
						} else {
							record(sendH2C(gw, h2, req))
						}
					}
				})
			}
			wg.Wait()
		}
		warmup := min(100, n/4)
		run(0, warmup)
		rss[0] = processRSS(t, gw.Cmd.Process.Pid)
		run(warmup, (warmup+n)/2)
		rss[1] = processRSS(t, gw.Cmd.Process.Pid)
		run((warmup+n)/2, n)
		rss[2] = processRSS(t, gw.Cmd.Process.Pid)

		t.Logf("%d requests (seed %d): %s", n, *hostileSeed, summary(outcomes))
		t.Logf("envoy RSS: %d MiB after %d requests, %d MiB at half, %d MiB at the end",
			rss[0]>>20, warmup, rss[1]>>20, rss[2]>>20)

		vmsAfter := wasmVMStats(t, gw)
		t.Logf("wasm stats at the end: %v", vmsAfter)
		for name, v := range vmsAfter {
			if strings.Contains(name, "vm_reload") && v != 0 {
				t.Errorf("%s = %d: a VM was reloaded", name, v)
			}
			if strings.HasSuffix(name, ".created") && v != vmsBefore[name] {
				t.Errorf("%s went from %d to %d: a VM was replaced", name, vmsBefore[name], v)
			}
		}
		// Who answered each 5xx, by Envoy's response code details: a
		// reset by the upstream (it refused what the client sent, e.g. an
		// invalid escape Envoy passes on) or an upstream's own 5xx is not
		// the plugin's doing; anything else is (wasm_fail_stream, ...).
		byDetails := map[string]int{}
		for _, m := range fiveHundreds.FindAllStringSubmatch(gw.Log(), -1) {
			byDetails[m[1]]++
			if byDetails[m[1]] == 1 {
				t.Logf("access log: %s", m[0])
			}
		}
		t.Logf("5xx by response code details: %v", byDetails)
		for details, count := range byDetails {
			if !strings.HasPrefix(details, "upstream_reset_before_response_started") && details != "via_upstream" {
				t.Errorf("%d answers 5xx %s", count, details)
			}
		}
		if log := gw.Log(); strings.Contains(log, "panic") || strings.Contains(log, "Wasm VM failed") ||
			strings.Contains(log, "wasm_fail_stream") {
			t.Errorf("the plugin failed:\n%s", gw.LogTail(60))
		}
		for outcome, count := range outcomes {
			if strings.HasPrefix(outcome, "transport") {
				t.Errorf("%d requests failed: %s", count, outcome)
			}
		}
		// Flat: the second half may not grow Envoy by more than 16 MiB
		// (a leak of one header block per request would be over 40 MiB).
		if grew := rss[2] - rss[1]; grew > 16<<20 {
			t.Errorf("envoy RSS grew %d MiB over the second %d requests", grew>>20, n-(warmup+n)/2)
		}
	})
}

// hostile is one generated request.
type hostile struct {
	method, path string
	headers      [][2]string
	body         string
}

var (
	hostileMethods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE", "M-SEARCH", "X"}
	// The headers the policy reads or writes, and Envoy's own.
	hostileNames = []string{"x-route-to", "x-canary", "x-user-id", "x-internal-debug", "x-forwarded-proto",
		"x-envoy-original-path", "x-forwarded-for", "cookie", "x-request-id", "accept"}
	// Never generated: they change how a message is framed or routed by
	// hop, which is not what this test is about.
	framingNames = map[string]bool{"content-length": true, "transfer-encoding": true, "host": true, "connection": true,
		"te": true, "upgrade": true, "expect": true, "keep-alive": true, "proxy-connection": true, "http2-settings": true}
)

const (
	tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789-_.!#$&'*+^`|~"
	valueChars = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\t"
	pathChars  = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%"
)

func randomString(gen *rand.Rand, chars string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(chars[gen.IntN(len(chars))])
	}
	return b.String()
}

// sizeUpTo is a size from 0 to max, most of them small.
func sizeUpTo(gen *rand.Rand, max int) int {
	return int(float64(max) * gen.Float64() * gen.Float64() * gen.Float64())
}

func hostileRequest(gen *rand.Rand) hostile {
	r := hostile{method: hostileMethods[gen.IntN(len(hostileMethods))], path: hostilePath(gen)}
	count := gen.IntN(envoyHeaderCount + 6)
	budget := sizeUpTo(gen, envoyHeaderBytes+4<<10)
	for i := range count {
		var name string
		if gen.IntN(4) == 0 {
			name = hostileNames[gen.IntN(len(hostileNames))]
		} else {
			name = randomString(gen, tokenChars[:36], 1) + randomString(gen, tokenChars, gen.IntN(40))
		}
		if framingNames[name] || strings.HasPrefix(name, ":") {
			continue
		}
		size := budget / max(count-i, 1)
		if gen.IntN(8) == 0 {
			size = budget // one header takes the rest
		}
		budget -= size
		value := strings.TrimSpace(randomString(gen, valueChars, size))
		r.headers = append(r.headers, [2]string{name, value})
	}
	if r.method == "POST" || r.method == "PUT" || r.method == "PATCH" {
		r.body = randomString(gen, valueChars, sizeUpTo(gen, 8<<10))
	}
	return r
}

func hostilePath(gen *rand.Rand) string {
	switch gen.IntN(8) {
	case 0:
		return "*"
	case 1:
		return "/products/" + strings.Repeat("a", sizeUpTo(gen, 16<<10))
	case 2:
		prefixes := []string{"//products/", "/products//", "/products/./", "/%70roducts/", "/x/../products/", "/products/%2e%2e/", "/products%2F"}
		return prefixes[gen.IntN(len(prefixes))] + randomString(gen, pathChars, gen.IntN(30))
	case 3:
		return "/products" + randomString(gen, pathChars, gen.IntN(60)) + "?" + randomString(gen, pathChars+"?", gen.IntN(200))
	default:
		return "/" + randomString(gen, pathChars, gen.IntN(80))
	}
}

// sendHTTP1 writes r as raw HTTP/1.1 bytes on a new connection and returns
// its outcome: the status (and, for a 5xx, who answered), or a transport
// failure.
func sendHTTP1(gw *gateway, r hostile) string {
	addr := strings.TrimPrefix(gw.url, "http://")
	conn, err := net.DialTimeout("tcp", addr, requestTimeout)
	if err != nil {
		return "transport: dial: " + err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimeout))
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n", r.method, r.path, addr)
	for _, h := range r.headers {
		fmt.Fprintf(w, "%s: %s\r\n", h[0], h[1])
	}
	if r.body != "" {
		fmt.Fprintf(w, "content-length: %d\r\n", len(r.body))
	}
	w.WriteString("\r\n" + r.body)
	if err := w.Flush(); err != nil {
		// Envoy may refuse and close before it has read everything.
		return "refused by the codec (write: connection closed)"
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.method})
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "reset") {
			return "refused by the codec (closed without a response)"
		}
		return "transport: " + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return outcome("http/1.1", resp)
}

// sendH2C sends r over the h2c client's connection (prior knowledge).
func sendH2C(gw *gateway, client *http.Client, r hostile) string {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, gw.url, body)
	if err != nil {
		return "transport: " + err.Error()
	}
	req.URL.Opaque = r.path // sent as written, not parsed and re-escaped
	for _, h := range r.headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "larger than peer's advertised limit"), strings.Contains(msg, "invalid"):
			return "not sent: the h2 client refuses the headers"
		case strings.Contains(msg, "stream error"), strings.Contains(msg, "GOAWAY"), strings.Contains(msg, "reset"):
			return "refused by the codec (h2 stream reset)"
		}
		return "transport: " + msg
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return outcome("h2c", resp)
}

// outcome names a response by protocol and status.
func outcome(proto string, resp *http.Response) string {
	return proto + " " + strconv.Itoa(resp.StatusCode)
}

// h2cClient speaks HTTP/2 over plain TCP (prior knowledge), as Envoy's
// codec AUTO accepts it.
func h2cClient() *http.Client {
	return &http.Client{Timeout: requestTimeout, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// wasmVMStats returns Envoy's counters and gauges about Wasm VMs.
func wasmVMStats(t *testing.T, gw *gateway) map[string]int64 {
	t.Helper()
	return gw.stats(t, `^wasm\.`)
}

// fiveHundreds are access-log lines of 5xx answers; the group is Envoy's
// response code details.
var fiveHundreds = regexp.MustCompile(`(?m)^\[[^\]]*\] "[^\n]*" 5\d\d (\S+) .*$`)

var vmRSS = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`)

// processRSS is the resident memory of process pid, in bytes.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		harness.Missing(t, "no /proc to read Envoy's memory from: "+err.Error())
	}
	m := vmRSS.FindSubmatch(data)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// summary lists outcomes by count, largest first.
func summary(outcomes map[string]int) string {
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return outcomes[keys[i]] > outcomes[keys[j]] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d %s", outcomes[k], k)
	}
	return b.String()
}
