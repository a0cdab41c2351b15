package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the corpus's simulate.golden.json from simulate's output")

// corpusDir is the corpus of policies and requests shared with the real-Envoy
// test (e2e/corpus_test.go), which checks Envoy against the same goldens.
var corpusDir = filepath.Join("..", "..", "e2e", "testdata", "corpus")

// TestSimulate_Corpus replays every corpus case through both builds of the
// plugin and compares simulate -json with the case's golden file. Both builds
// must give the same output: the golden file is also what Envoy must do.
func TestSimulate_Corpus(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(corpusDir, "*", "policy.yaml"))
	if err != nil || len(cases) < 2 {
		t.Fatalf("corpus cases: %v, %v", cases, err)
	}
	for _, build := range []string{"tinygo", "go"} {
		wasm := filepath.Join("..", "..", "out", "wasmgate-"+build+".wasm")
		t.Run(build, func(t *testing.T) {
			if _, err := os.Stat(wasm); err != nil {
				t.Fatalf("%v: run `make build`", err)
			}
			for _, policyFile := range cases {
				dir := filepath.Dir(policyFile)
				t.Run(filepath.Base(dir), func(t *testing.T) {
					got := runOK(t, "simulate", "-json", "-wasm", wasm, "-policy", policyFile, filepath.Join(dir, "requests.jsonl"))
					golden := filepath.Join(dir, "simulate.golden.json")
					if *update && build == "tinygo" {
						if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Fatal(err)
					}
					if got != string(want) {
						t.Fatalf("simulate -json differs from %s (go test -run TestSimulate_Corpus -update rewrites it):\n%s", golden, got)
					}
				})
			}
		})
	}
}
