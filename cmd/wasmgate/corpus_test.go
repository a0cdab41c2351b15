package main

import (
	"bytes"
	"context"
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
					args := []string{"simulate", "-json", "-wasm", wasm, "-policy", policyFile}
					if envoyConfig := filepath.Join(dir, "envoy.yaml"); exists(envoyConfig) {
						args = append(args, "-envoy-config", envoyConfig)
					}
					got := runOK(t, append(args, filepath.Join(dir, "requests.jsonl"))...)
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

// exists reports whether a corpus case has the file: a case's envoy.yaml
// replaces the shipped one.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestRun_ExitCodes checks the statuses CI gates read: lint 1 on an invalid
// policy and 2 on warnings under -strict; diff 0 on the same policy and 2
// when a verdict changes; envoy-config -check 2 on a route a client steers.
func TestRun_ExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	invalid := write("invalid.yaml", "routes:\n- name: a b\n")
	warned := write("warned.yaml", "routes:\n- match: [{uri: {prefix: /products}}]\n")
	seed := filepath.Join(corpusDir, "seed")
	moreLimited := write("limited.yaml", "routes:\n- match: [{uri: {pathPrefix: /products}}]\n  rateLimit: {tokenBucket: {maxTokens: 1, fillInterval: 1m}}\n")
	wasm := filepath.Join("..", "..", "out", "wasmgate-tinygo.wasm")
	steered := write("steered.yaml", `static_resources:
  listeners:
  - name: gw
    filter_chains:
    - filters:
      - typed_config:
          route_config:
            virtual_hosts:
            - name: all
              routes:
              - {name: hinted, match: {prefix: /}, route: {cluster_header: x-route-to}}
`)
	envoyYAML := filepath.Join("..", "..", "envoy.yaml")
	tests := []struct {
		name string
		args []string
		want error
		out  string
	}{
		{"lint invalid", []string{"lint", invalid}, exitCode(1), `routes[0].name: "a b" is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -` + "\n"},
		{"lint warning", []string{"lint", warned}, nil, `routes[0].match[0].uri.prefix: warning: "/products" also matches "/productsX"; use "pathPrefix" for whole path segments, or end the prefix with "/"` + "\n"},
		{"lint warning strict", []string{"lint", "-strict", warned}, exitCode(2), ""},
		{"diff same", []string{"diff", "-wasm", wasm, "-old", filepath.Join(seed, "policy.yaml"), "-new", filepath.Join(seed, "policy.yaml"), filepath.Join(seed, "requests.jsonl")},
			nil, "no change: all 13 requests get the same verdicts\n"},
		{"envoy-config check steered", []string{"envoy-config", "-check", steered}, exitCode(2), steered + `: listeners[gw].virtual_hosts[all].routes[hinted]: warning: cluster_header "x-route-to": the request reaches whatever cluster it names there, an internal one too; route each destination hint to its cluster by an exact header match (wasmgate envoy-config)` + "\n"},
		{"envoy-config check seed", []string{"envoy-config", "-check", envoyYAML}, nil, envoyYAML + ": every route is on headers the policy controls\n"},
		{"diff changed", []string{"diff", "-wasm", wasm, "-old", filepath.Join(seed, "policy.yaml"), "-new", moreLimited, filepath.Join(seed, "requests.jsonl")}, exitCode(2), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			if err != tc.want {
				t.Fatalf("error = %v, want %v; output:\n%s", err, tc.want, out.String())
			}
			if tc.out != "" && out.String() != tc.out {
				t.Fatalf("output:\n%s\nwant:\n%s", out.String(), tc.out)
			}
		})
	}
}

// TestRun_RenderYAML: render takes a YAML policy and embeds the same
// configuration as for its JSON form.
func TestRun_RenderYAML(t *testing.T) {
	dir := t.TempDir()
	jsonPolicy := filepath.Join(dir, "p.json")
	yamlPolicy := filepath.Join(dir, "p.yaml")
	write(t, jsonPolicy, `{"routes": [{"name": "a", "headers": {"request": {"set": {"x-debug": "on"}}}}]}`)
	write(t, yamlPolicy, "routes:\n- name: a\n  headers: {request: {set: {x-debug: on}}}\n")
	const image = "oci://registry.example/wasmgate@sha256:0123456789012345678901234567890123456789012345678901234567890123"
	fromJSON := runOK(t, "render", "-policy", jsonPolicy, "-image", image)
	if fromYAML := runOK(t, "render", "-policy", yamlPolicy, "-image", image); fromYAML != fromJSON {
		t.Fatalf("render of the YAML policy:\n%s\nof the JSON one:\n%s", fromYAML, fromJSON)
	}
}
