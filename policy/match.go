package policy

import (
	"strings"

	"github.com/tidwall/gjson"
)

// matchBlock is one entry of a route's "match" list: all its conditions must
// hold. A nil matcher places no condition.
type matchBlock struct {
	uri, method, authority *stringMatch
	scheme                 *stringMatch
	port                   uint32 // 0 when unset
	headers                []namedMatch
	queryParams            []namedMatch
	withoutHeaders         []namedMatch
}

// namedMatch is a condition on one header or query parameter.
type namedMatch struct {
	name string
	m    stringMatch
}

type matchKind uint8

const (
	matchExact matchKind = iota + 1
	matchPrefix
	matchPathPrefix
	matchRegex
	matchPresent
)

// stringMatch is a compiled Istio StringMatch.
type stringMatch struct {
	kind  matchKind
	value string // lower-case when fold is set
	re    *regex // anchored: must match the whole value
	// fold compares ASCII letters case-insensitively. Only ASCII is folded so
	// the matched prefix has the same length in the request as in the policy.
	fold bool
	// wildcard marks an exact authority "*.example.com"; value is then
	// ".example.com".
	wildcard bool
}

// matchTarget says what a StringMatch is applied to, which decides the
// allowed operators and how values compare.
type matchTarget uint8

const (
	targetURI matchTarget = iota
	targetMethod
	targetAuthority
	targetNamed // headers, queryParams, withoutHeaders
)

// match reports whether s matches. For prefix kinds, n is the length of the
// matched prefix (what a rewrite replaces).
func (m *stringMatch) match(s string) (n int, ok bool) {
	switch m.kind {
	case matchExact:
		if m.wildcard {
			return 0, len(s) > len(m.value) && equal(s[len(s)-len(m.value):], m.value, true)
		}
		return len(s), equal(s, m.value, m.fold)
	case matchPrefix:
		n = len(m.value)
		return n, len(s) >= n && equal(s[:n], m.value, m.fold)
	case matchPathPrefix:
		n = len(m.value)
		return n, len(s) >= n && equal(s[:n], m.value, m.fold) && (len(s) == n || s[n] == '/')
	case matchRegex:
		return len(s), m.re.MatchString(s)
	case matchPresent:
		return 0, true
	}
	return 0, false
}

// equal compares s with want, which is lower-case when fold is set.
func equal(s, want string, fold bool) bool {
	if !fold {
		return s == want
	}
	if len(s) != len(want) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// match reports whether any of the route's blocks matches. prefix is the
// length of the uri prefix the matching block matched, or -1 when it did not
// match the uri by prefix (a rewrite then replaces the whole path).
func (r *Route) match(req *Request, path, query string) (prefix int, ok bool) {
	if len(r.matches) == 0 {
		return -1, true
	}
	for i := range r.matches {
		if prefix, ok := r.matches[i].match(req, path, query); ok {
			return prefix, true
		}
	}
	return -1, false
}

func (b *matchBlock) match(req *Request, path, query string) (prefix int, ok bool) {
	prefix = -1
	if b.uri != nil {
		n, ok := b.uri.match(path)
		if !ok {
			return -1, false
		}
		if b.uri.kind == matchPrefix || b.uri.kind == matchPathPrefix {
			prefix = n
		}
	}
	if b.method != nil {
		if _, ok := b.method.match(req.Method); !ok {
			return -1, false
		}
	}
	if b.authority != nil {
		if _, ok := b.authority.match(stripPort(req.Authority)); !ok {
			return -1, false
		}
	}
	if b.scheme != nil && !b.scheme.holds(req.Scheme) {
		return -1, false
	}
	if b.port != 0 && req.Port != b.port {
		return -1, false
	}
	for i := range b.headers {
		v, found := header(req, b.headers[i].name)
		if !found || !b.headers[i].m.holds(v) {
			return -1, false
		}
	}
	for i := range b.queryParams {
		v, found := queryParam(query, b.queryParams[i].name)
		if !found || !b.queryParams[i].m.holds(v) {
			return -1, false
		}
	}
	for i := range b.withoutHeaders {
		if v, found := header(req, b.withoutHeaders[i].name); found && b.withoutHeaders[i].m.holds(v) {
			return -1, false
		}
	}
	return prefix, true
}

// holds reports whether a value that is present matches.
func (m *stringMatch) holds(v string) bool {
	_, ok := m.match(v)
	return ok
}

// header looks a request header up, tolerating a request without headers.
func header(req *Request, name string) (string, bool) {
	if req.Headers == nil {
		return "", false
	}
	return req.Headers.Header(name)
}

// queryParam returns the raw (not percent-decoded) value of the first query
// parameter called name. query is the query string without its "?".
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// splitQuery splits a :path into the path and the query string (without "?").
func splitQuery(full string) (path, query string) {
	path, query, _ = strings.Cut(full, "?")
	return path, query
}

// stripPort removes the port from "host:port", "[v6]:port" or "host".
// A bare IPv6 address (more than one colon, no brackets) is returned as is.
func stripPort(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if end := strings.IndexByte(hostport, ']'); end > 0 {
			return hostport[:end+1]
		}
		return hostport
	}
	if i := strings.IndexByte(hostport, ':'); i >= 0 && strings.LastIndexByte(hostport, ':') == i {
		return hostport[:i]
	}
	return hostport
}

