package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// The global-limit tests run two gateways (two Envoy processes with two
// workers each, like two replicas) against one envoyproxy/ratelimit and one
// Redis, all on loopback.

const (
	rlsDomain = "wasmgate-e2e"
	// exactLimit is the per-minute limit of the exactness test.
	exactLimit = 5
	// localTokens is the local bucket in front of the burst route, per
	// replica.
	localTokens = 5
	// failTimeout is the globalRateLimit timeout of the fault routes.
	failTimeout = 300 * time.Millisecond
	// slowDelay is what the slow proxy adds to every chunk to the service:
	// well beyond failTimeout plus failSlack, so an answer within those
	// proves the timeout, not the service, ended the wait.
	slowDelay = 3 * time.Second
	// failSlack is what a loaded machine may add to failTimeout.
	failSlack = 1500 * time.Millisecond
)

// rlsConfig is the service's configuration: every descriptor carries a
// "run" entry with a value unique to the test run, so each run counts from
// zero in Redis whatever ran before.
const rlsConfig = `domain: ` + rlsDomain + `
descriptors:
  - key: generic_key
    value: exact
    descriptors:
      - key: run
        rate_limit: {name: exact-per-minute, unit: minute, requests_per_unit: 5}
  - key: generic_key
    value: loose
    descriptors:
      - key: run
        rate_limit: {unit: minute, requests_per_unit: 100000}
`

// globalPolicy is the policy of the tests' gateways.
func globalPolicy() map[string]any {
	global := func(value, cluster, failureMode string, timeout time.Duration) map[string]any {
		return map[string]any{
			"domain": rlsDomain, "cluster": cluster, "failureMode": failureMode, "timeout": timeout.String(),
			"rateLimits": []any{map[string]any{"actions": []any{
				map[string]any{"genericKey": map[string]any{"descriptorValue": value}},
				map[string]any{"requestHeaders": map[string]any{"headerName": "x-run", "descriptorKey": "run"}},
			}}},
		}
	}
	route := func(name string, g map[string]any) map[string]any {
		return map[string]any{"name": name, "match": []any{map[string]any{"uri": map[string]any{"prefix": "/" + name}}},
			"globalRateLimit": g}
	}
	burst := route("burst", global("loose", "ratelimit", "deny", time.Second))
	burst["rateLimit"] = map[string]any{"tokenBucket": map[string]any{"maxTokens": localTokens, "fillInterval": "1h"},
		"key": map[string]any{"header": "x-run"}}
	return map[string]any{"routes": []any{
		route("exact", global("exact", "ratelimit", "deny", time.Second)),
		burst,
		route("allow", global("loose", "ratelimit", "allow", failTimeout)),
		route("deny", global("loose", "ratelimit", "deny", failTimeout)),
		route("slow", global("loose", "ratelimit-slow", "deny", failTimeout)),
		route("nocluster", global("loose", "no-such-cluster", "deny", failTimeout)),
		map[string]any{"name": "plain"},
	}}
}

// startLimiter starts Redis and envoyproxy/ratelimit on loopback ports,
// stopped at cleanup.
func startLimiter(t *testing.T) (*redisProcess, *rlsProcess) {
	t.Helper()
	redisBin := toolPath(t, "redis-server", "redis")
	redisCLI := toolPath(t, "redis-cli", "redis")
	rlsBin := ratelimitBinary(t)
	redis := &redisProcess{bin: redisBin, cli: redisCLI, addr: harness.FreeLoopbackAddr(t), dir: t.TempDir()}
	redis.start(t)
	t.Cleanup(redis.stop)
	rls := &rlsProcess{bin: rlsBin, redis: redis.addr, root: t.TempDir(),
		http: harness.FreeLoopbackAddr(t), grpc: harness.FreeLoopbackAddr(t), debug: harness.FreeLoopbackAddr(t)}
	rls.start(t)
	t.Cleanup(rls.stop)
	return redis, rls
}

// globalConfig is envoy.yaml derived for build b with policy, its
// ratelimit cluster on the service rls, then args (envoy-config flags).
func globalConfig(t *testing.T, b harness.Build, policy any, rls *rlsProcess, args ...string) string {
	t.Helper()
	return envoyConfig(t, "envoy.yaml", b.Wasm, policy, append([]string{"-upstream", "ratelimit=" + rls.grpc}, args...)...)
}

