//go:build wasmgate_noregex

package policy

import "errors"

// regex stands in for Go's regexp in a module built without it: Parse
// refuses every regex before one could be compiled, so its methods never run.
type regex struct{}

// regexSupported reports whether policies may use regexes.
const regexSupported = false

func compileRegex(string) (*regex, error) { return nil, errNoRegex }

var errNoRegex = errors.New("this module is built without regex support (-tags wasmgate_noregex); use the standard module")

func (*regex) MatchString(string) bool               { return false }
func (*regex) ReplaceAllString(src, _ string) string { return src }
func (*regex) NumSubexp() int                        { return 0 }
