package policy

import (
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
	p.errs = append(p.errs, &Error{Path: path, Msg: sprintf(format, args...)})
}

// sprintf formats the verbs the parser's messages use (%s, %q, %d and %%)
// as fmt.Sprintf does, without importing fmt into the module.
func sprintf(format string, args ...any) string {
	var b []byte
	next := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b = append(b, format[i])
			continue
		}
		i++
		if format[i] == '%' {
			b = append(b, '%')
			continue
		}
		var s string
		if next < len(args) {
			s = argString(args[next])
			next++
		}
		if format[i] == 'q' {
			s = strconv.Quote(s)
		}
		b = append(b, s...)
	}
	return string(b)
}

// argString is a message argument as %s or %d prints it.
func argString(a any) string {
	switch v := a.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case uint64:
		return strconv.FormatUint(v, 10)
	case error:
		return v.Error()
	case interface{ String() string }: // time.Duration
		return v.String()
	}
	return "?"
}

func (p *parser) policy(doc gjson.Result) *Policy {
	o, ok := p.object("policy", doc, schemaPolicy)
	if !ok {
		return nil
	}
	o.prefix = ""
	logRequests, _ := o.flag("logRequests")
	hintKey, ok := o.str("hintKey")
	if ok && !validHintKey(hintKey) {
		p.fail("hintKey", "must be 16 to 256 of A-Z a-z 0-9 _ -, got %d characters", len(hintKey))
		hintKey = ""
	}
	items, ok := o.list("routes")
	if !ok {
		return nil
	}
	pol := &Policy{routes: make([]*Route, 0, len(items)), logRequests: logRequests, hintKey: hintKey}
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
		pol.usesScheme = pol.usesScheme || r.routeReads(readsScheme)
		pol.usesPort = pol.usesPort || r.routeReads(readsPort)
	}
	pol.compilePlans()
	pol.index = newRouteIndex(pol.routes)
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

// object is one object of the document, read through its declaration:
// the accessors take kinds, ranges, enums, flags, minimum lengths and
// required fields from the Schema, so a feature's code only adds the rules
// a declaration cannot state.
type object struct {
	p    *parser
	path string
	// prefix starts the paths of the fields: path + ".", or "" for the
	// document itself (whose path is "policy").
	prefix string
	decl   *Schema
	// values are the fields present, by name.
	values map[string]gjson.Result
	// reported is set once requireAll reported the missing fields.
	reported bool
}

// object checks that v is an object whose keys are all fields of decl and
// unique, and returns it.
func (p *parser) object(path string, v gjson.Result, decl *Schema) (*object, bool) {
	known := decl.names()
	if !v.IsObject() {
		p.fail(path, "must be an object, got %s", kind(v))
		return nil, false
	}
	o := &object{p: p, path: path, prefix: path + ".", decl: decl, values: map[string]gjson.Result{}}
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.String()
		switch _, dup := o.values[name]; {
		case !slices.Contains(known, name):
			p.fail(path, "unknown field %q; known fields: %s", name, strings.Join(known, ", "))
		case dup:
			p.fail(path+"."+name, "duplicate field")
		default:
			o.values[name] = val
		}
		return true
	})
	return o, true
}

// field returns the declaration of the field name.
func (o *object) field(name string) *Field {
	for _, f := range o.decl.Fields {
		if f.Name == name {
			return f
		}
	}
	// A programming error that every test reading the field finds; refuse
	// the policy rather than crash the proxy's VM.
	o.p.fail(o.at(name), "is not declared")
	return &Field{Name: name, Value: &Schema{}}
}

func (o *object) has(name string) bool {
	_, ok := o.values[name]
	return ok
}

// at is the path of the field name.
func (o *object) at(name string) string { return o.prefix + name }

// value returns the field's value. A required field that is absent is
// reported ("missing field"), unless requireAll has done so.
func (o *object) value(name string) (gjson.Result, bool) {
	v, ok := o.values[name]
	if !ok && !o.reported && o.field(name).Required {
		o.p.fail(o.path, "missing field %q", name)
	}
	return v, ok
}

// requireAll reports every required field that is absent, up front: the
// declaration's MissingMsg once, or one "missing field" each. It reports
// whether all are present.
func (o *object) requireAll() bool {
	o.reported = true
	complete := true
	for _, f := range o.decl.Fields {
		if f.Required && !o.has(f.Name) {
			if complete && o.decl.MissingMsg != "" {
				o.p.fail(o.path, "%s", o.decl.MissingMsg)
			} else if o.decl.MissingMsg == "" {
				o.p.fail(o.path, "missing field %q", f.Name)
			}
			complete = false
		}
	}
	return complete
}

