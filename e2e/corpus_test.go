package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// verifyReport is the JSON of `wasmgate simulate -verify -json`.
type verifyReport struct {
	Requests      int `json:"requests"`
	Checks        int `json:"checks"`
	Disagreements []struct {
		Source    string `json:"source"`
		Request   string `json:"request"`
		Check     string `json:"check"`
		Envoy     string `json:"envoy"`
		Simulator string `json:"simulator"`
	} `json:"disagreements"`
}

// verify runs `wasmgate simulate -verify` on a policy and a requests file
// with the build's module: the simulator and a real Envoy (this test's
// binary, started by the CLI from envoyConfig) get the same requests, and
// the report lists where they differ.
func verify(t *testing.T, b harness.Build, envoyConfig, policyFile, requestsFile string) verifyReport {
	t.Helper()
	cmd := exec.Command(harness.CLIBinary(t), "simulate", "-verify", "-json", "-wasm", b.Wasm,
		"-envoy-config", envoyConfig, "-policy", policyFile, requestsFile)
	cmd.Env = append(os.Environ(), "WASMGATE_ENVOY="+harness.EnvoyBinary(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 2) {
		t.Fatalf("wasmgate simulate -verify: %v\n%s", err, stderr.String())
	}
	var rep verifyReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("simulate -verify -json: %v\n%s", err, out)
	}
	for _, d := range rep.Disagreements {
		t.Errorf("%s %s: %s: Envoy %s, simulator %s", d.Source, d.Request, d.Check, d.Envoy, d.Simulator)
	}
	if rep.Requests == 0 || rep.Checks == 0 {
		t.Fatalf("nothing compared: %+v", rep)
	}
	return rep
}

// TestEnvoy_Corpus replays the shared corpus (testdata/corpus: policies and
// recorded requests, whose simulate output cmd/wasmgate's tests keep in
// goldens) through the simulator and a real Envoy serving each policy (from
// the case's envoy.yaml if it has one, else the repository's), at the
// requests' time offsets, and fails on any differing verdict: route, status,
// local reply details, upstream path, authority and cluster, the request
// headers Envoy and the plugin touched, response header edits, and the
// per-route counters (matched, limited, over a shadow limit).
func TestEnvoy_Corpus(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(harness.Root, "e2e", "testdata", "corpus", "*", "policy.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no corpus cases: %v", err)
	}
	forEachBuild(t, func(t *testing.T, b harness.Build) {
		var requests, checks int
		for _, policyFile := range cases {
			dir := filepath.Dir(policyFile)
			t.Run(filepath.Base(dir), func(t *testing.T) {
				envoyConfig := filepath.Join(dir, "envoy.yaml") // the case's own, if it has one
				if _, err := os.Stat(envoyConfig); err != nil {
					envoyConfig = filepath.Join(harness.Root, "envoy.yaml")
				}
				rep := verify(t, b, envoyConfig, policyFile, filepath.Join(dir, "requests.jsonl"))
				requests += rep.Requests
				checks += rep.Checks
			})
		}
		t.Logf("simulator and Envoy agree on %d checks over %d requests of %d cases (%s build)", checks, requests, len(cases), b.Name)
	})
}
