package policyfile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wasmgate/wasmgate/policy"
)

// parserOnly are the invalid policies of policy/testdata/invalid that the JSON
// Schema accepts, each with the rule JSON Schema cannot state. Only the
// parser refuses them.
var parserOnly = map[string]string{
	"bad-regex":                   "a regex compiles in RE2",
	"default-name-collides":       "route names are unique, default names included",
	"duplicate-field":             "a field appears once in an object (validators keep the last one)",
	"duplicate-hint":              "hints are unique within a route",
	"subset-duplicate-hint":       "hints are unique within a route, default hints (host|subset) included",
	"duplicate-names":             "route names are unique",
	"duplicate-set":               "a header is set once, compared case-insensitively",
	"overflow":                    "maxTokens × fillInterval fits in 63 bits of nanoseconds",
	"regex-rewrite-missing-group": "a replacement's \\N names a group the regex has",
	"tokensperfill-too-big":       "tokensPerFill is at most maxTokens",
	"weights-zero":                "weights sum to more than 0",
	"timeout-small":               "a route-table duration is at least 1ms",
	"cors-max-age":                "corsPolicy.maxAge is whole seconds",
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := json.Marshal(policy.JSONSchema())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.json")
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// corpus reads policy/testdata/<dir>/*.json by name.
func corpus(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	root := filepath.Join("..", "..", "..", "..", "policy", "testdata", dir)
	entries, err := os.ReadDir(root)
	out := map[string][]byte{}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if out[name], err = os.ReadFile(filepath.Join(root, e.Name())); err != nil {
				break
			}
		}
	}
	if err != nil || len(out) == 0 {
		t.Fatalf("no policies in policy/testdata/%s: %v", dir, err)
	}
	return out
}

// TestSchema_AgreesWithParser runs the parser's corpora through the parser and
// through a standard JSON Schema validator reading policy.JSONSchema: both
// accept every valid policy, and the schema refuses every invalid one except
// those parserOnly lists with the rule it cannot state.
func TestSchema_AgreesWithParser(t *testing.T) {
	s := compileSchema(t)
	validate := func(t *testing.T, data []byte) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return err
		}
		return s.Validate(inst)
	}
	for name, data := range corpus(t, "valid") {
		t.Run("valid/"+name, func(t *testing.T) {
			if _, err := policy.Parse(data); err != nil {
				t.Fatalf("parser: %v", err)
			}
			if err := validate(t, data); err != nil {
				t.Fatalf("schema: %v", err)
			}
		})
	}
	var accepted []string
	for name, data := range corpus(t, "invalid") {
		t.Run("invalid/"+name, func(t *testing.T) {
			if _, err := policy.Parse(data); err == nil {
				t.Fatal("parser accepts it")
			}
			err := validate(t, data)
			reason, listed := parserOnly[name]
			switch {
			case err == nil && !listed:
				accepted = append(accepted, name)
				t.Errorf("schema accepts it; parser: %v", mustFail(data))
			case err != nil && listed:
				t.Errorf("schema refuses it, but parserOnly says it cannot (%s): remove it from parserOnly", reason)
			}
		})
	}
	sort.Strings(accepted)
	if len(accepted) > 0 {
		t.Logf("schema accepts: %q", accepted)
	}
}

func mustFail(data []byte) error {
	_, err := policy.Parse(data)
	return err
}
