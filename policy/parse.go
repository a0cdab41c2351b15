package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Error is one problem found in a policy, located by its JSON path.
type Error struct {
	// Path locates the problem, e.g. "routes[2].rateLimit.tokenBucket.fillInterval",
	// or "policy" for the document as a whole.
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error returns "path: msg".
func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Errors is every problem Parse found, in document order.
type Errors []*Error

// Error joins all errors with "; ".
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Parse parses, validates and compiles a JSON policy.
//
// # Errors
//
// Parse reports every problem it finds, not only the first, as Errors. Each
// Error names the JSON path and the reason, e.g.
// `routes[2].rateLimit.tokenBucket.fillInterval: "abc" is not a duration`.
// Unknown fields, wrong types, duplicate fields and meaningless values are
// all refused: a typo must never silently disable a rule.
func Parse(data []byte) (*Policy, error) {
	if !gjson.ValidBytes(data) {
		return nil, Errors{{Path: "policy", Msg: "not valid JSON"}}
	}
	var p parser
	pol := p.policy(gjson.ParseBytes(data))
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return pol, nil
}

// parser collects errors while walking the document, so one pass reports all
// of them.
type parser struct {
	errs Errors
}

func (p *parser) fail(path, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) policy(doc gjson.Result) *Policy {
	fields, ok := p.object("policy", doc, schemaPolicy)
	if !ok {
		return nil
	}
	var logRequests bool
	if lv, ok := fields["logRequests"]; ok {
		logRequests, _ = p.boolean("logRequests", lv)
	}
	routesJSON, ok := fields["routes"]
	if !ok {
		p.fail("policy", `missing field "routes"`)
		return nil
	}
	items, ok := p.list("routes", routesJSON)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.fail("routes", "must not be empty")
		return nil
	}
	pol := &Policy{routes: make([]*Route, 0, len(items)), logRequests: logRequests}
	firstByName := map[string]int{}
	for i, item := range items {
		path := index("routes", i)
		r := p.route(path, i, item)
		if r == nil {
			continue
		}
		if first, dup := firstByName[r.Name]; dup {
			p.fail(path+".name", "duplicate route name %q (also routes[%d])", r.Name, first)
			continue
		}
		firstByName[r.Name] = i
		pol.routes = append(pol.routes, r)
		pol.usesClientAddress = pol.usesClientAddress || r.routeReads(readsClientAddress)
		pol.usesMethod = pol.usesMethod || r.routeReads(readsMethod)
		pol.usesAuthority = pol.usesAuthority || r.routeReads(readsAuthority)
	}
	pol.compilePlans()
	return pol
}

// validName reports whether name can appear in metric names and shared-data
// keys unescaped.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// object checks that v is an object whose keys are all fields of decl and
// unique, and returns its fields by name.
func (p *parser) object(path string, v gjson.Result, decl *Schema) (map[string]gjson.Result, bool) {
	known := decl.names()
	if !v.IsObject() {
		p.fail(path, "must be an object, got %s", kind(v))
		return nil, false
	}
	fields := map[string]gjson.Result{}
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.String()
		switch _, dup := fields[name]; {
		case !slices.Contains(known, name):
			p.fail(path, "unknown field %q; known fields: %s", name, strings.Join(known, ", "))
		case dup:
			p.fail(path+"."+name, "duplicate field")
		default:
			fields[name] = val
		}
		return true
	})
	return fields, true
}

// entry is one key of a JSON object used as a map (e.g. header name → value).
type entry struct {
	key   string
	path  string
	value gjson.Result
}

// entries returns the keys of a JSON object in document order, refusing
// duplicates.
func (p *parser) entries(path string, v gjson.Result) []entry {
	if !v.IsObject() {
		p.fail(path, "must be an object, got %s", kind(v))
		return nil
	}
	var out []entry
	seen := map[string]bool{}
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.String()
		ep := path + "[" + strconv.Quote(key) + "]"
		if seen[key] {
			p.fail(ep, "duplicate key")
			return true
		}
		seen[key] = true
		out = append(out, entry{key: key, path: ep, value: val})
		return true
	})
	return out
}

