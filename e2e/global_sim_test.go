package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// TestGlobalLimit_Simulated: `wasmgate simulate -ratelimit-config` with the
// configuration file the real envoyproxy/ratelimit loads (rlsConfig) gives
// the verdicts the real service on Redis gives behind Envoy: a burst inside
// one clock-aligned minute, 5 allowed by the exact-per-minute limit and the
// rest denied, request by request.
func TestGlobalLimit_Simulated(t *testing.T) {
	_, rls := startLimiter(t)
	routes := globalPolicy()["routes"].([]any)
	policy := map[string]any{"routes": routes[:1]} // "exact"
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.json")
	rlsFile := filepath.Join(dir, "ratelimit.yaml")
	data, _ := json.Marshal(policy)
	write(t, policyFile, string(data))
	write(t, rlsFile, rlsConfig)
	const n = 9
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		gw := awaitGateway(t, runEnvoy(t, globalConfig(t, b, policy, rls)))
		for attempt := 1; ; attempt++ {
			run := newRun()
			var lines []string
			for i := range n {
				lines = append(lines, fmt.Sprintf(`{"path": "/exact/%d", "headers": {"x-run": %q}}`, i, run))
			}
			requestsFile := filepath.Join(t.TempDir(), "requests.jsonl")
			write(t, requestsFile, strings.Join(lines, "\n")+"\n")
			var sim struct {
				Requests []struct {
					Status      int `json:"status"`
					GlobalLimit *struct {
						Verdict string `json:"verdict"`
					} `json:"globalLimit"`
				} `json:"requests"`
			}
			out := harness.RunCLI(t, "simulate", "-json", "-wasm", b.Wasm, "-policy", policyFile, "-ratelimit-config", rlsFile, requestsFile)
			if err := json.Unmarshal([]byte(out), &sim); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var statuses []int
			for i := range n {
				r, err := gw.get(gw.client, fmt.Sprintf("/exact/%d", i), map[string]string{"x-run": run})
				if err != nil {
					t.Fatal(err)
				}
				statuses = append(statuses, r.Status)
			}
			if start.Truncate(time.Minute) != time.Now().Truncate(time.Minute) {
				if attempt == 3 {
					t.Fatal("three bursts crossed a minute boundary")
				}
				continue
			}
			agree := 0
			for i, want := range sim.Requests {
				verdict := ""
				if want.GlobalLimit != nil {
					verdict = want.GlobalLimit.Verdict
				}
				wantVerdict := map[bool]string{true: "allowed", false: "limited"}[i < exactLimit]
				if statuses[i] != want.Status || verdict != wantVerdict {
					t.Errorf("/exact/%d: Envoy with the service %d, simulator %d (%s; want %s)", i, statuses[i], want.Status, verdict, wantVerdict)
					continue
				}
				agree++
			}
			t.Logf("%s build: simulator and the service agree on %d of %d requests", b.Name, agree, n)
			return
		}
	})
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
