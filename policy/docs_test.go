package policy

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocs_EveryField fails when a field the parser accepts is missing from
// docs/policy.md: the parser's field lists are the string arguments of its
// object calls, read from the source.
func TestDocs_EveryField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	fields := map[string]string{} // field → where the parser accepts it
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "object" || len(call.Args) < 3 {
				return true
			}
			for _, arg := range call.Args[2:] {
				if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					field, _ := strconv.Unquote(lit.Value)
					fields[field] = fset.Position(lit.Pos()).String()
				}
			}
			return true
		})
	}
	if len(fields) < 30 {
		t.Fatalf("found %d fields in the parser's object calls; the source changed shape", len(fields))
	}
	for field, where := range fields {
		// `field`, or a segment of a dotted path such as `destination.host`.
		documented := regexp.MustCompile("`([A-Za-z]+\\.)*" + regexp.QuoteMeta(field) + "(\\.[A-Za-z]+)*`")
		if !documented.Match(doc) {
			t.Errorf("field %q (%s) is not documented in docs/policy.md", field, where)
		}
	}
}
