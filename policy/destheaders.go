package policy

// Per-destination headers: Istio's HTTPRouteDestination.headers, the
// header operations of one entry of a route's "route" list, applied once
// that destination is picked.

func init() {
	// The field belongs to each "route" entry; the split feature parses the
	// entries and leaves it to this one.
	schemaDestination.Fields = append(schemaDestination.Fields, optional("headers", schemaHeaders))
	register(&feature{order: 42, compile: compileDestinationHeaders})
}

// destinationOps are the header operations of one destination.
type destinationOps struct {
	request, response []HeaderOp
}

// compileDestinationHeaders compiles the "headers" of every entry of the
// route's "route" list.
func compileDestinationHeaders(p *parser, route *object, r *Route) unit {
	items, ok := route.values["route"]
	if !ok || r.Split == nil {
		return nil // no split, or one with errors already reported
	}
	ops := make([]destinationOps, len(r.Split.Destinations))
	found := false
	for i, item := range items.Array() {
		hv := member(item, "headers")
		if !hv.Exists() {
			continue
		}
		ops[i].request, ops[i].response = p.headers(index(route.at("route"), i)+".headers", hv, r.Name)
		found = true
	}
	if !found {
		return nil
	}
	return &destinationHeadersUnit{ops: ops}
}

type destinationHeadersUnit struct {
	noUnit
	ops []destinationOps // by Destination.Index
}

func (u *destinationHeadersUnit) reads(part requestPart) bool {
	for _, o := range u.ops {
		if (&headersUnit{request: o.request, response: o.response}).reads(part) {
			return true
		}
	}
	return false
}

// step renders the picked destination's operations after the route's
// own: a value both set is the destination's.
func (u *destinationHeadersUnit) step(plan *Plan, req *Request, _ Env) bool {
	o := &u.ops[plan.Destination.Index]
	plan.Request = plan.render(plan.Request, o.request, req, true)
	plan.Response = plan.render(plan.Response, o.response, req, false)
	return true
}
