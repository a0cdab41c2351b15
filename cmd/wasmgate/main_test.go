package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// TestRun_PushCheckRender walks the documented flow: push, check, render,
// validate.
func TestRun_PushCheckRender(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	wasm := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join("..", "..", "deploy", "policy.json")

	for _, variant := range []string{"compat", "oci"} {
		t.Run(variant, func(t *testing.T) {
			ref := host + "/wasmgate:" + variant
			digest := runOK(t, "image", "push", "-wasm", wasm, "-ref", ref, "-variant", variant)
			if offline := runOK(t, "image", "digest", "-wasm", wasm, "-variant", variant); offline != digest {
				t.Errorf("digest = %q, push printed %q", offline, digest)
			}
			digest = strings.TrimSpace(digest)
			want := ref + ": " + variant + " variant, manifest " + digest + ", module 8 bytes\n"
			if got := runOK(t, "image", "check", "-ref", ref, "-wasm", wasm); got != want {
				t.Errorf("check = %q, want %q", got, want)
			}
			byDigest := runOK(t, "render", "-policy", policyFile, "-ref", ref, "-digest", digest)
			byWasm := runOK(t, "render", "-policy", policyFile, "-ref", ref, "-wasm", wasm, "-variant", variant)
			if byDigest != byWasm {
				t.Errorf("render -digest:\n%s\nrender -wasm:\n%s", byDigest, byWasm)
			}
			if !strings.Contains(byDigest, "sha256: "+strings.TrimPrefix(digest, "sha256:")+"\n") {
				t.Errorf("render output lacks the manifest digest:\n%s", byDigest)
			}
			manifest := filepath.Join(dir, variant+".yaml")
			if err := os.WriteFile(manifest, []byte(byDigest), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := runOK(t, "validate", "-f", manifest, "-digest", digest, "-wasm", wasm); got != manifest+": valid\n" {
				t.Errorf("validate = %q", got)
			}
		})
	}
}

func TestRun_Errors(t *testing.T) {
	policyFile := filepath.Join("..", "..", "deploy", "policy.json")
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(notWasm, []byte("text"), 0o644); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(dir, "bad-policy.yaml")
	manifest := `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: wasmgate, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  url: oci://registry.example/wasmgate:v1
  pluginConfig: {routes: [{route: [{destination: {host: a}, weight: -1}]}]}
`
	if err := os.WriteFile(badPolicy, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "validate an invalid pluginConfig", args: []string{"validate", "-f", badPolicy},
			want: badPolicy + ": WasmPlugin wasmgate: spec.pluginConfig: routes[0].route[0].weight: must be an integer from 0 to 2147483647, got -1"},
		{name: "no command", args: nil, want: "usage: wasmgate lint|schema|import|simulate|diff|envoy-config|status|image|render|validate [flags] (-h for each)"},
		{name: "unknown command", args: []string{"pull"}, want: `unknown command "pull"; usage: wasmgate lint|schema|import|simulate|diff|envoy-config|status|image|render|validate [flags] (-h for each)`},
		{name: "image without command", args: []string{"image"}, want: "usage: wasmgate image push|digest|check [flags] (-h for each)"},
		{name: "push without ref", args: []string{"image", "push", "-wasm", notWasm}, want: "push: -ref is required"},
		{name: "bad variant", args: []string{"image", "digest", "-wasm", notWasm, "-variant", "docker"}, want: `variant "docker": want "compat" or "oci"`},
		{name: "not wasm", args: []string{"image", "digest", "-wasm", notWasm}, want: notWasm + `: module: not a WebAssembly binary (no \0asm header)`},
		{name: "extra argument", args: []string{"image", "digest", "-wasm", notWasm, "x"}, want: `digest: unexpected argument "x"`},
		{name: "bad format", args: []string{"render", "-policy", "p.json", "-o", "toml"}, want: `render: -o "toml": want yaml or json`},
		{name: "import bad format", args: []string{"import", "-o", "toml", "vs.yaml"}, want: `import: -o "toml": want yaml or json`},
		{name: "import nothing", args: []string{"import"}, want: "import: want one or more VirtualService files"},
		{name: "route table and hosts", args: []string{"render", "-policy", "p.json", "-route-table", "t.yaml", "-hosts", "a"}, want: "render: -route-table sets -gateway and -hosts: give one or the other"},
		{name: "bad selector", args: []string{"render", "-policy", "p.json", "-selector", "istio"}, want: `invalid value "istio" for flag -selector: "istio": want key=value`},
		{name: "bad target ref", args: []string{"render", "-policy", "p.json", "-target-ref", "edge"}, want: `invalid value "edge" for flag -target-ref: "edge": want [GROUP/]KIND/NAME`},
		{name: "bad names", args: []string{"render", "-policy", policyFile, "-ref", "r.example/w:1", "-digest", "sha256:" + strings.Repeat("a", 64), "-name", "Bad_Name", "-namespace", "NS!"},
			want: policyFile + `: name "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')` + "\n" +
				`namespace "NS!": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestRun_Schema keeps docs/policy.schema.json, which editors reference, the
// output of `wasmgate schema`. Regenerate it with
// `go run ./cmd/wasmgate schema > docs/policy.schema.json`.
// TestRun_Help: -h works on the CLI, on image, and on every subcommand.
func TestRun_Help(t *testing.T) {
	if got := runOK(t, "-h"); got != usage+"\n" {
		t.Errorf("wasmgate -h printed %q", got)
	}
	for _, args := range [][]string{
		{"lint", "-h"}, {"schema", "-h"}, {"simulate", "-h"}, {"diff", "-h"}, {"envoy-config", "-h"},
		{"image", "-h"}, {"image", "push", "-h"}, {"image", "digest", "-h"}, {"image", "check", "-h"},
		{"render", "-h"}, {"validate", "-h"}, {"import", "-h"},
	} {
		// Every subcommand prints its usage line and what it does, the
		// same way (flag prints to standard error).
		stderr, err := os.CreateTemp(t.TempDir(), "stderr")
		if err != nil {
			t.Fatal(err)
		}
		saved := os.Stderr
		os.Stderr = stderr
		err = run(context.Background(), args, io.Discard)
		os.Stderr = saved
		if args[len(args)-2] != "image" && !errors.Is(err, flag.ErrHelp) || args[len(args)-2] == "image" && err != nil {
			t.Errorf("wasmgate %s: %v", strings.Join(args, " "), err)
		}
		printed, _ := os.ReadFile(stderr.Name())
		stderr.Close()
		if cmd := strings.Join(args[:len(args)-1], " "); cmd != "image" {
			if want := "usage: wasmgate " + cmd + " "; !strings.HasPrefix(string(printed), want) || !strings.Contains(string(printed), "\n\n") {
				t.Errorf("wasmgate %s -h printed %q, want %q…, a blank line and what it does", cmd, printed, want)
			}
		}
	}
}

func TestRun_Schema(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := runOK(t, "schema"); got != string(want) {
		t.Fatal("docs/policy.schema.json is not the output of `wasmgate schema`; regenerate it: go run ./cmd/wasmgate schema > docs/policy.schema.json")
	}
}
