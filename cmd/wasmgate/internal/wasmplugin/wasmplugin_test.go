package wasmplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	extensions "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

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
		name    string
		opts    Options
		url     string
		labels  map[string]string
		targets int
		phase   string
		kinds   []string
	}{
		{
			name:   "defaults",
			opts:   Options{Image: "registry.example/wasmgate:v1", Digest: digest},
			url:    "oci://registry.example/wasmgate:v1",
			labels: map[string]string{"istio": "ingressgateway"},
			phase:  "STATS",
			kinds:  []string{"WasmPlugin", "VirtualService"},
		},
		{
			name: "digest reference and a new gateway",
			opts: Options{
				Image:      "oci://registry.example/wasmgate@" + digest,
				Selector:   map[string]string{"app": "edge"},
				Phase:      "AUTHN",
				NewGateway: true,
			},
			url:    "oci://registry.example/wasmgate@" + digest,
			labels: map[string]string{"app": "edge"},
			phase:  "AUTHN",
			kinds:  []string{"WasmPlugin", "Gateway", "VirtualService"},
		},
		{
			name: "targetRefs and a pull secret",
			opts: Options{
				Image: "registry.example/wasmgate:v1", Digest: digest,
				TargetRefs:      []TargetRef{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "edge"}},
				ImagePullSecret: "registry-creds",
			},
			url:     "oci://registry.example/wasmgate:v1",
			targets: 1,
			phase:   "STATS",
			kinds:   []string{"WasmPlugin", "VirtualService"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Render(pol, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind)
			}
			if !reflect.DeepEqual(kinds, tc.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tc.kinds)
			}
			out, err := objs.YAML()
			if err != nil {
				t.Fatal(err)
			}
			plugins, err := ValidateObjects(out)
			if err != nil {
				t.Fatalf("ValidateObjects: %v\n%s", err, out)
			}
			one, err := json.Marshal(objs[0])
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := Validate(one)
			if err != nil {
				t.Fatalf("Validate(JSON): %v", err)
			}
			for format, wp := range map[string]*extensions.WasmPlugin{"yaml": plugins[0], "json": fromJSON} {
				if err := CheckDigest(wp, digest, wasm); err != nil {
					t.Errorf("%s: CheckDigest: %v", format, err)
				}
				if wp.Url != tc.url || wp.Sha256 != hexDigest || wp.PluginName != "wasmgate" ||
					wp.Phase.String() != tc.phase || wp.FailStrategy.String() != "FAIL_CLOSE" ||
					wp.ImagePullPolicy.String() != "IfNotPresent" || wp.GetPriority().GetValue() != 0 ||
					wp.ImagePullSecret != tc.opts.ImagePullSecret || len(wp.TargetRefs) != tc.targets {
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
			}
		})
	}
}

