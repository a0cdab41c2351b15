// Package lint finds what is valid but probably not meant in a policy: the
// warnings of `wasmgate lint`. Errors are the policy parser's.
package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wasmgate/wasmgate/policy"
)

// Finding is one problem, located by its JSON path.
type Finding struct {
	Path string
	Msg  string
	// Warning is false for errors: the plugin refuses the policy.
	Warning bool
}

func (f Finding) String() string {
	if f.Warning {
		return f.Path + ": warning: " + f.Msg
	}
	return f.Path + ": " + f.Msg
}

// Lint returns the parser's errors when the policy (JSON) is invalid, else
// its warnings.
func Lint(policyJSON []byte) []Finding {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
		var errs policy.Errors
		if !errors.As(err, &errs) {
			return []Finding{{Path: "policy", Msg: err.Error()}}
		}
		out := make([]Finding, len(errs))
		for i, e := range errs {
			out[i] = Finding{Path: e.Path, Msg: e.Msg}
		}
		return out
	}
	var d document
	if err := json.Unmarshal(policyJSON, &d); err != nil {
		// The parser accepted it, so this is a bug here, not in the policy.
		return []Finding{{Path: "policy", Msg: "lint could not read it: " + err.Error()}}
	}
	var w warnings
	for i := range pol.Routes() {
		w.route(&d, pol.Routes(), i)
	}
	return w
}

// The policy's matches and rewrites as written (the compiled policy folds
// and anchors them); Parse has checked types and fields already. Everything
// else lint reads from the compiled policy.
type document struct {
	Routes []route `json:"routes"`
}

type route struct {
	Match   []matchBlock `json:"match"`
	Rewrite *struct {
		URI             *string `json:"uri"`
		URIRegexRewrite *struct {
			Rewrite string `json:"rewrite"`
		} `json:"uriRegexRewrite"`
	} `json:"rewrite"`
}

type matchBlock struct {
	URI            *stringMatch           `json:"uri"`
	Method         *stringMatch           `json:"method"`
	Authority      *stringMatch           `json:"authority"`
	Headers        map[string]stringMatch `json:"headers"`
	QueryParams    map[string]stringMatch `json:"queryParams"`
	WithoutHeaders map[string]stringMatch `json:"withoutHeaders"`
	IgnoreURICase  bool                   `json:"ignoreUriCase"`
}

type stringMatch struct {
	Exact      *string `json:"exact"`
	Prefix     *string `json:"prefix"`
	PathPrefix *string `json:"pathPrefix"`
	Regex      *string `json:"regex"`
	Present    bool    `json:"present"`
}

type warnings []Finding

func (w *warnings) add(path, format string, args ...any) {
	*w = append(*w, Finding{Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// goGroup is a group reference in Go, PCRE or sed syntax, which Istio's
// and Envoy's replacements do not know.
var goGroup = regexp.MustCompile(`\$\{?[0-9]`)

func (w *warnings) route(d *document, routes []*policy.Route, i int) {
	r, compiled := &d.Routes[i], routes[i]
	path := "routes[" + strconv.Itoa(i) + "]"
	for j := range i {
		if covers(&d.Routes[j], r) {
			also := ""
			if compiled.Split != nil {
				also = "; its destinations are unreachable"
			}
			w.add(path, "never matches: routes[%d] (%q) comes first and matches every request it would%s", j, routes[j].Name, also)
			break
		}
	}
	for k, b := range r.Match {
		if b.URI != nil && b.URI.Prefix != nil {
			if p := *b.URI.Prefix; len(p) > 1 && !strings.HasSuffix(p, "/") {
				w.add(fmt.Sprintf("%s.match[%d].uri.prefix", path, k),
					`%q also matches %q; use "pathPrefix" for whole path segments, or end the prefix with "/"`, p, p+"X")
			}
		}
	}
	if rw := r.Rewrite; rw != nil {
		if rw.URI != nil && goGroup.MatchString(*rw.URI) {
			w.add(path+".rewrite.uri", `%q: "$" is literal text here; use "uriRegexRewrite" to insert regex groups`, *rw.URI)
		}
		if rr := rw.URIRegexRewrite; rr != nil && goGroup.MatchString(rr.Rewrite) {
			w.add(path+".rewrite.uriRegexRewrite.rewrite", `%q: "$1" is literal text; write \1 for the first group`, rr.Rewrite)
		}
	}
	if s := compiled.Split; s != nil {
		if len(s.Destinations) > 1 {
			var sum uint64
			for _, dst := range s.Destinations {
				sum += uint64(dst.Weight)
			}
			if sum != 100 {
				w.add(path+".route", "weights sum to %d, not 100; each destination gets weight/%d of the requests", sum, sum)
			}
		}
		for _, dst := range s.Destinations {
			if dst.Weight == 0 && s.OverrideHeader() == "" {
				w.add(fmt.Sprintf("%s.route[%d]", path, dst.Index), `weight 0 and no "split.overrideHeader": no request reaches %q`, dst.Host)
			}
		}
	}
	if rl := compiled.RateLimit; rl != nil && rl.KeyedByClientAddress() {
		w.add(path+".rateLimit.key.clientAddress",
			"clients behind one NAT or proxy share an address and one budget, and an IPv6 client can change address at will; prefer a header a trusted proxy sets, such as an authenticated user id")
	}
}
