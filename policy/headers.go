package policy

import (
	"strings"

	"github.com/tidwall/gjson"
)

type partKind uint8

const (
	partLiteral       partKind = iota + 1
	partHeader                 // %REQ(name)%
	partClientAddress          // %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%
	partDestination            // %DESTINATION%
)

// templatePart is a literal run or one variable of a Template.
type templatePart struct {
	kind partKind
	text string // the literal, or the lower-case header name
}

// maxStackParts is how many part values Render keeps on the stack before it
// needs a heap slice.
const maxStackParts = 8

// Render returns the value for one request. ok is false when the value must
// not be written: it renders empty, or a variable's runtime value holds CR,
// LF or NUL.
//
// # Notes
//
// A literal value or a value that is exactly one variable renders without
// allocating; a value mixing text and variables allocates its result once.
func (t *Template) Render(req *Request, d *Decision) (value string, ok bool) {
	switch len(t.parts) {
	case 0:
		return t.literal, t.literal != ""
	case 1:
		v := t.parts[0].value(req, d)
		return v, v != "" && !unsafeValue(v)
	}
	var stack [maxStackParts]string
	values := stack[:0]
	n := 0
	for i := range t.parts {
		v := t.parts[i].value(req, d)
		if unsafeValue(v) {
			return "", false
		}
		values = append(values, v)
		n += len(v)
	}
	if n == 0 {
		return "", false
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range values {
		b.WriteString(v)
	}
	return b.String(), true
}

func (tp *templatePart) value(req *Request, d *Decision) string {
	switch tp.kind {
	case partLiteral:
		return tp.text
	case partHeader:
		v, _ := requestValue(req, tp.text)
		return v
	case partClientAddress:
		return clientAddress(req)
	case partDestination:
		if d != nil && d.Destination != nil {
			return d.Destination.Hint
		}
	}
	return ""
}

// requestValue reads a request header, or one of the pseudo-headers the
// Request carries as fields.
func requestValue(req *Request, name string) (string, bool) {
	if req == nil {
		return "", false
	}
	switch name {
	case ":authority":
		return req.Authority, req.Authority != ""
	case ":method":
		return req.Method, req.Method != ""
	case ":path":
		return req.Path, req.Path != ""
	}
	return header(req, name)
}

// clientAddress is the downstream address without port (and without the
// brackets of an IPv6 literal), as Envoy's
// %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% prints it.
func clientAddress(req *Request) string {
	if req == nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(stripPort(req.ClientAddress), "["), "]")
}

// templatePattern is a header value with known variables only: %%,
// %ROUTE_NAME%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %DESTINATION% and
// %REQ(name)% of a header name or :authority, :method, :path (any case).
var templatePattern = `^([^%\r\n\x00]|%%|%ROUTE_NAME%|%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DESTINATION%|%REQ\((` +
	":" + anyCase("authority") + "|:" + anyCase("method") + "|:" + anyCase("path") +
	"|[!#$&'*+.^_`|~0-9A-Za-z-]+)\\)%)+$"

// anyCase returns a pattern matching the lower-case ASCII word s in any case.
func anyCase(s string) string {
	var out string
	for i := 0; i < len(s); i++ {
		out += "[" + string(s[i]-'a'+'A') + s[i:i+1] + "]"
	}
	return out
}

var (
	schemaHeaderOps = &Schema{Kind: KindObject, Def: "headerOperations",
		Doc: "Header operations, applied in the order remove, set, add.",
		Fields: []*Field{
			optional("set", &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaTemplate,
				Doc: "Headers to set, replacing every value."}),
			optional("add", &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaTemplate,
				Doc: "Headers to append, keeping existing values."}),
			optional("remove", &Schema{Kind: KindList, Items: schemaHeaderName, Doc: "Headers to remove."}),
		}}

	schemaHeaders = &Schema{Kind: KindObject, Doc: "Header operations on the request and on the response.",
		Fields: []*Field{optional("request", schemaHeaderOps), optional("response", schemaHeaderOps)}}
)

func init() {
	register(&feature{order: 30, fields: []*Field{optional("headers", schemaHeaders)}, compile: compileHeaders})
}

// compileHeaders compiles the "headers" block into Route.RequestHeaders and
// Route.ResponseHeaders.
func compileHeaders(p *parser, route *object, r *Route) unit {
	hv, ok := route.value("headers")
	if !ok {
		return nil
	}
	r.RequestHeaders, r.ResponseHeaders = p.headers(route.at("headers"), hv, r.Name)
	return &headersUnit{request: r.RequestHeaders, response: r.ResponseHeaders}
}

type headersUnit struct {
	noUnit
	request, response []HeaderOp
}

func (u *headersUnit) reads(part requestPart) bool {
	for _, ops := range [2][]HeaderOp{u.request, u.response} {
		for _, op := range ops {
			for _, tp := range op.Value.parts {
				switch {
				case part == readsClientAddress && tp.kind == partClientAddress,
					part == readsMethod && tp.kind == partHeader && tp.text == ":method",
					part == readsAuthority && tp.kind == partHeader && tp.text == ":authority":
					return true
				}
			}
		}
	}
	return false
}

