package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocs_EveryField fails when a field of the declared schema, which is
// what the parser accepts, is missing from docs/policy.md.
func TestDocs_EveryField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{} // field → its path in the declaration
	walkDeclaration("policy", Declaration(), func(path string, s *Schema) {
		for _, f := range s.Fields {
			fields[f.Name] = path + "." + f.Name
		}
	})
	if len(fields) < 30 {
		t.Fatalf("found %d fields in the declaration; it changed shape", len(fields))
	}
	for field, where := range fields {
		// `field`, a segment of a dotted path such as `destination.host`,
		// or an alternative written as `{"field": value}`.
		documented := regexp.MustCompile("`([A-Za-z]+\\.)*" + regexp.QuoteMeta(field) + "(\\.[A-Za-z]+)*`|`\\{\"" + regexp.QuoteMeta(field) + "\":")
		if !documented.Match(doc) {
			t.Errorf("field %q (%s) is not documented in docs/policy.md", field, where)
		}
	}
}

// walkDeclaration calls visit for s and every schema under it, once each.
func walkDeclaration(path string, s *Schema, visit func(path string, s *Schema)) {
	seen := map[*Schema]bool{}
	var walk func(path string, s *Schema)
	walk = func(path string, s *Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		visit(path, s)
		for _, f := range s.Fields {
			walk(path+"."+f.Name, f.Value)
		}
		walk(path+"[]", s.Items)
		walk(path+"{key}", s.Keys)
		walk(path+"{}", s.Values)
		walk(path+"|", s.Alt)
	}
	walk(path, s)
}