// TestRender_VirtualService checks the routing rendered for a policy with
// two routes (one split by subset, one single destination), a route without
// destinations, and a fallback service.
func TestRender_VirtualService(t *testing.T) {
	_, digest := testImage(t)
	pol := []byte(`{"routes": [
	  {"name": "reviews", "match": [{"uri": {"prefix": "/reviews"}}],
	   "route": [{"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v1", "port": {"number": 9080}}, "weight": 90},
	             {"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v2", "port": {"number": 9080}}, "weight": 10}]},
	  {"name": "limited", "match": [{"uri": {"prefix": "/login"}}],
	   "rateLimit": {"tokenBucket": {"maxTokens": 5, "tokensPerFill": 1, "fillInterval": "1s"}}},
	  {"name": "ratings", "match": [{"uri": {"prefix": "/ratings"}}],
	   "route": [{"destination": {"host": "ratings.prod.svc.cluster.local", "port": 9080}}],
	   "split": {"hintHeader": "x-route-to"}}]}`)
	objs, err := Render(pol, Options{Image: "registry.example/wasmgate:v1", Digest: digest, Gateway: "edge/public", Hosts: []string{"shop.example.com"}, Fallback: "web.prod.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Objects{objs[1]}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "virtualservice.yaml"), got)
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (-update rewrites it); got:\n%s", file, got)
	}
}

// TestRender_KubernetesReadsThePolicy renders a policy whose header names
// and values look like other types to YAML 1.1 and reads the result back as
// kubectl does (sigs.k8s.io/yaml): pluginConfig must be exactly the policy.
func TestRender_KubernetesReadsThePolicy(t *testing.T) {
	_, digest := testImage(t)
	values := []string{"on", "off", "yes", "no", "y", "n", "Y", "ON", "true", "null", "~", "0x1F", "010", "1e3", "0o17", "1_000", ".5", "-.inf", ".NaN", "12:30", "2026-01-02", " x"}
	set := map[string]string{}
	for i, v := range values {
		set["x-v"+strconv.Itoa(i)] = v
	}
	for _, name := range []string{"on", "off", "yes", "no", "y", "n", "true", "null"} {
		set[name] = name
	}
	setJSON, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	pol := []byte(`{"routes": [{"name": "yes", "match": [{"headers": {"on": {"exact": "off"}}}], "headers": {"request": {"set": ` + string(setJSON) + `}}, "route": [{"destination": {"host": "y", "port": {"number": 8080}}, "hint": "no"}], "split": {"hintHeader": "n"}}]}`)
	if _, err := policy.Parse(pol); err != nil {
		t.Fatal(err)
	}
	objs, err := Render(pol, Options{Image: "registry.example/wasmgate:v1", Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	out, err := objs.YAML()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := SplitDocuments(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, doc := range docs {
		back, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(objs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, back, want) {
			t.Errorf("%s reads back as\n%s\nwant %s\nYAML:\n%s", objs[i].Kind, back, want, doc)
		}
	}
}

// TestRender_Deploy checks that the shipped example is what Render makes
// today from deploy/policy.json, but for the manifest digest: the file
// carries a placeholder there, so a new build of the plugin changes nothing.
func TestRender_Deploy(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "istio.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The shipped file pins no build: its digest is the placeholder, 64
	// zeros, and its comment header says so.
	placeholder := strings.Repeat("0", 64)
	header, _, _ := strings.Cut(string(shipped), "\napiVersion:")
	if !strings.Contains(header, "PLACEHOLDER, 64 zeros") {
		t.Errorf("deploy/istio.yaml's comment header does not say its sha256 is a placeholder:\n%s", header)
	}
	if n := strings.Count(string(shipped), "sha256: \""+placeholder+"\"\n"); n != 1 {
		t.Errorf("deploy/istio.yaml has %d placeholder digests (sha256: \"%s\"), want 1", n, placeholder)
	}
	if _, err := ValidateObjects(shipped); err != nil {
		t.Errorf("deploy/istio.yaml: %v", err)
	}
	// Everything else is what Render gives for any image.
	_, digest := testImage(t)
	objs, err := Render(seedPolicy(t), Options{
		// As the Makefile's deploy/istio.yaml target renders it.
		Image: "registry.example.com/wasmgate:0.1.0", Digest: digest, NewGateway: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := objs.YAML()
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	if n := bytes.Count(out, []byte(hex)); n != 1 {
		t.Fatalf("Render wrote the digest %d times, want once:\n%s", n, out)
	}
	out = bytes.Replace(out, []byte("sha256: "+hex+"\n"), []byte("sha256: \""+placeholder+"\"\n"), 1)
	// The example starts with comments saying how it was made.
	if !bytes.HasSuffix(shipped, out) {
		t.Errorf("deploy/istio.yaml is not what Render gives (but the digest): run `make deploy/istio.yaml`; Render gives:\n%s", out)
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
			want: `WasmPlugin wasmgate: spec.failStrategy: "FAIL_CLOSED" is not one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`,
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
    routes:
    - route:
      - destination:
          host: product-service
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
			old:  "  pluginConfig:\n    routes:\n    - route:\n      - destination:\n          host: product-service\n", new: "  pluginConfig: '{}'\n",
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
			want: `spec.sha256: Invalid value: "sha256:` + manifestHex + `": spec.sha256 in body should match '(^$|^[a-f0-9]{64}$)'`,
		},
		{
			name: "selector and targetRefs",
			old:  "  url:", new: "  targetRefs:\n  - kind: Gateway\n    name: edge\n  url:",
			want: "spec: Invalid value: only one of targetRefs or selector can be set",
		},
		{
			name: "no selector",
			old:  "  selector:\n    matchLabels:\n      istio: ingressgateway\n", new: "",
			want: "spec: no selector or targetRefs: the plugin would apply to every workload in the namespace",
		},
		{
			name: "targetRef without a name",
			old:  "  selector:\n    matchLabels:\n      istio: ingressgateway\n", new: "  targetRefs:\n  - kind: Gateway\n",
			want: "spec.targetRefs[0].name: Required value",
		},
		{
			name: "wildcard label",
			old:  "istio: ingressgateway", new: "istio: '*'",
			want: `spec.selector.matchLabels[istio]: Invalid value: "*": wildcard not allowed in label value match`,
		},
		{
			name: "bad url scheme",
			old:  "url: oci://", new: "url: docker://",
			want: `spec.url: Invalid value: "docker://registry.example/wasmgate:v1": url must have schema one of [http, https, file, oci]`,
		},
		{
			name: "url without scheme",
			old:  "url: oci://", new: "url: ",
			want: `spec.url: "registry.example/wasmgate:v1" has no scheme; write oci://registry.example/wasmgate:v1 for an image`,
		},
		{
			name: "no url",
			old:  "  url: oci://registry.example/wasmgate:v1\n", new: "",
			want: "spec.url: Required value",
		},
		{
			name: "env value from the host",
			old:  "  phase: STATS", new: "  phase: STATS\n  vmConfig:\n    env:\n    - name: POD_NAME\n      valueFrom: HOST\n      value: x",
			want: "spec.vmConfig.env[0]: Invalid value: value may only be set when valueFrom is INLINE",
		},
		{
			name: "env value from the host, empty",
			old:  "  phase: STATS", new: "  phase: STATS\n  vmConfig:\n    env:\n    - name: POD_NAME\n      valueFrom: HOST\n      value: ''",
			want: "spec.vmConfig.env[0]: Invalid value: value may only be set when valueFrom is INLINE",
		},
		{
			name: "duplicate env names",
			old:  "  phase: STATS", new: "  phase: STATS\n  vmConfig:\n    env:\n    - name: A\n      value: x\n    - name: A\n      value: x2",
			want: `spec.vmConfig.env[1]: Duplicate value: {"name":"A"}`,
		},
		{
			name: "port 0",
			old:  "  phase: STATS", new: "  phase: STATS\n  match:\n  - ports:\n    - number: 0",
			want: "spec.match[0].ports[0].number: Invalid value: 0: spec.match[0].ports[0].number in body should be greater than or equal to 1",
		},
		{
			name: "duplicate ports",
			old:  "  phase: STATS", new: "  phase: STATS\n  match:\n  - ports:\n    - number: 80\n    - number: 80",
			want: `spec.match[0].ports[1]: Duplicate value: {"number":80}`,
		},
		{
			name: "empty pluginName",
			old:  "pluginName: wasmgate", new: "pluginName: ''",
			want: `spec.pluginName: Invalid value: "": spec.pluginName in body should be at least 1 chars long`,
		},
		{
			name: "empty imagePullSecret",
			old:  "  phase: STATS", new: "  phase: STATS\n  imagePullSecret: ''",
			want: `spec.imagePullSecret: Invalid value: "": spec.imagePullSecret in body should be at least 1 chars long`,
		},
		{
			name: "targetRef kind pattern",
			old:  "  selector:\n    matchLabels:\n      istio: ingressgateway\n", new: "  targetRefs:\n  - kind: gate way\n    group: gateway.networking.k8s.io\n    name: edge\n",
			want: `spec.targetRefs[0].kind: Invalid value: "gate way": spec.targetRefs[0].kind in body should match '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$'`,
		},
		{
			name: "empty selector",
			old:  "    matchLabels:\n      istio: ingressgateway\n", new: "    matchLabels: {}\n",
			want: "spec.selector: no matchLabels: the plugin would apply to every workload in the namespace",
		},
		{
			name: "pluginConfig an invalid policy",
			old:  "host: product-service", new: "host: product-service\n        weight: -1",
			want: "spec.pluginConfig: routes[0].route[0].weight: must be an integer from 0 to 2147483647, got -1",
		},
		{
			name: "bad name",
			old:  "  name: wasmgate\n", new: "  name: Bad_Name\n",
			want: `metadata.name: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
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
	if got, want := ProtoErrorText(err), "invalid value for string field url: 1"; got != want {
		t.Errorf("ProtoErrorText(%q) = %q, want %q", err, got, want)
	}
}

func TestValidateObjects_Errors(t *testing.T) {
	vs := string(mustRead(t, filepath.Join("testdata", "virtualservice.yaml")))
	tests := []struct {
		name     string
		old, new string // one edit of testdata/virtualservice.yaml
		want     string
	}{
		{
			name: "unknown field",
			old:  "    name: reviews-0\n", new: "    name: reviews-0\n    retries: 3\n",
			want: "VirtualService wasmgate: spec.http[0].retries: Invalid value: \"integer\": spec.http[0].retries in body must be of type object: \"integer\"",
		},
		{
			name: "misspelt field",
			old:  "  gateways:", new: "  gateway:",
			want: "VirtualService wasmgate: spec.gateway: unknown field",
		},
		{
			name: "CEL rule",
			old:  "    name: reviews-0\n", new: "    name: reviews-0\n    timeout: 0s\n",
			want: `VirtualService wasmgate: spec.http[0].timeout: Invalid value: "0s": must be a valid duration greater than 1ms`,
		},
		{
			name: "unknown kind",
			old:  "kind: VirtualService", new: "kind: DestinationRule",
			want: `DestinationRule wasmgate: kind "DestinationRule": want WasmPlugin, VirtualService or Gateway`,
		},
		{
			name: "bad name",
			old:  "  name: wasmgate\n", new: "  name: wasm_gate\n",
			want: `VirtualService wasm_gate: metadata.name: "wasm_gate": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(vs, tc.old) {
				t.Fatalf("testdata/virtualservice.yaml has no %q", tc.old)
			}
			_, err := ValidateObjects([]byte(strings.Replace(vs, tc.old, tc.new, 1)))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v\nwant    %s", err, tc.want)
			}
		})
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
