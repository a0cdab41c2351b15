package wasmplugin

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/policy"
)

// testHintKey is the hintKey of the golden files.
const testHintKey = "golden-hint-key-0123456789"

// exampleHintKey is the placeholder hintKey of deploy/istio.yaml, as the
// Makefile renders it.
const exampleHintKey = "REPLACE-this-example-hint-key"

var generatedKey = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)

// withoutHintKey returns a pluginConfig without its hintKey, after checking
// that it has a generated one.
func withoutHintKey(t *testing.T, config []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(config, &m); err != nil {
		t.Fatal(err)
	}
	if key, _ := m["hintKey"].(string); !generatedKey.MatchString(key) {
		t.Errorf("pluginConfig hintKey = %q, want 32 random characters", key)
	}
	delete(m, "hintKey")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderedKey returns the hintKey of the rendered WasmPlugin, and checks
// that every hint rule of the VirtualService requires it and removes it,
// and that the fallback does neither.
func renderedKey(t *testing.T, objs Objects) string {
	t.Helper()
	pol, err := policy.Parse(objs[0].Spec.(Spec).PluginConfig)
	if err != nil {
		t.Fatal(err)
	}
	key := pol.HintKey()
	vs := objs[len(objs)-1].Spec.(vsSpec)
	for _, r := range vs.HTTP {
		if r.Name == FallbackRoute {
			if r.Match != nil || r.Headers != nil {
				t.Errorf("fallback %+v: want no match and no header edit", r)
			}
			continue
		}
		if got := r.Match[0].Headers[policy.KeyHeader].Exact; got != key {
			t.Errorf("rule %s requires %s %q, want %q", r.Name, policy.KeyHeader, got, key)
		}
		if r.Headers == nil || strings.Join(r.Headers.Request.Remove, ",") != policy.KeyHeader {
			t.Errorf("rule %s headers = %+v, want the key removed", r.Name, r.Headers)
		}
	}
	return key
}

// TestRender_HintKey checks that each render without a key gets its own,
// that a given key or the policy's own is used as is, and that every hint
// rule requires it.
func TestRender_HintKey(t *testing.T) {
	_, digest := testImage(t)
	o := Options{Image: "registry.example/wasmgate:v1", Digest: digest}
	render := func(pol []byte, o Options) string {
		t.Helper()
		objs, err := Render(pol, o)
		if err != nil {
			t.Fatal(err)
		}
		return renderedKey(t, objs)
	}
	first, second := render(seedPolicy(t), o), render(seedPolicy(t), o)
	if !generatedKey.MatchString(first) || first == second {
		t.Errorf("generated keys %q and %q: want two distinct random ones", first, second)
	}
	o.HintKey = testHintKey
	if got := render(seedPolicy(t), o); got != testHintKey {
		t.Errorf("with -hint-key: key %q, want %q", got, testHintKey)
	}
	const own = "the-policys-own-key-42"
	withOwn := []byte(`{"hintKey": "` + own + `", "routes": [{"route": [{"destination": {"host": "a"}}]}]}`)
	o.HintKey = ""
	if got := render(withOwn, o); got != own {
		t.Errorf("policy's key: %q, want %q", got, own)
	}
	o.HintKey = testHintKey
	if _, err := Render(withOwn, o); err == nil || err.Error() != "hint key: the policy has its own hintKey" {
		t.Errorf("two keys: error %v", err)
	}
	o.HintKey = "short"
	if _, err := Render(seedPolicy(t), o); err == nil || !strings.Contains(err.Error(), "hintKey: must be 16 to 256") {
		t.Errorf("a short key: error %v", err)
	}
}
