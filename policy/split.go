package policy

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// DefaultHintHeader is the request header the chosen destination's hint is
// written to when "split.hintHeader" is not set.
const DefaultHintHeader = "x-wasmgate-destination"

// maxWeight bounds one weight like Istio's int32 field, so the sum of any
// number of weights fits comfortably in 64 bits.
const maxWeight = 1<<31 - 1

type stickyKind uint8

const (
	stickyNone stickyKind = iota
	stickyHeader
	stickyCookie
	stickyClientAddress
)

// stickyKey says where a sticky pick takes its key from.
type stickyKey struct {
	kind stickyKind
	name string // header or cookie name
}

// pick chooses a destination: the override header when it names one, else a
// weighted pick driven by the sticky key's hash, or by random when there is
// no sticky key or the request does not carry it.
func (s *Split) pick(req *Request, random uint64) (d *Destination, overridden bool) {
	if s.override != "" {
		if v, ok := header(req, s.override); ok && v != "" {
			for i := range s.Destinations {
				if v == s.Destinations[i].Hint || v == s.Destinations[i].Host {
					return &s.Destinations[i], true
				}
			}
		}
	}
	if key := s.sticky.value(req); key != "" {
		random = keyHash(key)
	}
	// The high word of random×sum is uniform over [0, sum) without the bias
	// of a modulo.
	point, _ := bits.Mul64(random, s.cumulative[len(s.cumulative)-1])
	for i, c := range s.cumulative {
		if point < c {
			return &s.Destinations[i], false
		}
	}
	return &s.Destinations[len(s.Destinations)-1], false // unreachable: point < sum
}

func (k stickyKey) value(req *Request) string {
	switch k.kind {
	case stickyHeader:
		v, _ := header(req, k.name)
		return v
	case stickyCookie:
		v, _ := header(req, "cookie")
		return cookie(v, k.name)
	case stickyClientAddress:
		return clientAddress(req)
	}
	return ""
}

