package policy

import (
	"encoding/base64"

	"github.com/tidwall/gjson"
)

// DirectResponseDetails is the response code detail of a direct response.
const DirectResponseDetails = "wasmgate_direct_response"

// maxDirectBody bounds a direct response's body as Istio's validation does.
const maxDirectBody = 1 << 20

var (
	schemaBody = &Schema{Kind: KindObject, OneOf: true, Doc: "The body: exactly one of these.",
		Fields: []*Field{
			optional("string", strDecl("The body as text.")),
			optional("bytes", &Schema{Kind: KindString, Pattern: `^[A-Za-z0-9+/]*={0,2}$`,
				Doc: "The body as base64 (standard alphabet, padded), as Istio's bytes field is written in YAML and JSON."}),
		}}

	schemaDirectResponse = &Schema{Kind: KindObject, Def: "directResponse",
		Doc: "Answer with a fixed response instead of forwarding, as Istio's HTTPDirectResponse.",
		Fields: []*Field{
			required("status", intDecl("The response status.", 200, 599)),
			optional("body", schemaBody),
		}}
)

func init() {
	register(&feature{order: 56,
		fields:   []*Field{optional("directResponse", schemaDirectResponse)},
		excludes: [][2]string{{"directResponse", "route"}, {"directResponse", "fault"}, {"directResponse", "rewrite"}},
		compile:  compileDirectResponse})
}

// compileDirectResponse compiles the "directResponse" block.
func compileDirectResponse(p *parser, route *object, _ *Route) unit {
	v, ok := route.value("directResponse")
	// With a redirect, the redirect reports the conflict.
	if !ok || route.has("redirect") || !route.excludes("directResponse") {
		return nil
	}
	path := route.at("directResponse")
	o, ok := p.object(path, v, schemaDirectResponse)
	if !ok {
		return nil
	}
	before := len(p.errs)
	u := &directUnit{}
	if n, ok := o.integer("status"); ok {
		u.status = uint32(n)
	}
	if bv, ok := o.value("body"); ok {
		u.body = p.body(o.at("body"), bv)
	}
	if len(p.errs) != before {
		return nil
	}
	return u
}

func (p *parser) body(path string, v gjson.Result) string {
	f, val, ok := p.oneOf(path, v, schemaBody)
	if !ok {
		return ""
	}
	path += "." + f.Name
	s, ok := p.str(path, val)
	if !ok {
		return ""
	}
	if f.Name == "bytes" {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			p.fail(path, "is not base64: %s", err)
			return ""
		}
		s = string(b)
	}
	if len(s) > maxDirectBody {
		p.fail(path, "is %d bytes; at most %d", len(s), maxDirectBody)
		return ""
	}
	return s
}

type directUnit struct {
	noUnit
	status   uint32
	body     string
	answered Counter
}

func (u *directUnit) counters(def func(string) Counter) { u.answered = def(CounterDirectResponse) }

func (u *directUnit) step(plan *Plan, _ *Request, _ Env) bool {
	plan.Counters = append(plan.Counters, u.answered)
	plan.answer(u.status, DirectResponseDetails, plan.routeResponseHeaders(plan.reply.Headers[:0]), u.body)
	return false
}

func (u *directUnit) describe(line string, plan *Plan) string {
	if plan.Reply != nil && plan.Reply.Details == DirectResponseDetails {
		line += " direct_response"
	}
	return line
}

// routeResponseHeaders appends the route's rendered response header sets
// and adds to dst: Envoy applies a route's response headers to its direct
// responses and redirects too.
func (plan *Plan) routeResponseHeaders(dst [][2]string) [][2]string {
	for _, e := range plan.Response {
		if e.Kind != HeaderRemove {
			dst = append(dst, [2]string{e.Name, e.Value})
		}
	}
	return dst
}