// matchOps declares an Istio StringMatch with the given operators.
func matchOps(def, doc string, ops ...*Field) *Schema {
	return &Schema{Kind: KindObject, Def: def, Doc: doc, OneOf: true, Fields: append([]*Field{
		optional("exact", strDecl("The whole value equals this.")),
		optional("prefix", strDecl("The value starts with this.")),
		optional("regex", strDecl("An RE2 regular expression the whole value must match.")),
	}, ops...)}
}

var (
	schemaURIMatch = matchOps("uriMatch", "How the path (without query) is matched: exactly one operator.",
		optional("pathPrefix", &Schema{Kind: KindString, Pattern: "^/",
			Doc: "The path is this or starts with this followed by \"/\": whole segments only."}))

	schemaPlainMatch = matchOps("stringMatch", "How the value is matched: exactly one operator.")

	// The authority is matched without its port (an IPv6 literal keeps its
	// brackets), and "*" is only a leading "*." of an exact authority.
	schemaAuthorityMatch = &Schema{Kind: KindObject, Def: "authorityMatch", OneOf: true,
		Doc: "How the authority (without port) is matched: exactly one operator.",
		Fields: []*Field{
			optional("exact", &Schema{Kind: KindString, Pattern: `^(\[[^*]*|\*\.[^:]*|[^*:]*)$`,
				Doc: "The whole value equals this; a leading \"*.\" matches any subdomain."}),
			optional("prefix", &Schema{Kind: KindString, Pattern: `^(\[[^*]*|[^*:]*)$`, Doc: "The value starts with this."}),
			optional("regex", strDecl("An RE2 regular expression the whole value must match.")),
		}}

	schemaNamedMatch = matchOps("namedMatch", "How a header or query parameter is matched: exactly one operator.",
		optional("present", &Schema{Kind: KindBoolean, OnlyTrue: true, FalseHint: `use "withoutHeaders" to require absence`,
			Doc: "The header or parameter is present, whatever its value."}))

	schemaNamedMatches = &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaNamedMatch}

	schemaMatchBlock = &Schema{Kind: KindObject, Def: "match",
		Doc: "One set of conditions; all must hold.",
		Fields: []*Field{
			optional("uri", schemaURIMatch),
			optional("method", schemaPlainMatch),
			optional("authority", schemaAuthorityMatch),
			optional("scheme", schemaPlainMatch),
			optional("port", intDecl("The port the request came in on (the listener's port).", 1, 65535)),
			optional("headers", schemaNamedMatches),
			optional("queryParams", &Schema{Kind: KindMap, Keys: &Schema{Kind: KindString, Pattern: "^[\\s\\S]+$"},
				Values: schemaNamedMatch, Doc: "Query parameters (raw, not percent-decoded) by name."}),
			optional("withoutHeaders", schemaNamedMatches),
			optional("ignoreUriCase", boolDecl("Match \"uri\" ignoring ASCII case.")),
		}}
)

func init() {
	register(&feature{order: 10, fields: []*Field{
		optional("match", &Schema{Kind: KindList, Items: schemaMatchBlock, MinItems: 1,
			EmptyHint: `omit "match" to match every request`,
			Doc:       "Any block matching selects the route; omit to match every request."}),
	}, compile: compileMatch})
}

// compileMatch compiles the "match" list. Every route has the unit: it
// counts the requests the route matched.
func compileMatch(p *parser, route *object, r *Route) unit {
	if items, ok := route.list("match"); ok {
		r.matches = p.matchBlocks(route.at("match"), items)
	}
	return &matchUnit{blocks: r.matches}
}

// matchUnit counts matched requests; Choose selects the route by its
// blocks (Route.match) before any unit runs.
type matchUnit struct {
	noUnit
	blocks  []matchBlock
	matched Counter
}

func (u *matchUnit) counters(def func(string) Counter) { u.matched = def(CounterMatched) }

func (u *matchUnit) reads(part requestPart) bool {
	for _, b := range u.blocks {
		if part == readsMethod && b.method != nil || part == readsAuthority && b.authority != nil ||
			part == readsScheme && b.scheme != nil || part == readsPort && b.port != 0 {
			return true
		}
	}
	return false
}