func TestGlobalLimit(t *testing.T) {
	redis, rls := startLimiter(t)
	slow := startSlowProxy(t, rls.grpc, slowDelay)

	forEachBuild(t, func(t *testing.T, b harness.Build) {
		// A second cluster for the service, through the slow proxy.
		cfg := globalConfig(t, b, globalPolicy(), rls, "-upstream", "ratelimit-slow="+slow, "-like", "ratelimit-slow=ratelimit")
		// Two replicas, launched together: V8 compiles the module meanwhile.
		e1, e2 := runEnvoy(t, cfg), runEnvoy(t, cfg)
		replicas := []*gateway{awaitGateway(t, e1), awaitGateway(t, e2)}

		t.Run("exact across replicas", func(t *testing.T) { testExact(t, replicas, redis) })
		t.Run("local bucket first", func(t *testing.T) { testLocalFirst(t, replicas, redis) })
		t.Run("slow service", func(t *testing.T) {
			testFailure(t, replicas, "slow", http.StatusInternalServerError, "global_timeout")
		})
		t.Run("unknown cluster", func(t *testing.T) {
			testFailure(t, replicas, "nocluster", http.StatusInternalServerError, "global_error")
		})
		t.Run("redis stopped", func(t *testing.T) {
			redis.stop()
			defer redis.start(t)
			testFailure(t, replicas, "deny", http.StatusInternalServerError, "")
			testFailure(t, replicas, "allow", http.StatusOK, "")
		})
		t.Run("service stopped", func(t *testing.T) {
			rls.stop()
			defer rls.start(t)
			testFailure(t, replicas, "deny", http.StatusInternalServerError, "global_error")
			testFailure(t, replicas, "allow", http.StatusOK, "global_error")
		})
		t.Run("VM alive", func(t *testing.T) {
			for _, gw := range replicas {
				gw.mustGet(t, "/plain", nil)
				if log := gw.Log(); strings.Contains(log, "panic") || strings.Contains(log, "Wasm VM failed") ||
					strings.Contains(log, "wasm log: Failed") {
					t.Fatalf("the plugin failed:\n%s", gw.LogTail(50))
				}
				if got := gw.counter(t, "wasmgate.route.plain.matched"); got != 1 {
					t.Fatalf("plain matched = %d, want 1", got)
				}
			}
		})
	})
}

var runCount int

// newRun returns a descriptor value no earlier request used.
func newRun() string {
	runCount++
	return fmt.Sprintf("r%d-%d", time.Now().UnixNano(), runCount)
}

