package policy

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// rewrite is a compiled "rewrite" block.
type rewrite struct {
	uri    string // "" when unset
	re     *regex
	substi string // re's replacement in Go's $-syntax
	// authority replaces :authority, "" when unset.
	authority string
}

// apply returns the new :path and :authority; each is "" when unchanged.
// full is the request's :path and path its part before any "?"; prefix is
// the length of the uri prefix the route matched, or -1 (see Route.match).
// Everything from the "?" on (even a bare "?") is kept as it was.
//
// # Notes
//
// When the result is a piece of the original :path (uri "/" after a prefix
// match, the common "strip the prefix" case) or the replacement alone, it is
// returned as it is. Otherwise the new path is built in buf, which the
// caller's Decision keeps from one request to the next: no request
// allocates for it (in the Go module one small allocation per request cost
// more than the rest of a rewrite, docs/BENCHMARKS.md, "Growth").
func (rw *rewrite) apply(full, path string, prefix int, buf *[]byte) (newPath, authority string) {
	query := full[len(path):] // "?..." or ""
	switch {
	case rw.re != nil:
		newPath = rw.re.ReplaceAllString(path, rw.substi)
		if !strings.HasPrefix(newPath, "/") {
			newPath = "/" + newPath // a :path is absolute
		}
		newPath = join(buf, newPath, "", query)
	case rw.uri != "":
		newPath = rw.replacePrefix(full, path, query, prefix, buf)
	}
	if newPath == full {
		newPath = ""
	}
	return newPath, rw.authority
}

// replacePrefix replaces the matched prefix (or the whole path when prefix is
// -1) with rw.uri, joining the two with exactly one "/" where both sides
// have one, so "/products/123" with prefix "/products" and uri "/" becomes
// "/123", not Istio's "//123".
func (rw *rewrite) replacePrefix(full, path, query string, prefix int, buf *[]byte) string {
	if prefix < 0 {
		return join(buf, rw.uri, "", query)
	}
	rest := path[prefix:]
	if rest != "" && rest[0] == '/' && strings.HasSuffix(rw.uri, "/") {
		if rw.uri == "/" {
			return full[prefix:] // rest and query are contiguous in full
		}
		rest = rest[1:]
	}
	return join(buf, rw.uri, rest, query)
}

// join returns path+rest+query, query being "?..." or "": path itself when
// the others are empty, else the three written into buf (grown as needed),
// as a string that shares buf's memory; a new string when buf is nil.
func join(buf *[]byte, path, rest, query string) string {
	if rest == "" && query == "" {
		return path
	}
	if buf == nil {
		return path + rest + query
	}
	b := append(append(append((*buf)[:0], path...), rest...), query...)
	*buf = b
	return unsafe.String(unsafe.SliceData(b), len(b))
}

var (
	schemaRegexRewrite = &Schema{Kind: KindObject, Doc: "Rewrite the path with a regex and a replacement.",
		MissingMsg: `must have both "match" and "rewrite"`,
		Fields: []*Field{
			required("match", strDecl("An RE2 regular expression applied to the path (without query).")),
			required("rewrite", &Schema{Kind: KindString, Pattern: `^[^?#\r\n\x00]*$`,
				Doc: "The replacement; \\1 to \\9 insert groups."}),
		}}

	schemaRewrite = &Schema{Kind: KindObject, Def: "rewrite", MinFields: 1,
		Excludes: [][2]string{{"uri", "uriRegexRewrite"}},
		Doc:      "Rewrite the path or authority before the request is forwarded.",
		Fields: []*Field{
			optional("uri", &Schema{Kind: KindString, Pattern: `^/[^?#\x00-\x20\x7f]*$`,
				Doc: "Replaces the matched prefix (or the whole path); the query is kept."}),
			optional("uriRegexRewrite", schemaRegexRewrite),
			optional("authority", &Schema{Kind: KindString, Pattern: `^[^\r\n\x00 \t/?#]+$`,
				Doc: "Replaces the authority (Host)."}),
		}}
)

func init() {
	register(&feature{order: 20, fields: []*Field{optional("rewrite", schemaRewrite)}, compile: compileRewrite})
}

// compileRewrite compiles the "rewrite" block. Every route has the unit:
// it counts rewritten requests (none without a rewrite).
func compileRewrite(p *parser, route *object, _ *Route) unit {
	u := &rewriteUnit{}
	if rv, ok := route.value("rewrite"); ok {
		u.rw = p.rewrite(route.at("rewrite"), rv)
	}
	return u
}