func (u *matchUnit) step(plan *Plan, _ *Request, _ Env) bool {
	plan.Counters = append(plan.Counters, u.matched)
	return true
}

func (p *parser) matchBlocks(path string, items []gjson.Result) []matchBlock {
	blocks := make([]matchBlock, 0, len(items))
	for i, item := range items {
		blocks = append(blocks, p.matchBlock(index(path, i), item))
	}
	return blocks
}

func (p *parser) matchBlock(path string, v gjson.Result) matchBlock {
	var b matchBlock
	o, ok := p.object(path, v, schemaMatchBlock)
	if !ok {
		return b
	}
	fold, _ := o.flag("ignoreUriCase")
	single := func(name string, target matchTarget, fold bool) *stringMatch {
		fv, ok := o.value(name)
		if !ok {
			return nil
		}
		m, ok := p.stringMatch(o.at(name), fv, target, fold)
		if !ok {
			return nil
		}
		return &m
	}
	b.uri = single("uri", targetURI, fold)
	b.method = single("method", targetMethod, false)
	b.authority = single("authority", targetAuthority, true)
	b.scheme = single("scheme", targetMethod, false)
	if n, ok := o.integer("port"); ok {
		b.port = uint32(n)
	}
	named := func(name string) []namedMatch {
		fv, ok := o.value(name)
		if !ok {
			return nil
		}
		var out []namedMatch
		for _, e := range p.entries(o.at(name), fv) {
			var hn string
			if name == "queryParams" {
				hn = e.key
				if hn == "" {
					p.fail(e.path, "query parameter name must not be empty")
					continue
				}
			} else if hn, ok = p.headerName(e.path, e.key, `match it with "uri", "method" or "authority"`); !ok {
				continue
			}
			if m, ok := p.stringMatch(e.path, e.value, targetNamed, false); ok {
				out = append(out, namedMatch{name: hn, m: m})
			}
		}
		return out
	}
	b.headers = named("headers")
	b.queryParams = named("queryParams")
	b.withoutHeaders = named("withoutHeaders")
	return b
}

func (p *parser) stringMatch(path string, v gjson.Result, target matchTarget, fold bool) (stringMatch, bool) {
	decl := schemaPlainMatch
	switch target {
	case targetURI:
		decl = schemaURIMatch
	case targetAuthority:
		decl = schemaAuthorityMatch
	case targetNamed:
		decl = schemaNamedMatch
	}
	f, val, ok := p.oneOf(path, v, decl)
	if !ok {
		return stringMatch{}, false
	}
	op := f.Name
	path += "." + op
	if op == "present" {
		_, ok := p.flag(path, val, f.Value)
		return stringMatch{kind: matchPresent}, ok
	}
	s, ok := p.str(path, val)
	if !ok {
		return stringMatch{}, false
	}
	m := stringMatch{fold: fold, value: s}
	switch op {
	case "exact":
		m.kind = matchExact
	case "prefix":
		m.kind = matchPrefix
	case "pathPrefix":
		m.kind = matchPathPrefix
		if !strings.HasPrefix(s, "/") {
			p.fail(path, "%q must start with \"/\"", s)
			return m, false
		}
		// "/a/" and "/a" mean the same segment; "/" keeps matching every path.
		m.value = strings.TrimRight(s, "/")
	case "regex":
		m.kind = matchRegex
		flags := ""
		if fold {
			flags = "(?i)"
		}
		if m.re = p.regex(path, s, flags, true); m.re == nil {
			return m, false
		}
	}
	if target == targetAuthority && m.kind != matchRegex {
		if strings.Contains(s, ":") && !strings.HasPrefix(s, "[") {
			p.fail(path, "%q must not contain a port: the authority is matched without its port", s)
			return m, false
		}
		if star := strings.IndexByte(s, '*'); star >= 0 && (m.kind != matchExact || star != 0 || !strings.HasPrefix(s, "*.")) {
			p.fail(path, `%q: "*" is only allowed as a leading "*." in "exact"`, s)
			return m, false
		}
		if strings.HasPrefix(s, "*.") {
			m.wildcard = true
			m.value = s[1:]
		}
	}
	if m.fold {
		m.value = strings.ToLower(m.value)
	}
	return m, true
}

// regex compiles expr, reporting a syntax error against expr as the user
// wrote it. anchored makes it match the whole value, as Istio's regex does.
func (p *parser) regex(path, expr, flags string, anchored bool) *regex {
	if _, err := compileRegex(expr); err != nil {
		if !regexSupported {
			p.fail(path, "regex %q: %s", expr, err)
			return nil
		}
		p.fail(path, "invalid regex %q: %s", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	if anchored {
		expr = "^(?:" + expr + ")$"
	}
	re, err := compileRegex(flags + expr)
	if err != nil {
		p.fail(path, "invalid regex %q: %s", expr, err)
		return nil
	}
	return re
}
