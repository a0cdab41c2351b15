package policy

var schemaMirror = &Schema{Kind: KindObject, Doc: "One destination requests are copied to.",
	Fields: []*Field{
		required("destination", schemaService),
		optional("percentage", schemaPercentage),
	}}

// schemaMirrorTarget is schemaService, documented as "mirror".
var schemaMirrorTarget = func() *Schema {
	s := *schemaService
	s.Doc = "A destination every request (or mirrorPercentage of them) is copied to; its answer is ignored (done by the route table)."
	return &s
}()

func init() {
	register(&feature{order: 86, fields: []*Field{
		optional("mirror", schemaMirrorTarget),
		optional("mirrorPercentage", schemaPercentage),
		optional("mirrors", &Schema{Kind: KindList, Items: schemaMirror, MinItems: 1,
			Doc: "Destinations requests are copied to, each with its own percentage (done by the route table)."}),
	}, requires: [][2]string{{"mirrorPercentage", "mirror"}}, excludes: [][2]string{{"mirror", "mirrors"}}, compile: compileMirror})
}

// compileMirror compiles "mirror", "mirrorPercentage" and "mirrors" into
// Route.Table.
func compileMirror(p *parser, route *object, r *Route) unit {
	if route.has("mirror") && !route.excludes("mirror") {
		return nil
	}
	if route.has("mirrorPercentage") && !route.requires("mirrorPercentage") {
		return nil
	}
	var mirrors []Mirror
	before := len(p.errs)
	if v, ok := route.value("mirror"); ok {
		m := Mirror{PerMillion: perMillion}
		p.destinationTarget(route.at("mirror"), v, &m.Destination)
		m.Destination.Hint = defaultHint(m.Destination)
		if pv, ok := route.value("mirrorPercentage"); ok {
			m.PerMillion, _ = p.percentage(route.at("mirrorPercentage"), pv)
		}
		mirrors = append(mirrors, m)
	}
	if items, ok := route.list("mirrors"); ok {
		for i, item := range items {
			at := index(route.at("mirrors"), i)
			o, ok := p.object(at, item, schemaMirror)
			if !ok {
				continue
			}
			m := Mirror{PerMillion: perMillion}
			if dv, ok := o.value("destination"); ok {
				p.destinationTarget(o.at("destination"), dv, &m.Destination)
				m.Destination.Hint = defaultHint(m.Destination)
			}
			if pv, ok := o.value("percentage"); ok {
				m.PerMillion, _ = p.percentage(o.at("percentage"), pv)
			}
			mirrors = append(mirrors, m)
		}
	}
	if len(mirrors) == 0 || len(p.errs) != before {
		return nil
	}
	table(r).Mirrors = mirrors
	return nil
}
