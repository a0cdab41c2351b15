package policy

import (
	"slices"
	"strconv"

	"github.com/tidwall/gjson"
)

// A feature is one kind of block a route may have ("rewrite", "rateLimit",
// ...): the route fields it owns and how they compile into the route's
// unit. Each feature lives in one file that registers it from an init
// function; the route declaration, the parser, the counters, Decide and
// the "what does the policy read" answers all loop over the registered
// features, so none of them names a feature.
//
// How to add a feature: see docs/RATIONALE.md ("One feature, one file").
// In short: policy/<feature>.go (declaration, compile, unit, init calling
// register), its test, its testdata, docs/policy.md and the regenerated
// docs/policy.schema.json.
type feature struct {
	// order places the feature among the others: its fields in the route
	// declaration (and so in the docs and error messages), its counters
	// and its step in the plan. Existing features use multiples of 10.
	order int
	// fields are the route fields the feature owns, in documentation order.
	fields []*Field
	// requires are route-level {a, b} pairs: field a only with field b.
	requires [][2]string
	// excludes are route-level {a, b} pairs: fields a and b never together.
	excludes [][2]string
	// compile builds the feature's unit from the route object (none of the
	// feature's fields may be set). It returns nil when the route lacks the
	// feature or has errors (reported to p).
	compile func(p *parser, route *object, r *Route) unit
}

// features are the registered features, in order.
var features []*feature

// register adds f to the features and its fields to the route declaration,
// both in order.
func register(f *feature) {
	at, _ := slices.BinarySearchFunc(features, f.order, func(g *feature, order int) int { return g.order - order })
	features = slices.Insert(features, at, f)
	// The route declaration starts with "name", then every feature's fields.
	pos := 1
	for _, g := range features[:at] {
		pos += len(g.fields)
	}
	schemaRoute.Fields = slices.Insert(schemaRoute.Fields, pos, f.fields...)
	schemaRoute.Requires = append(schemaRoute.Requires, f.requires...)
	schemaRoute.Excludes = append(schemaRoute.Excludes, f.excludes...)
}

// requestPart is a part of a request that a unit may read, so the filter
// can skip fetching it when no unit does.
type requestPart uint8

const (
	readsMethod requestPart = iota
	readsAuthority
	readsClientAddress
	readsScheme
	readsPort
)

// unit is one feature of one compiled route. Parse builds a route's units
// once; requests only call them.
type unit interface {
	// counters names the unit's counters, once: def takes a suffix of the
	// route's counter prefix (see RouteCounter).
	counters(def func(name string) Counter)
	// reads reports whether the unit may read part of a request.
	reads(part requestPart) bool
	// choose writes the unit's choice for req to d: path is req.Path
	// without its query, prefix the length of the uri prefix the route
	// matched (-1 when none), random as in Choose.
	choose(req *Request, path string, prefix int, random uint64, d *Decision)
	// step appends the unit's part of the plan. It returns false when the
	// plan ends there: a local reply, or a call to wait for.
	step(plan *Plan, req *Request, env Env) bool
	// admitted appends what counts once every step admitted the request.
	admitted(plan *Plan)
	// describe appends the unit's part of the debug line of plan.
	describe(line string, plan *Plan) string
}

// noUnit implements every unit method as doing nothing; units embed it
// and implement what they do.
type noUnit struct{}

func (noUnit) counters(func(string) Counter)                   {}
func (noUnit) reads(requestPart) bool                          { return false }
func (noUnit) choose(*Request, string, int, uint64, *Decision) {}
func (noUnit) step(*Plan, *Request, Env) bool                  { return true }
func (noUnit) admitted(*Plan)                                  {}
func (noUnit) describe(line string, _ *Plan) string            { return line }

func (p *parser) route(path string, i int, v gjson.Result) *Route {
	o, ok := p.object(path, v, schemaRoute)
	if !ok {
		return nil
	}
	r := &Route{Name: "route-" + strconv.Itoa(i), Index: i}
	if name, ok := o.str("name"); ok {
		if validName(name) {
			r.Name = name
		} else {
			p.fail(o.at("name"), "%q is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -", name)
		}
	}
	for _, f := range features {
		if u := f.compile(p, o, r); u != nil {
			r.units = append(r.units, u)
		}
	}
	return r
}

// compilePlans names every counter of the policy and collects the hint
// headers, once, so plans carry only indices.
func (p *Policy) compilePlans() {
	seen := map[string]bool{}
	for _, r := range p.routes {
		def := func(name string) Counter {
			p.counters = append(p.counters, RouteCounter(r.Name, name))
			return Counter(len(p.counters) - 1)
		}
		for _, u := range r.units {
			u.counters(def)
		}
		if s := r.Split; s != nil && !seen[s.HintHeader] {
			seen[s.HintHeader] = true
			p.hintHeaders = append(p.hintHeaders, s.HintHeader)
		}
		// The route table routes on RouteHeader too: a client must not send it.
		if r.Table != nil && !seen[RouteHeader] {
			seen[RouteHeader] = true
			p.hintHeaders = append(p.hintHeaders, RouteHeader)
		}
	}
}