// step renders both lists while the request passes: the proxy drops the
// request headers before the response comes.
func (u *headersUnit) step(plan *Plan, req *Request, _ Env) bool {
	plan.Request = plan.render(plan.Request, u.request, req, true)
	plan.Response = plan.render(plan.Response, u.response, req, false)
	return true
}

// render appends ops with their values rendered for req to dst, leaving
// out sets and adds whose value must not be written, and, when ops edit
// req's own headers, removals of headers req does not have.
func (plan *Plan) render(dst []Edit, ops []HeaderOp, req *Request, ofReq bool) []Edit {
	for i := range ops {
		op := &ops[i]
		e := Edit{Kind: op.Kind, Name: op.Name}
		if op.Kind == HeaderRemove && ofReq {
			if _, ok := header(req, op.Name); !ok {
				continue
			}
		}
		if op.Kind != HeaderRemove {
			var ok bool
			if e.Value, ok = op.Value.Render(req, &plan.Decision); !ok {
				continue
			}
		}
		dst = append(dst, e)
	}
	return dst
}

// headers parses a route's "headers" block.
func (p *parser) headers(path string, v gjson.Result, routeName string) (request, response []HeaderOp) {
	o, ok := p.object(path, v, schemaHeaders)
	if !ok {
		return nil, nil
	}
	if rv, ok := o.value("request"); ok {
		request = p.headerOps(o.at("request"), rv, routeName)
	}
	if rv, ok := o.value("response"); ok {
		response = p.headerOps(o.at("response"), rv, routeName)
	}
	return request, response
}

// headerOps parses one "request" or "response" block into operations in
// apply order: remove, set, add.
func (p *parser) headerOps(path string, v gjson.Result, routeName string) []HeaderOp {
	o, ok := p.object(path, v, schemaHeaderOps)
	if !ok {
		return nil
	}
	const pseudoHint = `use "rewrite" to change the path or authority`
	var ops []HeaderOp
	if items, ok := o.list("remove"); ok {
		seen := map[string]bool{}
		for i, item := range items {
			ip := index(path+".remove", i)
			s, ok := p.str(ip, item)
			if !ok {
				continue
			}
			name, ok := p.headerName(ip, s, pseudoHint)
			if !ok {
				continue
			}
			if seen[name] {
				p.fail(ip, "duplicate header %q", name)
				continue
			}
			seen[name] = true
			ops = append(ops, HeaderOp{Kind: HeaderRemove, Name: name})
		}
	}
	for _, k := range []struct {
		field string
		kind  HeaderOpKind
	}{{"set", HeaderSet}, {"add", HeaderAdd}} {
		fv, ok := o.value(k.field)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, e := range p.entries(path+"."+k.field, fv) {
			name, ok := p.headerName(e.path, e.key, pseudoHint)
			if !ok {
				continue
			}
			if seen[name] && k.kind == HeaderSet {
				p.fail(e.path, "duplicate header %q", name)
				continue
			}
			seen[name] = true
			s, ok := p.headerValue(e.path, e.value)
			if !ok {
				continue
			}
			if t, ok := p.template(e.path, s, routeName); ok {
				ops = append(ops, HeaderOp{Kind: k.kind, Name: name, Value: t})
			}
		}
	}
	return ops
}

// template pre-parses a header value. %ROUTE_NAME% and %% are folded into
// the literal text at compile time.
func (p *parser) template(path, s, routeName string) (Template, bool) {
	var parts []templatePart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, templatePart{kind: partLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '%')
		if end < 0 {
			p.fail(path, "unterminated variable at byte %d; write %%%% for a literal percent", i)
			return Template{}, false
		}
		name := s[i+1 : i+1+end]
		i += end + 2
		switch {
		case name == "":
			lit.WriteByte('%')
		case name == "ROUTE_NAME":
			lit.WriteString(routeName)
		case name == "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
			flush()
			parts = append(parts, templatePart{kind: partClientAddress})
		case name == "DESTINATION":
			flush()
			parts = append(parts, templatePart{kind: partDestination})
		case strings.HasPrefix(name, "REQ(") && strings.HasSuffix(name, ")"):
			hn := strings.ToLower(name[len("REQ(") : len(name)-1])
			if !isToken(strings.TrimPrefix(hn, ":")) || strings.HasPrefix(hn, ":") && hn != ":authority" && hn != ":method" && hn != ":path" {
				p.fail(path, "%%%s%%: %q is not a valid header name", name, hn)
				return Template{}, false
			}
			flush()
			parts = append(parts, templatePart{kind: partHeader, text: hn})
		default:
			p.fail(path, "unknown variable %%%s%%; known: %%REQ(name)%%, %%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%%, %%ROUTE_NAME%%, %%DESTINATION%%, %%%% for a literal percent", name)
			return Template{}, false
		}
	}
	if len(parts) == 0 {
		return Template{literal: lit.String()}, true
	}
	flush()
	if len(parts) > maxStackParts {
		p.fail(path, "too many variables and text runs (%d, at most %d)", len(parts), maxStackParts)
		return Template{}, false
	}
	return Template{parts: parts}, true
}
