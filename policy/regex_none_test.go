//go:build wasmgate_noregex

package policy

import "testing"

// TestParse_NoRegex: a module built without regex support refuses each
// regex of a policy, naming where it is (go test -tags wasmgate_noregex
// -run NoRegex ./policy).
func TestParse_NoRegex(t *testing.T) {
	for _, tc := range []struct{ name, policy, want string }{
		{"uri regex", `{"routes": [{"match": [{"uri": {"regex": "/a.*"}}]}]}`,
			`routes[0].match[0].uri.regex: regex "/a.*": this module is built without regex support (-tags wasmgate_noregex); use the standard module`},
		{"regex rewrite", `{"routes": [{"rewrite": {"uriRegexRewrite": {"match": "^/a/(.*)", "rewrite": "/\\1"}}}]}`,
			`routes[0].rewrite.uriRegexRewrite.match: regex "^/a/(.*)": this module is built without regex support (-tags wasmgate_noregex); use the standard module`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.policy))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse error = %v, want %s", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(`{"routes": [{"match": [{"uri": {"prefix": "/a"}}]}]}`)); err != nil {
		t.Errorf("a policy without regexes: %v", err)
	}
}
