package policy

func init() {
	register(&feature{order: 80, fields: []*Field{optional("timeout", durationDecl(
		"How long the proxy waits for the upstream's response, retries included, before answering 504 (done by the route table)."))},
		compile: compileTimeout})
}

// compileTimeout compiles "timeout" into Route.Table.
func compileTimeout(p *parser, route *object, r *Route) unit {
	v, ok := route.value("timeout")
	if !ok {
		return nil
	}
	d, ok := p.duration(route.at("timeout"), v)
	if !ok {
		return nil
	}
	table(r).Timeout = d
	return nil
}
