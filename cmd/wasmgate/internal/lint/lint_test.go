package lint

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string
	}{
		{name: "clean", policy: `{"routes": [{"match": [{"uri": {"pathPrefix": "/products"}}]}, {"match": [{"uri": {"prefix": "/api/"}}]}]}`},
		{name: "invalid: the parser's errors", policy: `{"routes": [{"name": "a b"}, {"rewrite": {"uri": "x"}}]}`, want: []string{
			`routes[0].name: "a b" is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
			`routes[1].rewrite.uri: "x" must start with "/"`,
		}},
		{name: "literal $1", policy: `{"routes": [{"rewrite": {"uriRegexRewrite": {"match": "^/a/(.*)$", "rewrite": "/b/$1"}}}, {"match": [{"uri": {"exact": "/x"}}], "rewrite": {"uri": "/y/${1}"}}]}`, want: []string{
			`routes[0].rewrite.uriRegexRewrite.rewrite: warning: "/b/$1": "$1" is literal text; write \1 for the first group`,
			`routes[1]: warning: never matches: routes[0] ("route-0") comes first and matches every request it would`,
			`routes[1].rewrite.uri: warning: "/y/${1}": "$" is literal text here; use "uriRegexRewrite" to insert regex groups`,
		}},
		{name: "bare prefix", policy: `{"routes": [{"match": [{"uri": {"prefix": "/products"}}, {"uri": {"prefix": "/"}}]}]}`, want: []string{
			`routes[0].match[0].uri.prefix: warning: "/products" also matches "/productsX"; use "pathPrefix" for whole path segments, or end the prefix with "/"`,
		}},
		{name: "weights", policy: `{"routes": [{"route": [{"destination": {"host": "a"}, "weight": 90}, {"destination": {"host": "b"}, "weight": 5}]}]}`, want: []string{
			`routes[0].route: warning: weights sum to 95, not 100; each destination gets weight/95 of the requests`,
		}},
		{name: "unreachable destination", policy: `{"routes": [{"route": [{"destination": {"host": "a"}, "weight": 100}, {"destination": {"host": "b"}, "weight": 0}]},
		  {"match": [{"uri": {"exact": "/o"}}], "route": [{"destination": {"host": "a"}, "weight": 100}, {"destination": {"host": "b"}, "weight": 0}], "split": {"overrideHeader": "x-o"}}]}`, want: []string{
			`routes[0].route[1]: warning: weight 0 and no "split.overrideHeader": no request reaches "b"`,
			`routes[1]: warning: never matches: routes[0] ("route-0") comes first and matches every request it would; its destinations are unreachable`,
		}},
		{name: "client address key", policy: `{"routes": [{"rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1s"}, "key": {"clientAddress": true}}}]}`, want: []string{
			`routes[0].rateLimit.key.clientAddress: warning: clients behind one NAT or proxy share an address and one budget, and an IPv6 client can change address at will; prefer a header a trusted proxy sets, such as an authenticated user id`,
		}},
		{name: "descriptor a client escapes by omitting its header", policy: `{"routes": [{"globalRateLimit": {"domain": "d", "cluster": "rl", "rateLimits": [
		  {"actions": [{"requestHeaders": {"headerName": "X-User", "descriptorKey": "user"}}, {"requestHeaders": {"headerName": ":path", "descriptorKey": "path"}}]},
		  {"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user", "defaultValue": "anonymous"}}]},
		  {"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user", "skipIfAbsent": true}}]}]}}]}`, want: []string{
			`routes[0].globalRateLimit.rateLimits[0].actions[0].requestHeaders: warning: a client that omits x-user is never counted by this descriptor; add "defaultValue" or "skipIfAbsent"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range Lint([]byte(tc.policy)) {
				got = append(got, f.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestCovers lists which earlier route shadows which later one.
func TestCovers(t *testing.T) {
	p := func(s string) *string { return &s }
	uri := func(m stringMatch) route { return route{Match: []matchBlock{{URI: &m}}} }
	tests := []struct {
		name  string
		a, b  route
		wants bool
	}{
		{"match-all covers all", route{}, uri(stringMatch{Exact: p("/a")}), true},
		{"nothing covers match-all", uri(stringMatch{Prefix: p("/")}), route{}, false},
		{"prefix covers longer prefix", uri(stringMatch{Prefix: p("/a")}), uri(stringMatch{Prefix: p("/ab")}), true},
		{"prefix covers exact", uri(stringMatch{Prefix: p("/a")}), uri(stringMatch{Exact: p("/a/b")}), true},
		{"prefix does not cover shorter", uri(stringMatch{Prefix: p("/ab")}), uri(stringMatch{Prefix: p("/a")}), false},
		{"pathPrefix covers deeper pathPrefix", uri(stringMatch{PathPrefix: p("/a/")}), uri(stringMatch{PathPrefix: p("/a/b")}), true},
		{"pathPrefix does not cover sibling", uri(stringMatch{PathPrefix: p("/a")}), uri(stringMatch{PathPrefix: p("/ab")}), false},
		{"pathPrefix covers prefix with slash", uri(stringMatch{PathPrefix: p("/a")}), uri(stringMatch{Prefix: p("/a/")}), true},
		{"pathPrefix does not cover bare prefix", uri(stringMatch{PathPrefix: p("/a")}), uri(stringMatch{Prefix: p("/a")}), false},
		{"regex only covers itself", uri(stringMatch{Regex: p("/a.*")}), uri(stringMatch{Exact: p("/a")}), false},
		{"same regex", uri(stringMatch{Regex: p("/a.*")}), uri(stringMatch{Regex: p("/a.*")}), true},
		{"extra header condition narrows a", route{Match: []matchBlock{{Headers: map[string]stringMatch{"x": {Present: true}}}}}, route{}, false},
		{"header present covered by header exact",
			route{Match: []matchBlock{{Headers: map[string]stringMatch{"X-A": {Present: true}}}}},
			route{Match: []matchBlock{{Headers: map[string]stringMatch{"x-a": {Exact: p("1")}}}}}, true},
		{"case-insensitive b escapes case-sensitive a",
			uri(stringMatch{Prefix: p("/a")}),
			route{Match: []matchBlock{{URI: &stringMatch{Prefix: p("/a")}, IgnoreURICase: true}}}, false},
		{"every block of b must be covered",
			uri(stringMatch{Prefix: p("/a")}),
			route{Match: []matchBlock{{URI: &stringMatch{Prefix: p("/a")}}, {URI: &stringMatch{Prefix: p("/b")}}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := covers(&tc.a, &tc.b); got != tc.wants {
				t.Fatalf("covers = %v, want %v", got, tc.wants)
			}
		})
	}
}
