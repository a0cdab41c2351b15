package policy

import "time"

var schemaCORS = &Schema{Kind: KindObject, Def: "corsPolicy", MinFields: 1,
	Doc: "How the proxy answers CORS preflights and which CORS headers it adds to responses (done by the route table), as Istio's CorsPolicy.",
	Fields: []*Field{
		optional("allowOrigins", &Schema{Kind: KindList, Items: schemaPlainMatch, MinItems: 1,
			Doc: "The origins allowed: a request's Origin matching any of them."}),
		optional("allowMethods", headerList("The methods allowed (Access-Control-Allow-Methods).")),
		optional("allowHeaders", headerList("The request headers allowed (Access-Control-Allow-Headers).")),
		optional("exposeHeaders", headerList("The response headers a browser may expose (Access-Control-Expose-Headers).")),
		optional("maxAge", durationDecl("How long a preflight's answer may be cached (Access-Control-Max-Age), in whole seconds.")),
		optional("allowCredentials", &Schema{Kind: KindBoolean,
			Doc: "Whether credentialed requests are allowed (Access-Control-Allow-Credentials)."}),
	}}

func headerList(doc string) *Schema {
	return &Schema{Kind: KindList, MinItems: 1, Doc: doc,
		Items: &Schema{Kind: KindString, Pattern: tokenPattern + "|^\\*$", Doc: "A name (an RFC 9110 token), or \"*\"."}}
}

func init() {
	register(&feature{order: 84, fields: []*Field{optional("corsPolicy", schemaCORS)}, compile: compileCORS})
}

// compileCORS compiles "corsPolicy" into Route.Table.
func compileCORS(p *parser, route *object, r *Route) unit {
	v, ok := route.value("corsPolicy")
	if !ok {
		return nil
	}
	o, ok := p.object(route.at("corsPolicy"), v, schemaCORS)
	if !ok || !o.minFields() {
		return nil
	}
	c := &CORSPolicy{}
	before := len(p.errs)
	if items, ok := o.list("allowOrigins"); ok {
		for i, item := range items {
			m, ok := p.stringMatch(index(o.at("allowOrigins"), i), item, targetMethod, false)
			if !ok {
				continue
			}
			switch m.kind {
			case matchExact:
				c.AllowOrigins = append(c.AllowOrigins, OriginMatch{Exact: m.value})
			case matchPrefix:
				c.AllowOrigins = append(c.AllowOrigins, OriginMatch{Prefix: m.value})
			case matchRegex:
				c.AllowOrigins = append(c.AllowOrigins, OriginMatch{Regex: member(item, "regex").Str})
			}
		}
	}
	c.AllowMethods = p.names(o, "allowMethods")
	c.AllowHeaders = p.names(o, "allowHeaders")
	c.ExposeHeaders = p.names(o, "exposeHeaders")
	if mv, ok := o.value("maxAge"); ok {
		if c.MaxAge, ok = p.duration(o.at("maxAge"), mv); ok && c.MaxAge%time.Second != 0 {
			p.fail(o.at("maxAge"), "must be whole seconds, got %q", mv.Str)
		}
	}
	if bv, ok := o.value("allowCredentials"); ok {
		if b, ok := p.boolean(o.at("allowCredentials"), bv); ok {
			c.AllowCredentials = &b
		}
	}
	if len(p.errs) != before {
		return nil
	}
	table(r).CORS = c
	return nil
}

// names reads a headerList field.
func (p *parser) names(o *object, name string) []string {
	items, ok := o.list(name)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, ok := p.str(index(o.at(name), i), item)
		if !ok {
			continue
		}
		if s != "*" && !isToken(s) {
			p.fail(index(o.at(name), i), "%q is not a valid name (an RFC 9110 token) or \"*\"", s)
			continue
		}
		out = append(out, s)
	}
	return out
}
