package policy

import (
	"strings"
	"testing"
)

func TestRewrite_Apply(t *testing.T) {
	tests := []struct {
		name          string
		match         string // the route's uri StringMatch
		rewrite       string
		path          string
		wantPath      string
		wantAuthority string
	}{
		{name: "strip prefix to root", match: `{"prefix": "/products"}`, rewrite: `{"uri": "/"}`, path: "/products/123?x=1", wantPath: "/123?x=1"},
		{name: "prefix alone becomes root", match: `{"prefix": "/products"}`, rewrite: `{"uri": "/"}`, path: "/products", wantPath: "/"},
		{name: "prefix alone keeps query", match: `{"prefix": "/products"}`, rewrite: `{"uri": "/"}`, path: "/products?a=b", wantPath: "/?a=b"},
		{name: "prefix with trailing slash", match: `{"prefix": "/products"}`, rewrite: `{"uri": "/"}`, path: "/products/", wantPath: "/"},
		{name: "prefix to new prefix", match: `{"prefix": "/api"}`, rewrite: `{"uri": "/v2"}`, path: "/api/x", wantPath: "/v2/x"},
		{name: "new prefix with slash", match: `{"prefix": "/api"}`, rewrite: `{"uri": "/v2/"}`, path: "/api/x?q", wantPath: "/v2/x?q"},
		{name: "plain prefix keeps partial segment", match: `{"prefix": "/api"}`, rewrite: `{"uri": "/v2"}`, path: "/apix", wantPath: "/v2x"},
		{name: "path prefix", match: `{"pathPrefix": "/products/"}`, rewrite: `{"uri": "/"}`, path: "/products/1/2", wantPath: "/1/2"},
		{name: "root path prefix keeps path", match: `{"pathPrefix": "/"}`, rewrite: `{"uri": "/"}`, path: "/a", wantPath: ""},
		{name: "case-insensitive prefix length", match: `{"prefix": "/products"}, "ignoreUriCase": true`, rewrite: `{"uri": "/"}`, path: "/PRODUCTS/9", wantPath: "/9"},
		{name: "exact replaces whole path", match: `{"exact": "/old"}`, rewrite: `{"uri": "/new"}`, path: "/old?k=v", wantPath: "/new?k=v"},
		{name: "regex match replaces whole path", match: `{"regex": "/o.d"}`, rewrite: `{"uri": "/new"}`, path: "/old", wantPath: "/new"},
		{name: "regex rewrite with groups", match: `{"prefix": "/"}`, rewrite: `{"uriRegexRewrite": {"match": "^/svc/([^/]+)(/.*)$", "rewrite": "\\2/instance/\\1"}}`, path: "/svc/a/b?z", wantPath: "/b/instance/a?z"},
		{name: "regex rewrite without slash gets one", match: `{"prefix": "/"}`, rewrite: `{"uriRegexRewrite": {"match": "^/x", "rewrite": "y"}}`, path: "/x", wantPath: "/y"},
		{name: "regex rewrite no change", match: `{"prefix": "/"}`, rewrite: `{"uriRegexRewrite": {"match": "nothing", "rewrite": "/"}}`, path: "/x", wantPath: ""},
		{name: "empty query kept", match: `{"prefix": "/api"}`, rewrite: `{"uri": "/v2"}`, path: "/api/x?", wantPath: "/v2/x?"},
		{name: "empty query kept on exact", match: `{"exact": "/old"}`, rewrite: `{"uri": "/new"}`, path: "/old?", wantPath: "/new?"},
		{name: "empty query kept on regex rewrite", match: `{"prefix": "/"}`, rewrite: `{"uriRegexRewrite": {"match": "^/x", "rewrite": "/y"}}`, path: "/x?", wantPath: "/y?"},
		{name: "authority only", match: `{"prefix": "/"}`, rewrite: `{"authority": "backend.internal"}`, path: "/x", wantAuthority: "backend.internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"match": [{"uri": `+tc.match+`}], "rewrite": `+tc.rewrite+`}]}`)
			var d Decision
			p.Choose(&Request{Path: tc.path}, 0, &d)
			if d.Route == nil {
				t.Fatal("no route matched")
			}
			if d.Path != tc.wantPath || d.Authority != tc.wantAuthority {
				t.Fatalf("Path, Authority = %q, %q; want %q, %q", d.Path, d.Authority, tc.wantPath, tc.wantAuthority)
			}
			// Through a Plan, whose Decision builds the path in memory it
			// reuses: the same path, and no allocation for it (the regex
			// engine allocates its own result).
			var plan Plan
			env := newTestEnv()
			req := &Request{Path: tc.path}
			p.Decide(req, env, &plan)
			if plan.Path != tc.wantPath {
				t.Fatalf("Decide: Path = %q, want %q", plan.Path, tc.wantPath)
			}
			other := &Request{Path: tc.path + "&other=1"}
			if !strings.Contains(tc.path, "?") {
				other.Path = tc.path + "?other=1"
			}
			allocs := testing.AllocsPerRun(100, func() { p.Decide(other, env, &plan); p.Decide(req, env, &plan) })
			if plan.Path != tc.wantPath {
				t.Fatalf("Decide after another request: Path = %q, want %q", plan.Path, tc.wantPath)
			}
			if !strings.Contains(tc.rewrite, "uriRegexRewrite") && allocs != 0 {
				t.Errorf("Decide: %v allocations per two requests, want 0", allocs)
			}
		})
	}
}

func TestGoReplacement(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "groups", in: `\2/x/\1`, want: "${2}/x/${1}"},
		{name: "dollar is literal", in: `/$1`, want: "/$$1"},
		{name: "escaped backslash", in: `/a\\b`, want: `/a\b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := goReplacement(tc.in, 2)
			if err != "" || got != tc.want {
				t.Fatalf("goReplacement(%q) = %q, %q; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