// oneOf reads an object that must have exactly one of decl's fields (and
// nothing else) and returns that field.
func (p *parser) oneOf(path string, v gjson.Result, decl *Schema) (string, gjson.Result, bool) {
	names := decl.names()
	before := len(p.errs)
	fields, ok := p.object(path, v, decl)
	if !ok || len(p.errs) > before {
		return "", gjson.Result{}, false // already reported; "exactly one" would repeat it
	}
	var found []string
	for _, n := range names {
		if _, ok := fields[n]; ok {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		p.fail(path, "must have exactly one of %s", quoteList(names))
		return "", gjson.Result{}, false
	}
	return found[0], fields[found[0]], true
}

func (p *parser) list(path string, v gjson.Result) ([]gjson.Result, bool) {
	if !v.IsArray() {
		p.fail(path, "must be a list, got %s", kind(v))
		return nil, false
	}
	return v.Array(), true
}

func (p *parser) str(path string, v gjson.Result) (string, bool) {
	if v.Type != gjson.String {
		p.fail(path, "must be a string, got %s", kind(v))
		return "", false
	}
	return v.Str, true
}

func (p *parser) boolean(path string, v gjson.Result) (bool, bool) {
	if !v.IsBool() {
		p.fail(path, "must be a boolean, got %s", kind(v))
		return false, false
	}
	return v.Bool(), true
}

// integer reads a whole number in [lo, hi] from its JSON text, so 1.5, 1e3
// and out-of-range values are refused instead of rounded.
func (p *parser) integer(path string, v gjson.Result, lo, hi uint64) (uint64, bool) {
	if v.Type != gjson.Number {
		p.fail(path, "must be an integer, got %s", kind(v))
		return 0, false
	}
	n, err := strconv.ParseUint(v.Raw, 10, 64)
	switch {
	case hi == math.MaxInt64 && (err != nil || n < lo || n > hi):
		p.fail(path, "must be an integer of at least %d, got %s", lo, v.Raw)
	case err != nil || n < lo || n > hi:
		p.fail(path, "must be an integer from %d to %d, got %s", lo, hi, v.Raw)
	default:
		return n, true
	}
	return 0, false
}

// kind names a JSON value's type for error messages.
func kind(v gjson.Result) string {
	switch {
	case v.Type == gjson.Null:
		return "null"
	case v.IsBool():
		return "a boolean"
	case v.Type == gjson.Number:
		return "a number"
	case v.Type == gjson.String:
		return "a string"
	case v.IsArray():
		return "a list"
	default:
		return "an object"
	}
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// headerName validates a header name used in the policy and returns it
// lower-cased. what says how a pseudo-header should be handled instead.
func (p *parser) headerName(path, name, pseudoHint string) (string, bool) {
	if strings.HasPrefix(name, ":") {
		p.fail(path, "%q is a pseudo-header; %s", name, pseudoHint)
		return "", false
	}
	if !isToken(name) {
		p.fail(path, "%q is not a valid header name", name)
		return "", false
	}
	return strings.ToLower(name), true
}

// headerField reads a string field holding a header name.
func (p *parser) headerField(path string, v gjson.Result) (string, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return "", false
	}
	return p.headerName(path, s, "name a regular header")
}

// isToken reports whether s is an RFC 9110 token (header and cookie names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// unsafeValue reports whether s holds a byte that would split or truncate a
// header (CR, LF or NUL).
func unsafeValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// headerValue reads a string that is written verbatim into a header.
func (p *parser) headerValue(path string, v gjson.Result) (string, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return "", false
	}
	if s == "" {
		p.fail(path, "must not be empty")
		return "", false
	}
	if unsafeValue(s) {
		p.fail(path, "must not contain CR, LF or NUL")
		return "", false
	}
	return s, true
}

// quoteList renders names as `"a", "b", "c"` for error messages.
func quoteList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return strings.Join(quoted, ", ")
}
