package policy

import (
	"time"

	"github.com/tidwall/gjson"
)

// RouteHeader is the request header the plugin writes the matched route's
// name to on the routes that ask something of the route table (Table), so
// the route table can tell two policy routes sharing a destination apart.
const RouteHeader = "x-wasmgate-route"

// Table is what a route asks of the route table: the proxy does it, the
// plugin only names the route (RouteHeader). Rendered route tables put, per
// (route, destination), an entry matching the hint and the route name.
type Table struct {
	// Timeout is the route's "timeout", 0 when unset.
	Timeout time.Duration
	// Retries is the route's "retries", nil when unset.
	Retries *Retries
	// CORS is the route's "corsPolicy", nil when unset.
	CORS *CORSPolicy
	// Mirrors are the route's "mirror" (with "mirrorPercentage") and
	// "mirrors", in that order.
	Mirrors []Mirror
	// Delay is the route's "fault.delay", nil when unset.
	Delay *Delay
}

// Retries is Istio's HTTPRetry.
type Retries struct {
	Attempts uint32
	// PerTryTimeout is 0 when unset.
	PerTryTimeout time.Duration
	// RetryOn is the comma-separated list of conditions, "" when unset.
	RetryOn string
}

// CORSPolicy is Istio's CorsPolicy.
type CORSPolicy struct {
	AllowOrigins  []OriginMatch
	AllowMethods  []string
	AllowHeaders  []string
	ExposeHeaders []string
	// MaxAge is 0 when unset.
	MaxAge time.Duration
	// AllowCredentials is nil when unset.
	AllowCredentials *bool
}

// OriginMatch is one StringMatch of CORSPolicy.AllowOrigins: exactly one
// field is set.
type OriginMatch struct {
	Exact, Prefix, Regex string
}

// Mirror is one destination requests are copied to.
type Mirror struct {
	// Destination has no Index and no Weight; its Hint is the default one
	// (host, "|subset").
	Destination Destination
	// PerMillion is the share of requests copied, in parts per million
	// (1000000: every request), as Istio hands it to Envoy.
	PerMillion uint64
}

// Delay is Istio's HTTPFaultInjection.Delay (fixedDelay).
type Delay struct {
	// PerMillion is the share of requests delayed, in parts per million
	// (1000000: every request).
	PerMillion uint64
	FixedDelay time.Duration
}

// table returns r.Table, creating it.
func table(r *Route) *Table {
	if r.Table == nil {
		r.Table = &Table{}
	}
	return r.Table
}

func init() {
	// After every feature that fills Route.Table; it owns no field.
	register(&feature{order: 90, compile: compileRouteHeader})
}

// compileRouteHeader gives a route with a Table the unit writing
// RouteHeader.
func compileRouteHeader(_ *parser, _ *object, r *Route) unit {
	if r.Table == nil {
		return nil
	}
	return &routeHeaderUnit{name: r.Name}
}

// routeHeaderUnit writes RouteHeader.
type routeHeaderUnit struct {
	noUnit
	name string
}

func (u *routeHeaderUnit) step(plan *Plan, _ *Request, _ Env) bool {
	plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: RouteHeader, Value: u.name})
	plan.RouteChanged = true
	return true
}

// durationDecl declares a duration a route table takes: a Go duration of at
// least 1ms.
func durationDecl(doc string) *Schema {
	return &Schema{Kind: KindString, Pattern: positiveDurationPattern, Doc: doc + ` A Go duration of at least 1ms, e.g. "1s", "250ms".`}
}

// duration reads a durationDecl.
func (p *parser) duration(path string, v gjson.Result) (time.Duration, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.fail(path, "%q is not a duration", s)
	case d < time.Millisecond:
		p.fail(path, "must be at least 1ms, got %q", s)
	default:
		return d, true
	}
	return 0, false
}