// spread sends n requests to path with header x-run: run, alternating
// between the replicas, conc at a time on fresh connections (so both workers
// of each replica serve).
func spread(t *testing.T, replicas []*gateway, n, conc int, path, run string) []*response {
	t.Helper()
	var (
		mu  sync.Mutex
		out []*response
		wg  sync.WaitGroup
	)
	for i, gw := range replicas {
		share := n / len(replicas)
		if i < n%len(replicas) {
			share++
		}
		wg.Go(func() {
			rs := gw.many(t, share, conc, true, path, func(int) map[string]string { return map[string]string{"x-run": run} })
			mu.Lock()
			out = append(out, rs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// testExact sends 40 requests over both replicas for a limit of 5 per
// minute and wants exactly 5 admitted. envoyproxy/ratelimit counts in
// clock-aligned windows; a burst that crossed a minute boundary is sent
// again with a new run value.
func testExact(t *testing.T, replicas []*gateway, redis *redisProcess) {
	const n = 40
	for attempt := 1; ; attempt++ {
		run := newRun()
		start := time.Now()
		rs := spread(t, replicas, n, 8, "/exact", run)
		end := time.Now()
		if start.Truncate(time.Minute) != end.Truncate(time.Minute) {
			if attempt == 3 {
				t.Fatal("three bursts crossed a minute boundary")
			}
			t.Logf("burst crossed a minute boundary (%s..%s); again", start.Format("15:04:05.000"), end.Format("15:04:05.000"))
			continue
		}
		statuses := countStatus(rs)
		t.Logf("%d requests over 2 replicas × 2 workers in %v: %v (service counted %d)",
			n, end.Sub(start).Round(time.Millisecond), statuses, redis.hits(t, "exact", run))
		if statuses[http.StatusOK] != exactLimit || statuses[http.StatusTooManyRequests] != n-exactLimit {
			t.Fatalf("statuses %v, want exactly %d × 200 and %d × 429", statuses, exactLimit, n-exactLimit)
		}
		if got := redis.hits(t, "exact", run); got != n {
			t.Errorf("the service counted %d hits, want %d", got, n)
		}
		untilReset := int(time.Until(start.Truncate(time.Minute).Add(time.Minute)).Seconds())
		for _, r := range rs {
			if r.Status == http.StatusTooManyRequests {
				checkGlobalDenied(t, r, untilReset)
			}
		}
		var over int64
		for _, gw := range replicas {
			over += gw.counter(t, "wasmgate.route.exact.global_over_limit")
		}
		if over < n-exactLimit {
			t.Errorf("global_over_limit over both replicas = %d, want at least %d", over, n-exactLimit)
		}
		return
	}
}

// checkGlobalDenied asserts the fields of a denial by the service's
// exact-per-minute limit, untilReset seconds before the window ends.
func checkGlobalDenied(t *testing.T, r *response, untilReset int) {
	t.Helper()
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 || retry < untilReset-2 || retry > untilReset+2 {
		t.Errorf("Retry-After = %q, want about %d (the rest of the minute)", r.Header.Get("Retry-After"), untilReset)
	}
	if got, want := r.Header.Get("RateLimit-Policy"), `"exact-per-minute";q=5;w=60`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	m := regexp.MustCompile(`^"exact-per-minute";r=0;t=(\d+)$`).FindStringSubmatch(r.Header.Get("RateLimit"))
	if m == nil || m[1] != strconv.Itoa(retry) {
		t.Errorf(`RateLimit = %q, want "exact-per-minute";r=0;t=%d`, r.Header.Get("RateLimit"), retry)
	}
}

// testLocalFirst sends 40 requests to a route whose local bucket admits 5
// per replica: the service must see only the 10 the buckets admitted.
func testLocalFirst(t *testing.T, replicas []*gateway, redis *redisProcess) {
	const n = 40
	run := newRun()
	rs := spread(t, replicas, n, 8, "/burst", run)
	statuses := countStatus(rs)
	hits := redis.hits(t, "loose", run)
	t.Logf("%d requests, local buckets of %d per replica: %v; the service saw %d", n, localTokens, statuses, hits)
	want := localTokens * len(replicas)
	if statuses[http.StatusOK] != want || statuses[http.StatusTooManyRequests] != n-want {
		t.Errorf("statuses %v, want %d × 200 and %d × 429", statuses, want, n-want)
	}
	if hits != want {
		t.Errorf("the service saw %d calls, want %d (only what the local buckets admitted)", hits, want)
	}
}

// testFailure sends requests to a route whose service call fails and wants
// status from its failureMode, each answered within the route's timeout
// (plus scheduling slack), and the failure counted in counter ("" for
// either global_error or global_timeout).
func testFailure(t *testing.T, replicas []*gateway, route string, status int, counter string) {
	t.Helper()
	const perReplica = 10
	for i, gw := range replicas {
		before, _ := failures(t, gw, route, counter)
		var took []time.Duration
		for range perReplica {
			start := time.Now()
			r, err := gw.get(gw.client, "/"+route, map[string]string{"x-run": newRun()})
			took = append(took, time.Since(start))
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != status {
				t.Fatalf("%s on replica %d: status %d, want %d: %q", route, i, r.Status, status, r.Body)
			}
		}
		slices.Sort(took)
		t.Logf("/%s on replica %d (failureMode → %d): answered in min %v, median %v, max %v (timeout %v)", route, i, status,
			took[0].Round(time.Microsecond), took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond), failTimeout)
		if max := took[len(took)-1]; max > failTimeout+failSlack {
			t.Errorf("slowest answer %v, want within the timeout %v (+%v)", max, failTimeout, failSlack)
		}
		after, both := failures(t, gw, route, counter)
		if after-before != perReplica {
			t.Errorf("%s counted %d failures, want %d", route, after-before, perReplica)
		}
		t.Logf("/%s on replica %d, counted so far: %v", route, i, both)
	}
}

// failures reads the route's global_error and global_timeout counters
// (one /stats read) and returns the one named counter, or their sum for "",
// with both by name.
func failures(t *testing.T, gw *gateway, route, counter string) (int64, map[string]int64) {
	t.Helper()
	both := map[string]int64{}
	for name, v := range gw.stats(t, `wasmgate\.route\.`+regexp.QuoteMeta(route)+`\.global_(error|timeout)$`) {
		both[name[strings.LastIndex(name, ".")+1:]] = v
	}
	if counter != "" {
		return both[counter], both
	}
	return both["global_error"] + both["global_timeout"], both
}

// toolPath finds a command installed by `make target`.
func toolPath(t *testing.T, name, target string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		harness.Missing(t, fmt.Sprintf("%s: %v: run `make %s`", name, err, target))
	}
	return p
}

// ratelimitBinary is the tools-cache install of build/install-ratelimit.sh.
func ratelimitBinary(t *testing.T) string {
	t.Helper()
	version, err := harness.PinnedVersion("RATELIMIT_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(harness.ToolsCache(), "ratelimit-"+version, "bin", "ratelimit")
	if _, err := os.Stat(p); err != nil {
		harness.Missing(t, fmt.Sprintf("envoyproxy/ratelimit: %v: run `make ratelimit`", err))
	}
	return p
}

// process is a started server process with its output kept for failures.
type process struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
}

func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = harness.ChildAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

func (p *process) stop() {
	if p != nil {
		harness.Terminate(p.cmd.Process, p.exited, 5*time.Second)
	}
}

// await polls ready until it holds, failing with the process output if the
// process exits or 20 s pass.
func (p *process) await(t *testing.T, name string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready:\n%s", name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 20s: %v\n%s", name, err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type redisProcess struct {
	bin, cli, addr, dir string
	p                   *process
}

func (r *redisProcess) start(t *testing.T) {
	t.Helper()
	host, port, _ := strings.Cut(r.addr, ":")
	r.p = startProcess(t, exec.Command(r.bin, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes"))
	r.p.await(t, "redis-server", func() error {
		out, err := r.run("PING")
		if err == nil && out != "PONG" {
			err = fmt.Errorf("PING: %q", out)
		}
		return err
	})
}

func (r *redisProcess) stop() { r.p.stop() }

func (r *redisProcess) run(args ...string) (string, error) {
	host, port, _ := strings.Cut(r.addr, ":")
	out, err := exec.Command(r.cli, append([]string{"-h", host, "-p", port, "--raw"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// hits sums the service's counters in Redis for generic_key value and run
// (keys <domain>_generic_key_<value>_run_<run>_<window start>).
func (r *redisProcess) hits(t *testing.T, value, run string) int {
	t.Helper()
	keys, err := r.run("KEYS", rlsDomain+"_generic_key_"+value+"_run_"+run+"_*")
	if err != nil {
		t.Fatalf("redis KEYS: %v: %s", err, keys)
	}
	total := 0
	for _, k := range strings.Fields(keys) {
		v, err := r.run("GET", k)
		n, perr := strconv.Atoi(v)
		if err != nil || perr != nil {
			t.Fatalf("redis GET %s: %q %v", k, v, err)
		}
		total += n
	}
	return total
}

type rlsProcess struct {
	bin, redis, root  string
	http, grpc, debug string
	p                 *process
}

func (s *rlsProcess) start(t *testing.T) {
	t.Helper()
	dir := filepath.Join(s.root, "ratelimit", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(rlsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"REDIS_URL=" + s.redis, "REDIS_SOCKET_TYPE=tcp", "USE_STATSD=false", "LOG_LEVEL=warn",
		"RUNTIME_ROOT=" + s.root, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false", "RUNTIME_IGNOREDOTFILES=true"}
	for _, l := range []struct{ prefix, addr string }{{"", s.http}, {"GRPC_", s.grpc}, {"DEBUG_", s.debug}} {
		host, port, _ := strings.Cut(l.addr, ":")
		env = append(env, l.prefix+"HOST="+host, l.prefix+"PORT="+port)
	}
	cmd := exec.Command(s.bin)
	cmd.Env = append(os.Environ(), env...)
	s.p = startProcess(t, cmd)
	client := &http.Client{Timeout: time.Second}
	s.p.await(t, "envoyproxy/ratelimit", func() error {
		resp, err := client.Get("http://" + s.http + "/healthcheck")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: %s", resp.Status)
		}
		conn, err := net.Dial("tcp", s.grpc)
		if err == nil {
			conn.Close()
		}
		return err
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("envoyproxy/ratelimit output:\n%s", s.p.out.String())
		}
	})
}

func (s *rlsProcess) stop() { s.p.stop() }

// startSlowProxy forwards TCP connections to target, holding every chunk
// sent to it for delay. It returns its address.
func startSlowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(c, u) }()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}