type rewriteUnit struct {
	noUnit
	rw        *rewrite // nil when the route has none
	rewritten Counter
}

func (u *rewriteUnit) counters(def func(string) Counter) { u.rewritten = def(CounterRewritten) }

func (u *rewriteUnit) choose(req *Request, path string, prefix int, _ uint64, d *Decision) {
	if u.rw != nil {
		d.Path, d.Authority = u.rw.apply(req.Path, path, prefix, d.pathBuf)
	}
}

func (u *rewriteUnit) step(plan *Plan, req *Request, _ Env) bool {
	if plan.Path != "" {
		// As Envoy's own rewrites do, so access logs keep what the client sent.
		plan.Request = append(plan.Request,
			Edit{Kind: HeaderSet, Name: ":path", Value: plan.Path},
			Edit{Kind: HeaderSet, Name: "x-envoy-original-path", Value: req.Path})
		plan.Counters = append(plan.Counters, u.rewritten)
		plan.RouteChanged = true
	}
	if plan.Authority != "" {
		plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: ":authority", Value: plan.Authority})
		plan.RouteChanged = true
	}
	return true
}

func (u *rewriteUnit) describe(line string, plan *Plan) string {
	if plan.Path != "" {
		line += " path=" + strconv.Quote(plan.Path)
	}
	if plan.Authority != "" {
		line += " authority=" + strconv.Quote(plan.Authority)
	}
	return line
}

func (p *parser) rewrite(path string, v gjson.Result) *rewrite {
	o, ok := p.object(path, v, schemaRewrite)
	if !ok || !o.minFields() {
		return nil
	}
	rw := &rewrite{}
	if o.has("uri") && o.has("uriRegexRewrite") {
		p.fail(path, `"uri" and "uriRegexRewrite" are mutually exclusive`)
		return nil
	}
	if uv, ok := o.value("uri"); ok {
		rw.uri, _ = p.pathValue(o.at("uri"), uv)
	}
	if rv, ok := o.value("uriRegexRewrite"); ok {
		rw.re, rw.substi = p.regexRewrite(o.at("uriRegexRewrite"), rv)
	}
	if av, ok := o.value("authority"); ok {
		rw.authority, _ = p.headerValue(o.at("authority"), av)
		if strings.ContainsAny(rw.authority, " \t/?#") {
			p.fail(o.at("authority"), "%q is not a valid authority", rw.authority)
		}
	}
	return rw
}

// pathValue reads a replacement path: absolute, no query (the request's query
// is always kept), nothing that would corrupt the request line.
func (p *parser) pathValue(path string, v gjson.Result) (string, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return "", false
	}
	switch {
	case !strings.HasPrefix(s, "/"):
		p.fail(path, "%q must start with \"/\"", s)
	case strings.ContainsAny(s, "?#"):
		p.fail(path, "%q must not contain \"?\" or \"#\": the request's query string is kept", s)
	case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		p.fail(path, "%q must not contain spaces or control characters", s)
	default:
		return s, true
	}
	return "", false
}

func (p *parser) regexRewrite(path string, v gjson.Result) (*regex, string) {
	o, ok := p.object(path, v, schemaRegexRewrite)
	if !ok || !o.requireAll() {
		return nil, ""
	}
	var re *regex
	if expr, ok := o.str("match"); ok {
		re = p.regex(o.at("match"), expr, "", false)
	}
	s, ok := o.str("rewrite")
	if !ok || re == nil {
		return nil, ""
	}
	if strings.ContainsAny(s, "?#") || unsafeValue(s) {
		p.fail(path+".rewrite", "%q must not contain \"?\", \"#\", CR, LF or NUL: the request's query string is kept", s)
		return nil, ""
	}
	substi, err := goReplacement(s, re.NumSubexp())
	if err != "" {
		p.fail(path+".rewrite", "%s", err)
		return nil, ""
	}
	return re, substi
}

// goReplacement turns an Envoy/Istio replacement ("\1" for a group) into
// Go's Regexp.Expand syntax ("${1}"), checking group numbers.
func goReplacement(s string, groups int) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			n := int(s[i+1] - '0')
			if n > groups {
				return "", `\` + strconv.Itoa(n) + " refers to a missing group (the regex has " + strconv.Itoa(groups) + ")"
			}
			b.WriteString("${" + strconv.Itoa(n) + "}")
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}
