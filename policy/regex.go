//go:build !wasmgate_noregex

package policy

import "regexp"

// regex is a compiled regular expression (Go's RE2 engine). A module built
// with -tags wasmgate_noregex leaves the engine out (regex_none.go).
type regex = regexp.Regexp

// regexSupported reports whether policies may use regexes.
const regexSupported = true

func compileRegex(expr string) (*regex, error) { return regexp.Compile(expr) }
