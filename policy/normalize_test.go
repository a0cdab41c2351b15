package policy

import (
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/products/1", "/products/1"},
		{"/products/1?a=//b/./c", "/products/1?a=//b/./c"},
		{"//products/1", "/products/1"},
		{"/products//1", "/products/1"},
		{"/products///1/", "/products/1/"},
		{"/products/./1", "/products/1"},
		{"/products/1/.", "/products/1/"},
		{"/products/x/../1", "/products/1"},
		{"/../../products/1", "/products/1"},
		{"/products/..", "/"},
		{"/%70roducts/1", "/products/1"},
		{"/%2e%2E/products/%2e/1", "/products/1"},
		{"/products%2F1", "/products%2F1"},
		{"/products%5c1", "/products%5c1"},
		{"/a%20b", "/a%20b"},
		{"/a%7", "/a%7"},
		{"/a%zz", "/a%zz"},
		{"/%%370roducts/1", "/products/1"},
		{"/.well-known/x", "/.well-known/x"},
		{"/...", "/..."},
		{"//?q", "/?q"},
		{"/", "/"},
		{"*", "*"},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := normalizePath(tc.in); got != tc.want {
				t.Errorf("normalizePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizePath_Allocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { normalizePath("/products/123/a.b/%20?x=//y") })
	if allocs != 0 {
		t.Errorf("allocs for a path in normal form = %v, want 0", allocs)
	}
}

// TestPolicy_Decide_PathSpellings: every spelling of /products/1 gets the
// route, the rewrite and the limit that /products/1 gets; one whose
// normal form no route takes is still forwarded in normal form.
func TestPolicy_Decide_PathSpellings(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "products", "match": [{"uri": {"prefix": "/products"}}],
	  "rewrite": {"uri": "/"},
	  "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1h"}}}]}`)
	env := newTestEnv()
	var plan Plan
	spellings := []string{"/products/1", "//products/1", "/products//1", "/products/./1", "/%70roducts/1", "/x/../products/1"}
	for i, path := range spellings {
		t.Run(path, func(t *testing.T) {
			p.Decide(&Request{Path: path}, env, &plan)
			if plan.Route == nil || plan.Route.Name != "products" {
				t.Fatalf("route %v, want products", plan.Route)
			}
			if plan.Path != "/1" {
				t.Errorf("rewritten to %q, want /1", plan.Path)
			}
			if got := forwardedPath(plan.Request); got != "/1" {
				t.Errorf("forwarded :path %q, want /1 (edits %s)", got, editList(plan.Request))
			}
			if !plan.RouteChanged {
				t.Error("RouteChanged is false")
			}
			// One bucket of 5 for all spellings.
			if want := i < 5; plan.Reply == nil != want {
				t.Errorf("request %d admitted = %v, want %v", i+1, plan.Reply == nil, want)
			}
		})
	}
	t.Run("unmatched", func(t *testing.T) {
		p.Decide(&Request{Path: "/orders//1/./x?q=/./"}, env, &plan)
		if plan.Route != nil {
			t.Fatalf("route %v, want none", plan.Route.Name)
		}
		if got, want := editList(plan.Request), "set :path=/orders/1/x?q=/./; "; got != want {
			t.Errorf("edits %s, want %s", got, want)
		}
	})
}

// forwardedPath is the :path the last :path edit sets.
func forwardedPath(edits []Edit) string {
	path := ""
	for _, e := range edits {
		if e.Name == ":path" {
			path = e.Value
		}
	}
	return path
}

// FuzzNormalizePath: the normal form is a fixed point, keeps the query,
// and has no "//", "." or ".." segment.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/products/1", "//a/./b/../c?x=1", "/%2e%2e/%70", "/a%2F/b//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := normalizePath(in)
		if again := normalizePath(out); again != out {
			t.Fatalf("normalizePath(%q) = %q, but normalizePath of that is %q", in, out, again)
		}
		if !strings.HasPrefix(in, "/") {
			if out != in {
				t.Fatalf("normalizePath(%q) = %q, want it unchanged", in, out)
			}
			return
		}
		_, inQuery, _ := strings.Cut(in, "?")
		path, outQuery, _ := strings.Cut(out, "?")
		if inQuery != outQuery {
			t.Fatalf("normalizePath(%q) = %q: query changed", in, out)
		}
		if !normalForm(path) {
			t.Fatalf("normalizePath(%q) = %q, not in normal form", in, out)
		}
	})
}