// requires reports whether the field name's companion (Requires) is there,
// reporting `requires "companion"` against name otherwise.
func (o *object) requires(name string) bool {
	for _, r := range o.decl.Requires {
		if r[0] == name && !o.has(r[1]) {
			o.p.fail(o.at(name), "requires %q", r[1])
			return false
		}
	}
	return true
}

// excludes reports whether no field that name excludes (Excludes) is
// there, reporting `"name" and "other" exclude each other` otherwise.
func (o *object) excludes(name string) bool {
	for _, x := range o.decl.Excludes {
		other := x[1]
		if x[1] == name {
			other = x[0]
		} else if x[0] != name {
			continue
		}
		if o.has(other) {
			o.p.fail(o.path, "%q and %q exclude each other", name, other)
			return false
		}
	}
	return true
}

// minFields reports whether the object has its declared MinFields fields,
// reporting "must have at least one of ..." otherwise.
func (o *object) minFields() bool {
	if len(o.values) >= o.decl.MinFields {
		return true
	}
	o.p.fail(o.path, "must have at least one of %s", quoteList(o.decl.names()))
	return false
}

// str reads a string field.
func (o *object) str(name string) (string, bool) {
	v, ok := o.value(name)
	if !ok {
		return "", false
	}
	return o.p.str(o.at(name), v)
}

// flag reads a boolean field; a flag declared OnlyTrue must be true.
func (o *object) flag(name string) (bool, bool) {
	v, ok := o.value(name)
	if !ok {
		return false, false
	}
	return o.p.flag(o.at(name), v, o.field(name).Value)
}

// integer reads an integer field in its declared range.
func (o *object) integer(name string) (uint64, bool) {
	v, ok := o.value(name)
	if !ok {
		return 0, false
	}
	s := o.field(name).Value
	return o.p.integer(o.at(name), v, s.Min, s.Max)
}

// enum reads a string field declared with an Enum and returns the position
// of its value.
func (o *object) enum(name string) (int, bool) {
	v, ok := o.value(name)
	if !ok {
		return 0, false
	}
	return o.p.enum(o.at(name), v, o.field(name).Value.Enum)
}

// list reads a list with at least its declared MinItems items.
func (o *object) list(name string) ([]gjson.Result, bool) {
	v, ok := o.value(name)
	if !ok {
		return nil, false
	}
	return o.p.items(o.at(name), v, o.field(name).Value)
}

// items reads the list v declared by s: at least s.MinItems items.
func (p *parser) items(path string, v gjson.Result, s *Schema) ([]gjson.Result, bool) {
	items, ok := p.list(path, v)
	if !ok {
		return nil, false
	}
	if len(items) < s.MinItems {
		p.fail(path, "%s", hinted("must not be empty", s.EmptyHint))
		return nil, false
	}
	return items, true
}

// flag reads the boolean v declared by s; OnlyTrue refuses false.
func (p *parser) flag(path string, v gjson.Result, s *Schema) (bool, bool) {
	b, ok := p.boolean(path, v)
	if ok && s.OnlyTrue && !b {
		p.fail(path, "%s", hinted("must be true", s.FalseHint))
		return false, false
	}
	return b, ok
}

// hinted appends "; hint" to msg when there is a hint.
func hinted(msg, hint string) string {
	if hint == "" {
		return msg
	}
	return msg + "; " + hint
}

// enum returns the position of v's string among values.
func (p *parser) enum(path string, v gjson.Result, values []string) (int, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return 0, false
	}
	if i := slices.Index(values, s); i >= 0 {
		return i, true
	}
	p.fail(path, "%q is not one of %s", s, quoteList(values))
	return 0, false
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
// nothing else) and returns that field's declaration and value.
func (p *parser) oneOf(path string, v gjson.Result, decl *Schema) (*Field, gjson.Result, bool) {
	before := len(p.errs)
	o, ok := p.object(path, v, decl)
	if !ok || len(p.errs) > before {
		return nil, gjson.Result{}, false // already reported; "exactly one" would repeat it
	}
	if len(o.values) != 1 {
		p.fail(path, "must have exactly one of %s", quoteList(decl.names()))
		return nil, gjson.Result{}, false
	}
	for _, f := range decl.Fields {
		if v, ok := o.values[f.Name]; ok {
			return f, v, true
		}
	}
	return nil, gjson.Result{}, false // unreachable: the value is a declared field
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

// number reads a number in [lo, hi]; fractions are allowed.
func (p *parser) number(path string, v gjson.Result, lo, hi float64) (float64, bool) {
	if v.Type != gjson.Number {
		p.fail(path, "must be a number, got %s", kind(v))
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Raw, 64)
	if err != nil || f < lo || f > hi {
		p.fail(path, "must be a number from %s to %s, got %s",
			strconv.FormatFloat(lo, 'g', -1, 64), strconv.FormatFloat(hi, 'g', -1, 64), v.Raw)
		return 0, false
	}
	return f, true
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
