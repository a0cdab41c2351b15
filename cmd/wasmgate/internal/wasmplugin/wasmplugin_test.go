package wasmplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"
	extensions "istio.io/api/extensions/v1alpha1"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/oci"
	"github.com/wasmgate/wasmgate/policy"
)

// seedPolicy is the policy the deploy/ example carries.
func seedPolicy(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testImage returns a module and the manifest digest of its compat image.
func testImage(t *testing.T) (wasm []byte, digest string) {
	t.Helper()
	wasm = []byte("\x00asm\x01\x00\x00\x00")
	img, err := oci.Image(wasm, oci.Compat)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return wasm, d.String()
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestRender(t *testing.T) {
	pol := seedPolicy(t)
	wasm, digest := testImage(t)
	hexDigest := strings.TrimPrefix(digest, "sha256:")
	tests := []struct {
		name   string
		opts   Options
		url    string
		labels map[string]string
		phase  string
	}{
		{
			name:   "defaults",
			opts:   Options{Image: "registry.example/wasmgate:v1", Digest: digest},
			url:    "oci://registry.example/wasmgate:v1",
			labels: map[string]string{"istio": "ingressgateway"},
			phase:  "STATS",
		},
		{
			name: "digest reference",
			opts: Options{
				Image:    "oci://registry.example/wasmgate@" + digest,
				Selector: map[string]string{"app": "edge"},
				Phase:    "AUTHN",
			},
			url:    "oci://registry.example/wasmgate@" + digest,
			labels: map[string]string{"app": "edge"},
			phase:  "AUTHN",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(pol, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"yaml", "json"} {
				out, err := m.YAML()
				if format == "json" {
					out, err = m.JSON()
				}
				if err != nil {
					t.Fatal(err)
				}
				wp, err := Validate(out)
				if err != nil {
					t.Fatalf("%s: Validate: %v\n%s", format, err, out)
				}
				if err := CheckDigest(wp, digest, wasm); err != nil {
					t.Errorf("%s: CheckDigest: %v", format, err)
				}
				if wp.Url != tc.url || wp.Sha256 != hexDigest || wp.PluginName != "wasmgate" ||
					wp.Phase.String() != tc.phase || wp.FailStrategy.String() != "FAIL_CLOSE" ||
					wp.ImagePullPolicy.String() != "IfNotPresent" || wp.GetPriority().GetValue() != 0 {
					t.Errorf("%s: spec = %v", format, wp)
				}
				if !reflect.DeepEqual(wp.Selector.GetMatchLabels(), tc.labels) {
					t.Errorf("%s: matchLabels = %v, want %v", format, wp.Selector.GetMatchLabels(), tc.labels)
				}
				// pluginConfig must reach the plugin as the policy it was given.
				config, err := protojson.Marshal(wp.PluginConfig)
				if err != nil {
					t.Fatal(err)
				}
				if !sameJSON(t, config, pol) {
					t.Errorf("%s: pluginConfig = %s\nwant %s", format, config, pol)
				}
				if _, err := policy.Parse(config); err != nil {
					t.Errorf("%s: pluginConfig does not parse: %v", format, err)
				}
			}
		})
	}
}

// TestRender_YAMLScalars checks that strings that read as other YAML types
// stay strings in pluginConfig.
func TestRender_YAMLScalars(t *testing.T) {
	raw := RawJSON(`{"a":"true","b":"1s","c":"%DESTINATION%","d":"0x10","e":"null","f":100,"g":["~","yes",""]}`)
	out, err := yaml.Marshal(map[string]RawJSON{"pluginConfig": raw})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(back["pluginConfig"])
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, got, raw) {
		t.Errorf("YAML round trip = %s\nwant %s\nYAML:\n%s", got, raw, out)
	}
}

// TestRender_Deploy checks that the shipped example is what Render makes
// today from deploy/policy.json with the example's own image and digest.
func TestRender_Deploy(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "wasmplugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wp, err := Validate(shipped)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Render(seedPolicy(t), Options{Image: wp.Url, Digest: "sha256:" + wp.Sha256})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	// The example starts with comments saying how it was made.
	if !bytes.HasSuffix(shipped, out) {
		t.Errorf("deploy/wasmplugin.yaml is stale: run `make deploy/wasmplugin.yaml`; Render gives:\n%s", out)
	}
}

