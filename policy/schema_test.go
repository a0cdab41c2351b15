package policy

import (
	"slices"
	"testing"
)

// TestDeclaration_Defs checks what JSONSchema relies on: a definition name
// belongs to one schema, and every declared value has a kind.
func TestDeclaration_Defs(t *testing.T) {
	byDef := map[string]*Schema{}
	walkDeclaration("policy", Declaration(), func(path string, s *Schema) {
		if s.Kind == 0 {
			t.Errorf("%s: no Kind", path)
		}
		if s.Def == "" {
			return
		}
		if prev, ok := byDef[s.Def]; ok && prev != s {
			t.Errorf("%s: definition name %q is used by two schemas", path, s.Def)
		}
		byDef[s.Def] = s
	})
}

// TestDeclaration_Enums keeps the declared enums in the order of the
// constants the parser maps them to.
func TestDeclaration_Enums(t *testing.T) {
	if !slices.Equal(fieldsModes, []string{FieldsIETF: "ietf", FieldsNone: "none", FieldsLegacy: "legacy", FieldsBoth: "both"}) {
		t.Errorf("fieldsModes = %q", fieldsModes)
	}
	if !slices.Equal(contentionPolicies, []string{ContentionAllow: "allow", ContentionDeny: "deny"}) {
		t.Errorf("contentionPolicies = %q", contentionPolicies)
	}
	if !slices.Equal(failureModes, []string{FailureAllow: "allow", FailureDeny: "deny"}) {
		t.Errorf("failureModes = %q", failureModes)
	}
}
