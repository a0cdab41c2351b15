package policy

import "strconv"

// Choose makes the choices of one request and writes them to d, which it
// resets first: the route, the rewrite, the destination and the rate-limit
// key. Decide builds a whole Plan on top of it. The first route whose match holds wins; with none, d.Route
// is nil and the request is left alone.
//
// random must be a uniformly random 64-bit number. It is used only for a
// weighted pick that is not sticky (no sticky key configured, or the
// request lacks it).
//
// # Notes
//
// Choose reads the Policy only, so it is safe for concurrent use. It does
// not allocate, except for a rewritten :path that is not a piece of the
// original one or of the policy (e.g. "/api/x" → "/v2/x": one string, since
// Go strings cannot share memory with two sources) and for regex rewrites.
func (p *Policy) Choose(req *Request, random uint64, d *Decision) {
	if d == nil {
		return
	}
	*d = Decision{pathBuf: d.pathBuf}
	if req == nil {
		return
	}
	path, query := splitQuery(req.Path)
	r, prefix := p.firstMatch(req, path, query)
	if r == nil {
		return
	}
	d.Route = r
	for _, u := range r.units {
		u.choose(req, path, prefix, random, d)
	}
}

// Decide plans what to do with one request and writes the plan to plan,
// which it resets first. It decides on the normal form of the path
// (normalize), which the plan forwards when the client spelled it
// otherwise. A request no route matches gets a plan that only removes
// client-sent hint headers (and forwards the normal path).
//
// # Notes
//
// Decide reads the Policy and writes buckets only through env, so it is
// safe for concurrent use with distinct plans. It allocates only what
// Choose does, plus rendered header values that mix text and variables.
// Counters are bumped for admitted requests only where they describe
// forwarding: a rate-limited request counts as matched and rate_limited,
// never as picked for a destination.
func (p *Policy) Decide(req *Request, env Env, plan *Plan) {
	plan.reset()
	req = plan.normalize(req)
	for _, name := range p.hintHeaders {
		if _, ok := header(req, name); ok {
			plan.Request = append(plan.Request, Edit{Kind: HeaderRemove, Name: name})
		}
	}
	p.Choose(req, env.Random(), &plan.Decision)
	r := plan.Route
	if r == nil {
		return
	}
	for _, u := range r.units {
		if !u.step(plan, req, env) {
			return
		}
	}
	plan.admit()
}

// admit appends what every unit counts for a request that goes on.
func (plan *Plan) admit() {
	for _, u := range plan.Route.units {
		u.admitted(plan)
	}
}

func (plan *Plan) reset() {
	clear(plan.Request)
	clear(plan.Response)
	plan.Decision = Decision{pathBuf: &plan.pathBuf}
	plan.Request, plan.Response, plan.Counters = plan.Request[:0], plan.Response[:0], plan.Counters[:0]
	plan.Reply, plan.RouteChanged, plan.Limit, plan.Call = nil, false, LimitVerdict{}, nil
	clear(plan.reply.Headers)
	plan.reply = Reply{Headers: plan.reply.Headers[:0]}
}

// Describe returns the debug line of a decided plan for req: the route and
// what each of its units did, or "route=-" when no route matched.
func (plan *Plan) Describe(req *Request) string {
	line := "request " + strconv.Quote(req.Path) + " route="
	if plan.Route == nil {
		return line + "-"
	}
	line += plan.Route.Name
	for _, u := range plan.Route.units {
		line = u.describe(line, plan)
	}
	return line
}

// routeReads reports whether any of r's units may read part.
func (r *Route) routeReads(part requestPart) bool {
	for _, u := range r.units {
		if u.reads(part) {
			return true
		}
	}
	return false
}

// UsesClientAddress reports whether any route may read
// Request.ClientAddress (a sticky or rate-limit key, or
// %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%), so a caller can skip fetching
// it otherwise.
func (p *Policy) UsesClientAddress() bool { return p.usesClientAddress }

// UsesMethod and UsesAuthority report whether any route may read
// Request.Method or Request.Authority (a match condition or a %REQ()%
// value), so a caller can skip fetching them otherwise.
func (p *Policy) UsesMethod() bool    { return p.usesMethod }
func (p *Policy) UsesAuthority() bool { return p.usesAuthority }

// UsesScheme and UsesPort report whether any route may read
// Request.Scheme or Request.Port (a match condition or a redirect), so a
// caller fills them only then.
func (p *Policy) UsesScheme() bool { return p.usesScheme }
func (p *Policy) UsesPort() bool   { return p.usesPort }