func TestRender_Errors(t *testing.T) {
	pol := seedPolicy(t)
	_, digest := testImage(t)
	badPolicy := []byte(`{"routes": [{"name": "x", "rateLimit": {"tokenBucket": {"maxTokens": -1}}}]}`)
	_, policyErr := policy.Parse(badPolicy)
	if policyErr == nil {
		t.Fatal("policy.Parse accepted a negative maxTokens")
	}
	other := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name   string
		policy []byte
		opts   Options
		want   string
	}{
		{
			name:   "bad policy",
			policy: badPolicy,
			opts:   Options{Image: "registry.example/wasmgate:v1", Digest: digest},
			want:   "policy: " + policyErr.Error(),
		},
		{
			name: "no digest",
			opts: Options{Image: "registry.example/wasmgate:v1"},
			want: `image "registry.example/wasmgate:v1": no manifest digest: pass one or reference the image by digest`,
		},
		{
			name: "two digests",
			opts: Options{Image: "registry.example/wasmgate@" + digest, Digest: other},
			want: `image "registry.example/wasmgate@` + digest + `": digest ` + other + ` differs from the reference's ` + digest,
		},
		{
			name: "digest without algorithm",
			opts: Options{Image: "registry.example/wasmgate:v1", Digest: strings.TrimPrefix(digest, "sha256:")},
			want: `digest "` + strings.TrimPrefix(digest, "sha256:") + `": want sha256: and 64 lower-case hex digits`,
		},
		{
			name: "http url",
			opts: Options{Image: "https://example.com/wasmgate.wasm", Digest: digest},
			want: `image "https://example.com/wasmgate.wasm": want an oci:// reference`,
		},
		{
			name: "bad fail strategy",
			opts: Options{Image: "registry.example/wasmgate:v1", Digest: digest, FailStrategy: "FAIL_CLOSED"},
			want: `spec.failStrategy: "FAIL_CLOSED" is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if p == nil {
				p = pol
			}
			_, err := Render(p, tc.opts)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Render error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// validManifest is the base of the broken corpus; TestValidate_Errors edits
// one line of it per case.
const validManifest = `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: wasmgate
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: oci://registry.example/wasmgate:v1
  sha256: MANIFEST
  imagePullPolicy: IfNotPresent
  pluginName: wasmgate
  phase: STATS
  priority: 0
  failStrategy: FAIL_CLOSE
  pluginConfig:
    routes: []
`

func TestValidate(t *testing.T) {
	wasm, digest := testImage(t)
	manifest := strings.ReplaceAll(validManifest, "MANIFEST", strings.TrimPrefix(digest, "sha256:"))
	wp, err := Validate([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDigest(wp, digest, wasm); err != nil {
		t.Error(err)
	}
}

func TestValidate_Errors(t *testing.T) {
	wasm, digest := testImage(t)
	manifestHex := strings.TrimPrefix(digest, "sha256:")
	moduleSum := sha256.Sum256(wasm)
	moduleHex := hex.EncodeToString(moduleSum[:])
	tests := []struct {
		name     string
		old, new string // one edit of validManifest
		want     string
	}{
		{
			name: "typo in a field name",
			old:  "  pluginConfig:", new: "  pluginConfg:",
			want: `spec.pluginConfg: unknown field, did you mean "pluginConfig"?`,
		},
		{
			name: "protobuf field name",
			old:  "  imagePullPolicy: IfNotPresent", new: "  image_pull_policy: IfNotPresent",
			want: `spec.image_pull_policy: unknown field, did you mean "imagePullPolicy"?`,
		},
		{
			name: "unknown field",
			old:  "  phase: STATS", new: "  phase: STATS\n  replicas: 2",
			want: `spec.replicas: unknown field`,
		},
		{
			name: "typo in a nested field name",
			old:  "    matchLabels:", new: "    matchLabel:",
			want: `spec.selector.matchLabel: unknown field, did you mean "matchLabels"?`,
		},
		{
			name: "bad enum",
			old:  "FAIL_CLOSE", new: "FAIL_CLOSED",
			want: `spec.failStrategy: "FAIL_CLOSED" is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`,
		},
		{
			name: "enum in the wrong case",
			old:  "phase: STATS", new: "phase: authn",
			want: `spec.phase: "authn" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS`,
		},
		{
			name: "enum as a number",
			old:  "phase: STATS", new: "phase: 1",
			want: `spec.phase: 1 is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS`,
		},
		{
			name: "priority as a string",
			old:  "priority: 0", new: "priority: high",
			want: `spec.priority: want an integer, got a string`,
		},
		{
			name: "null priority is unset, then a typo",
			old:  "priority: 0", new: "priority: null\n  failStrategyy: FAIL_OPEN",
			want: `spec.failStrategyy: unknown field, did you mean "failStrategy"?`,
		},
		{
			name: "priority out of range",
			old:  "priority: 0", new: "priority: 4294967296",
			want: `spec.priority: 4294967296 is out of the int32 range`,
		},
		{
			name: "pluginConfig as a string",
			old:  "  pluginConfig:\n    routes: []", new: `  pluginConfig: '{"routes": []}'`,
			want: `spec.pluginConfig: want an object, got a string`,
		},
		{
			name: "several errors",
			old:  "  phase: STATS", new: "  phase: LAST\n  urll: x",
			want: "spec.phase: \"LAST\" is not one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS\nspec.urll: unknown field, did you mean \"url\"?",
		},
		{
			name: "sha256 of the module instead of the manifest",
			old:  "sha256: " + manifestHex, new: "sha256: " + moduleHex,
			want: "spec.sha256: is the module's sha256, but for oci:// urls Istio checks the image manifest digest " + manifestHex,
		},
		{
			name: "manifest digest for an https url",
			old:  "url: oci://registry.example/wasmgate:v1", new: "url: https://example.com/wasmgate.wasm",
			want: "spec.sha256: is the image manifest digest, but for https:// urls Istio checks the module's sha256 " + moduleHex,
		},
		{
			name: "sha256 of something else",
			old:  "sha256: " + manifestHex, new: "sha256: " + strings.Repeat("ab", 32),
			want: "spec.sha256: " + strings.Repeat("ab", 32) + " is not the image manifest digest " + manifestHex,
		},
		{
			name: "sha256 that YAML reads as a number",
			old:  "sha256: " + manifestHex, new: "sha256: " + strings.Repeat("0", 64),
			want: "spec.sha256: want a string, got a number",
		},
		{
			name: "no sha256",
			old:  "  sha256: " + manifestHex + "\n", new: "",
			want: "spec.sha256: empty; pin the image manifest digest " + manifestHex,
		},
		{
			name: "sha256 with its algorithm prefix",
			old:  "sha256: " + manifestHex, new: "sha256: sha256:" + manifestHex,
			want: `spec.sha256: "sha256:` + manifestHex + `" is not 64 lower-case hex digits (no "sha256:" prefix)`,
		},
		{
			name: "selector and targetRefs",
			old:  "  url:", new: "  targetRefs:\n  - kind: Gateway\n    name: edge\n  url:",
			want: "spec: only one of selector, targetRef or targetRefs can be set",
		},
		{
			name: "no selector",
			old:  "  selector:\n    matchLabels:\n      istio: ingressgateway\n", new: "",
			want: "spec: no selector or targetRefs: the plugin would apply to every workload in the namespace",
		},
		{
			name: "targetRef without a name",
			old:  "  selector:\n    matchLabels:\n      istio: ingressgateway\n", new: "  targetRefs:\n  - kind: Gateway\n",
			want: "spec.targetRefs[0]: kind and name are required",
		},
		{
			name: "wildcard label",
			old:  "istio: ingressgateway", new: "istio: '*'",
			want: `spec.selector.matchLabels["istio"]: wildcard not allowed in label value match`,
		},
		{
			name: "bad url scheme",
			old:  "url: oci://", new: "url: docker://",
			want: `spec.url: scheme "docker" is not one of oci, file, http, https`,
		},
		{
			name: "url without scheme",
			old:  "url: oci://", new: "url: ",
			want: `spec.url: "registry.example/wasmgate:v1" has no scheme; write oci://registry.example/wasmgate:v1 for an image`,
		},
		{
			name: "no url",
			old:  "  url: oci://registry.example/wasmgate:v1\n", new: "",
			want: "spec.url: required",
		},
		{
			name: "env value from the host",
			old:  "  phase: STATS", new: "  phase: STATS\n  vmConfig:\n    env:\n    - name: POD_NAME\n      valueFrom: HOST\n      value: x",
			want: "spec.vmConfig.env[0]: value may only be set when valueFrom is INLINE",
		},
		{
			name: "wrong apiVersion",
			old:  "extensions.istio.io/v1alpha1", new: "extensions.istio.io/v1",
			want: `apiVersion: "extensions.istio.io/v1", want extensions.istio.io/v1alpha1`,
		},
		{
			name: "wrong kind",
			old:  "kind: WasmPlugin", new: "kind: EnvoyFilter",
			want: `kind: "EnvoyFilter", want WasmPlugin`,
		},
		{
			name: "no name",
			old:  "  name: wasmgate\n", new: "",
			want: "metadata.name: want a non-empty string",
		},
		{
			name: "status-like field at the top",
			old:  "kind: WasmPlugin", new: "kind: WasmPlugin\nspecs: {}",
			want: "specs: unknown field",
		},
	}
	base := strings.ReplaceAll(validManifest, "MANIFEST", manifestHex)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("the base manifest has no %q", tc.old)
			}
			manifest := strings.Replace(base, tc.old, tc.new, 1)
			wp, err := Validate([]byte(manifest))
			if err == nil {
				err = CheckDigest(wp, digest, wasm)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v\nwant    %s\nmanifest:\n%s", err, tc.want, manifest)
			}
		})
	}
}

// TestProtoErrorText pins the clean-up of protojson's errors, which Validate
// reports for anything its own field checks let through.
func TestProtoErrorText(t *testing.T) {
	var wp extensions.WasmPlugin
	err := protojson.Unmarshal([]byte(`{"url": 1}`), &wp)
	if err == nil {
		t.Fatal("protojson accepted a number for url")
	}
	if got, want := protoErrorText(err), "invalid value for string field url: 1"; got != want {
		t.Errorf("protoErrorText(%q) = %q, want %q", err, got, want)
	}
}
