package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// spellingLimit is the per-user, per-minute budget of TestGlobalLimit_Spellings.
const spellingLimit = "3"

// rawGet sends GET path over a new HTTP/1.1 connection with the header
// lines exactly as given (repeats, empty and padded values included), which
// net/http would normalize.
func rawGet(t *testing.T, gw *gateway, path string, lines ...string) *response {
	t.Helper()
	addr := strings.TrimPrefix(gw.url, "http://")
	conn, err := net.DialTimeout("tcp", addr, requestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		t.Fatal(err)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n"
	for _, l := range lines {
		req += l + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s %q: %v", path, lines, err)
	}
	r, err := readAnswer(resp, fmt.Sprintf("GET %s %q", path, lines))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGlobalLimit_Spellings checks against envoyproxy/ratelimit and Redis
// that no spelling of a header earns a fresh budget: absent, empty, blank
// and repeated-empty x-user all count as the default user, and a repeated
// or padded x-user: alice as alice.
func TestGlobalLimit_Spellings(t *testing.T) {
	redis, rls := startLimiter(t)
	policy := map[string]any{"routes": []any{map[string]any{
		"name": "spelling", "match": []any{map[string]any{"uri": map[string]any{"prefix": "/spelling"}}},
		"globalRateLimit": map[string]any{
			"domain": rlsDomain, "cluster": "ratelimit", "failureMode": "deny", "timeout": "1s",
			"rateLimits": []any{map[string]any{"actions": []any{
				map[string]any{"genericKey": map[string]any{"descriptorValue": "spelling"}},
				map[string]any{"requestHeaders": map[string]any{"headerName": "x-run", "descriptorKey": "run"}},
				map[string]any{"requestHeaders": map[string]any{"headerName": "x-user", "descriptorKey": "user", "defaultValue": "anonymous"}},
			}}},
		},
	}}}
	variants := map[string][][]string{
		"anonymous": {nil, {"x-user:"}, {"x-user:    "}, {"x-user:", "x-user:"}},
		"alice":     {{"x-user: alice"}, {"x-user:   alice  "}, {"x-user: alice", "x-user: alice"}, {"x-user: alice", "x-user: mallory"}},
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := awaitGateway(t, runEnvoy(t, globalConfig(t, b, policy, rls)))
		for attempt := 1; ; attempt++ {
			run := newRun()
			start := time.Now()
			statuses := map[string]map[int]int{}
			for user, vs := range variants {
				statuses[user] = map[int]int{}
				for _, lines := range vs {
					r := rawGet(t, gw, "/spelling", append([]string{"x-run: " + run}, lines...)...)
					statuses[user][r.Status]++
				}
			}
			if start.Truncate(time.Minute) != time.Now().Truncate(time.Minute) {
				if attempt == 3 {
					t.Fatal("three runs crossed a minute boundary")
				}
				continue
			}
			keys, err := redis.run("KEYS", rlsDomain+"_generic_key_spelling_run_"+run+"_*")
			if err != nil {
				t.Fatalf("redis KEYS: %v: %s", err, keys)
			}
			var users []string
			for _, k := range strings.Fields(keys) {
				rest := strings.TrimPrefix(k, rlsDomain+"_generic_key_spelling_run_"+run+"_user_")
				users = append(users, rest[:strings.LastIndexByte(rest, '_')])
			}
			slices.Sort(users)
			t.Logf("statuses per user %v; the service's keys: users %q", statuses, users)
			if !slices.Equal(users, []string{"alice", "anonymous"}) {
				t.Errorf("the service counted users %q, want [alice anonymous]", users)
			}
			for user, vs := range variants {
				// A budget of 3 for 4 requests: one shared budget denies one.
				if got := statuses[user]; got[http.StatusOK] != 3 || got[http.StatusTooManyRequests] != len(vs)-3 {
					t.Errorf("%s: statuses %v, want 3 × 200 and %d × 429 (one budget)", user, got, len(vs)-3)
				}
			}
			return
		}
	})
}

// TestEnvoy_RepeatedHeaders checks in a real Envoy that %REQ()% renders
// the first value of a repeated header, as Envoy's own does, and that a
// sticky cookie in a second Cookie line picks as it does alone.
func TestEnvoy_RepeatedHeaders(t *testing.T) {
	policy := map[string]any{"routes": []any{
		map[string]any{"name": "echo", "match": []any{map[string]any{"uri": map[string]any{"prefix": "/echo"}}},
			"headers": map[string]any{"request": map[string]any{"set": map[string]any{"x-first": "%REQ(x-in)%"}}}},
		map[string]any{"name": "sticky", "match": []any{map[string]any{"uri": map[string]any{"prefix": "/sticky"}}},
			"route": []any{
				map[string]any{"destination": map[string]any{"host": "product-service"}, "weight": 50},
				map[string]any{"destination": map[string]any{"host": "product-service-v2"}, "weight": 50},
			},
			"split": map[string]any{"hintHeader": "x-route-to", "stickyBy": map[string]any{"cookie": "session"}}},
	}}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := awaitGateway(t, runEnvoy(t, envoyConfig(t, "envoy.yaml", b.Wasm, policy)))
		r := rawGet(t, gw, "/echo", "x-in: first", "x-other: o", "x-in: second")
		if r.Reply == nil {
			t.Fatalf("/echo: status %d %q", r.Status, r.Body)
		}
		if got := r.Reply.Headers["x-first"]; !slices.Equal(got, []string{"first"}) {
			t.Errorf("x-first = %q, want [first] (Envoy's %%REQ(x-in)%% of two lines)", got)
		}
		seen := map[string]int{}
		for u := range 30 {
			c := fmt.Sprintf("Cookie: session=user-%d", u)
			alone, second := rawGet(t, gw, "/sticky", c), rawGet(t, gw, "/sticky", "Cookie: theme=dark", c)
			if alone.Reply == nil || second.Reply == nil {
				t.Fatalf("/sticky: statuses %d and %d", alone.Status, second.Status)
			}
			if alone.Reply.Service != second.Reply.Service {
				t.Errorf("%s alone reached %s, in a second Cookie line %s", c, alone.Reply.Service, second.Reply.Service)
			}
			seen[alone.Reply.Service]++
		}
		t.Logf("30 sticky cookies: %v", seen)
		if len(seen) != 2 {
			t.Errorf("30 cookies reached %v, want both services", seen)
		}
	})
}