// cookie returns the value of the named cookie in a Cookie header.
func cookie(h, name string) string {
	for h != "" {
		var pair string
		pair, h, _ = strings.Cut(h, ";")
		k, v, ok := strings.Cut(pair, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// keyHash is FNV-1a 64 of s followed by a 64-bit finalizer (splitmix64's),
// so that keys differing only in their last bytes still spread over the
// whole range. It is stable across processes and restarts.
func keyHash(s string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

var (
	schemaPortSelector = &Schema{Kind: KindObject, Doc: "Istio's PortSelector.", Fields: []*Field{
		required("number", intDecl("The service port.", 1, 65535)),
	}}

	schemaService = &Schema{Kind: KindObject, Doc: "The upstream service, as Istio's Destination.", Fields: []*Field{
		required("host", schemaHeaderValue),
		optional("subset", &Schema{Kind: KindString, Pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
			Doc: "A subset of the host (a DestinationRule subset name)."}),
		optional("port", &Schema{Kind: KindInteger, Min: 1, Max: 65535, Alt: schemaPortSelector,
			Doc: "The service port: a number, or {\"number\": N} as Istio writes it."}),
	}}

	schemaDestination = &Schema{Kind: KindObject, Def: "destination",
		Doc: "One weighted destination.",
		Fields: []*Field{
			required("destination", schemaService),
			optional("weight", withDefault(intDecl("Relative weight; required when \"route\" has more than one destination.", 0, maxWeight), 100)),
			optional("hint", &Schema{Kind: KindString, Pattern: headerValuePattern,
				Doc: "The value written to the hint header; default: destination.host."}),
		}}

	schemaStickyBy = &Schema{Kind: KindObject, OneOf: true,
		Doc: "What keeps a client on one destination: exactly one of these.",
		Fields: []*Field{
			keyHeader,
			optional("cookie", &Schema{Kind: KindString, Pattern: tokenPattern, Doc: "A cookie name."}),
			keyClientAddress,
		}}

	schemaSplit = &Schema{Kind: KindObject, Def: "split", Doc: "How the destination is chosen and announced.",
		Fields: []*Field{
			optional("hintHeader", withDefault(&Schema{Kind: KindString, Pattern: tokenPattern,
				Doc: "The request header the chosen destination's hint is written to."}, DefaultHintHeader)),
			optional("stickyBy", schemaStickyBy),
			optional("overrideHeader", &Schema{Kind: KindString, Pattern: tokenPattern,
				Doc: "A request header naming a destination's hint to use instead of the weighted choice."}),
		}}
)

func init() {
	register(&feature{order: 40,
		fields: []*Field{
			optional("route", &Schema{Kind: KindList, Items: schemaDestination, MinItems: 1, RequiredWhenMany: []string{"weight"},
				Doc: "Weighted destinations."}),
			optional("split", schemaSplit),
		},
		requires: [][2]string{{"split", "route"}},
		compile:  compileSplit})
}

// compileSplit compiles the "route" list and the "split" block into
// Route.Split.
func compileSplit(p *parser, route *object, r *Route) unit {
	if !route.has("split") || route.requires("split") {
		if items, ok := route.list("route"); ok {
			r.Split = p.split(route, items)
		}
	}
	if r.Split == nil {
		return nil
	}
	return &splitUnit{s: r.Split}
}

type splitUnit struct {
	noUnit
	s      *Split
	picked []Counter // by Destination.Index
}

func (u *splitUnit) counters(def func(string) Counter) {
	u.picked = make([]Counter, len(u.s.Destinations))
	for i, d := range u.s.Destinations {
		u.picked[i] = def(destinationCounter(d.Hint))
	}
}

func (u *splitUnit) reads(part requestPart) bool {
	return part == readsClientAddress && u.s.sticky.kind == stickyClientAddress
}

func (u *splitUnit) choose(req *Request, _ string, _ int, random uint64, d *Decision) {
	d.Destination, d.Overridden = u.s.pick(req, random)
}

func (u *splitUnit) step(plan *Plan, _ *Request, _ Env) bool {
	plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: u.s.HintHeader, Value: plan.Destination.Hint})
	plan.RouteChanged = true
	return true
}

// admitted counts the destination once every limit admitted the request.
func (u *splitUnit) admitted(plan *Plan) {
	plan.Counters = append(plan.Counters, u.picked[plan.Destination.Index])
}

func (u *splitUnit) describe(line string, plan *Plan) string {
	line += " destination=" + strconv.Quote(plan.Destination.Hint)
	if plan.Overridden {
		line += " (override)"
	}
	return line
}

// destinationCounter is the suffix of the counter of the destination whose
// hint is hint.
func destinationCounter(hint string) string {
	return "destination." + metricSegment(hint) + "." + CounterPicked
}

// metricSegment makes s one segment of a dotted metric name.
func metricSegment(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// split parses a route's "route" list and optional "split" block.
func (p *parser) split(route *object, items []gjson.Result) *Split {
	path := route.at("route")
	s := &Split{HintHeader: DefaultHintHeader, Destinations: make([]Destination, 0, len(items))}
	var sum uint64
	valid := true
	hints := map[string]int{}
	for i, item := range items {
		d, ok := p.destination(index(path, i), i, item, len(items) > 1)
		if !ok {
			valid = false
			continue
		}
		if first, dup := hints[d.Hint]; dup {
			p.fail(index(path, i), "hint %q is also the hint of route[%d]; set a distinct \"hint\"", d.Hint, first)
			valid = false
			continue
		}
		hints[d.Hint] = i
		sum += uint64(d.Weight)
		s.cumulative = append(s.cumulative, sum)
		s.Destinations = append(s.Destinations, d)
	}
	if valid && sum == 0 {
		p.fail(path, "weights sum to 0; at least one must be positive")
		valid = false
	}
	if sv, ok := route.value("split"); ok && !p.splitOptions(route.at("split"), sv, s) {
		valid = false
	}
	if !valid {
		return nil
	}
	return s
}

func (p *parser) destination(path string, i int, v gjson.Result, weightRequired bool) (Destination, bool) {
	d := Destination{Index: i, Weight: 100}
	o, ok := p.object(path, v, schemaDestination)
	if !ok {
		return d, false
	}
	valid := true
	if dv, ok := o.value("destination"); !ok || !p.destinationTarget(o.at("destination"), dv, &d) {
		valid = false
	}
	if o.has("weight") {
		w, ok := o.integer("weight")
		d.Weight = uint32(w)
		valid = valid && ok
	} else if weightRequired {
		p.fail(path, `missing field "weight" (required when "route" has more than one destination)`)
		valid = false
	}
	d.Hint = defaultHint(d)
	if hv, ok := o.value("hint"); ok {
		d.Hint, ok = p.headerValue(o.at("hint"), hv)
		valid = valid && ok
	}
	return d, valid
}

// defaultHint is a destination's hint when the policy sets none: its host,
// and "|" and its subset when it has one.
func defaultHint(d Destination) string {
	if d.Subset != "" {
		return d.Host + "|" + d.Subset
	}
	return d.Host
}

// destinationTarget parses a "destination" object as Istio writes it:
// {"host", "subset", "port": {"number"}}, with "port" also accepted as a
// bare number.
func (p *parser) destinationTarget(path string, v gjson.Result, d *Destination) bool {
	o, ok := p.object(path, v, schemaService)
	if !ok {
		return false
	}
	before := len(p.errs)
	if hv, ok := o.value("host"); ok {
		d.Host, _ = p.headerValue(o.at("host"), hv)
	}
	if d.Subset, ok = o.str("subset"); ok && !isDNSLabel(d.Subset) {
		p.fail(o.at("subset"), "%q is not a valid subset name (lower-case letters, digits and '-', at most 63)", d.Subset)
	}
	if pv, ok := o.value("port"); ok {
		var port uint64
		if pv.IsObject() {
			// Istio's form, the declaration's Alt.
			po, ok := p.object(o.at("port"), pv, schemaPortSelector)
			if !ok {
				return false
			}
			if port, ok = po.integer("number"); !ok {
				return false
			}
		} else {
			port, _ = o.integer("port")
		}
		d.Port = uint32(port)
	}
	return len(p.errs) == before
}

// isDNSLabel reports whether s is an RFC 1123 label, which Istio requires of
// a subset name.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (p *parser) splitOptions(path string, v gjson.Result, s *Split) bool {
	o, ok := p.object(path, v, schemaSplit)
	if !ok {
		return false
	}
	before := len(p.errs)
	if hv, ok := o.value("hintHeader"); ok {
		s.HintHeader, _ = p.headerField(o.at("hintHeader"), hv)
	}
	if ov, ok := o.value("overrideHeader"); ok {
		s.override, _ = p.headerField(o.at("overrideHeader"), ov)
	}
	if sv, ok := o.value("stickyBy"); ok {
		s.sticky = p.stickyBy(o.at("stickyBy"), sv)
	}
	return len(p.errs) == before
}

func (p *parser) stickyBy(path string, v gjson.Result) stickyKey {
	f, val, ok := p.oneOf(path, v, schemaStickyBy)
	if !ok {
		return stickyKey{}
	}
	switch f.Name {
	case "header":
		name, _ := p.headerField(path+".header", val)
		return stickyKey{kind: stickyHeader, name: name}
	case "cookie":
		name, ok := p.str(path+".cookie", val)
		if ok && !isToken(name) {
			p.fail(path+".cookie", "%q is not a valid cookie name", name)
		}
		return stickyKey{kind: stickyCookie, name: name}
	default:
		p.flag(path+".clientAddress", val, f.Value)
		return stickyKey{kind: stickyClientAddress}
	}
}
