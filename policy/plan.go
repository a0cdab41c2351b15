package policy

import "strings"

// CASRetries bounds the compare-and-swap attempts on a contended bucket.
// Each retry means another worker took a token in between, so a handful
// suffices; after the last one the limit's onContention decides.
const CASRetries = 8

// MetricPrefix starts every counter name; the proxy adds its own prefix
// for Wasm metrics in front of it.
const MetricPrefix = "wasmgate."

// Counter is one of a policy's counters: an index into Policy.Counters.
type Counter uint32

// Edit is one change to a header map. Name may be a pseudo-header
// (":path", ":authority").
type Edit struct {
	Kind  HeaderOpKind
	Name  string
	Value string
}

// Reply is a response the proxy sends itself instead of forwarding the
// request.
type Reply struct {
	Status uint32
	// Details is the response code detail the proxy logs
	// (%RESPONSE_CODE_DETAILS%).
	Details string
	Headers [][2]string
	Body    string
}

// RateLimitedDetails is the response code detail of a rate-limit reply.
const RateLimitedDetails = "wasmgate_rate_limited"

// Env is what Decide needs from the proxy besides the request: time,
// randomness and the rate-limit buckets every worker shares. It is passed
// in so that tests are exact.
type Env interface {
	// Now returns the time in Unix nanoseconds. Decide calls it at most
	// once per request, and only for a route with a rate limit.
	Now() int64
	// Random returns a uniformly random 64-bit number.
	Random() uint64
	// Buckets returns the store of rl's buckets.
	Buckets(rl *RateLimit) BucketStore
}

// Plan is everything to do for one request, in order, as Decide wrote it:
// the filter applies a plan without knowing which features produced it.
// Reuse one Plan across requests: its slices keep their capacity.
type Plan struct {
	// Decision holds the choices behind the plan (route, rewrite,
	// destination, limit key).
	Decision
	// Request are the request header edits, in order. Client-sent hint
	// headers are removed first, so a client never picks a cluster.
	Request []Edit
	// Response are the response header edits. Their values are rendered
	// while the request passes: the proxy drops the request headers before
	// the response comes.
	Response []Edit
	// Reply, when not nil, answers the request locally: apply Request,
	// send Reply, do not forward.
	Reply *Reply
	// Counters are the counters to add one to.
	Counters []Counter
	// RouteChanged is set when an edit changed what the proxy routes on
	// (:path, :authority or a hint header).
	RouteChanged bool
	// Limit is the verdict of the route's rate limit, if it has one.
	Limit LimitVerdict
	// Call, when not nil, must be answered before the request may go on:
	// make it, pause the request, and finish the plan with Complete.
	Call *Call

	reply   Reply
	call    Call
	scratch [BucketStateSize]byte
}

// LimitVerdict is what a route's rate limit said about one request.
type LimitVerdict struct {
	// Checked is set when the route has a rate limit and its bucket was
	// consulted successfully; Result is valid then.
	Checked bool
	Result  TakeResult
	// Err is the bucket error that made the limit fall back to its
	// onContention setting (ErrContended after the last retry, or the
	// store's error).
	Err error
}

// routeCounters are the counters of one route.
type routeCounters struct {
	matched, rewritten, rateLimited, shadowLimited, contended, keyShared Counter
	globalOK, globalOverLimit, globalError, globalTimeout                Counter
	picked                                                               []Counter // by Destination.Index
}

// Counters returns the name of every counter the policy's plans may bump,
// indexed by Counter. The slice must not be modified.
func (p *Policy) Counters() []string { return p.counters }

// HintHeaders returns the hint header names of all routes: a client-sent
// one is removed from every request.
func (p *Policy) HintHeaders() []string { return p.hintHeaders }

// compilePlans names every counter of the policy and collects the hint
// headers, once, so plans carry only indices.
func (p *Policy) compilePlans() {
	def := func(name string) Counter {
		p.counters = append(p.counters, MetricPrefix+name)
		return Counter(len(p.counters) - 1)
	}
	seen := map[string]bool{}
	for _, r := range p.routes {
		prefix := "route." + r.Name + "."
		c := &r.counters
		c.matched = def(prefix + "matched")
		c.rewritten = def(prefix + "rewritten")
		if s := r.Split; s != nil {
			c.picked = make([]Counter, len(s.Destinations))
			for i, d := range s.Destinations {
				c.picked[i] = def(prefix + "destination." + metricSegment(d.Hint) + ".picked")
			}
			if !seen[s.HintHeader] {
				seen[s.HintHeader] = true
				p.hintHeaders = append(p.hintHeaders, s.HintHeader)
			}
		}
		if rl := r.RateLimit; rl != nil {
			rl.Route = r.Index
			c.rateLimited = def(prefix + "rate_limited")
			c.shadowLimited = def(prefix + "shadow_limited")
			c.contended = def(prefix + "contended")
			if rl.Keyed() {
				c.keyShared = def(prefix + "key_shared")
			}
		}
		if r.GlobalLimit != nil {
			c.globalOK = def(prefix + "global_ok")
			c.globalOverLimit = def(prefix + "global_over_limit")
			c.globalError = def(prefix + "global_error")
			c.globalTimeout = def(prefix + "global_timeout")
		}
	}
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

// Decide plans what to do with one request and writes the plan to plan,
// which it resets first. A request no route matches gets a plan that only
// removes client-sent hint headers.
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
	c := &r.counters
	plan.Counters = append(plan.Counters, c.matched)
	if plan.Path != "" {
		// As Envoy's own rewrites do, so access logs keep what the client sent.
		plan.Request = append(plan.Request,
			Edit{Kind: HeaderSet, Name: ":path", Value: plan.Path},
			Edit{Kind: HeaderSet, Name: "x-envoy-original-path", Value: req.Path})
		plan.Counters = append(plan.Counters, c.rewritten)
		plan.RouteChanged = true
	}
	if plan.Authority != "" {
		plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: ":authority", Value: plan.Authority})
		plan.RouteChanged = true
	}
	plan.Request = plan.render(plan.Request, r.RequestHeaders, req, true)
	dest := plan.Destination
	if dest != nil {
		plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: r.Split.HintHeader, Value: dest.Hint})
		plan.RouteChanged = true
	}
	plan.Response = plan.render(plan.Response, r.ResponseHeaders, req, false)
	if rl := r.RateLimit; rl != nil && !plan.limit(rl, env) {
		return
	}
	// Asked only when the local bucket admitted the request; the
	// destination counts once the answer admits it too (Complete).
	if g := r.GlobalLimit; g != nil && plan.ask(g, req) {
		return
	}
	if dest != nil {
		plan.Counters = append(plan.Counters, c.picked[dest.Index])
	}
}

func (plan *Plan) reset() {
	clear(plan.Request)
	clear(plan.Response)
	plan.Decision = Decision{}
	plan.Request, plan.Response, plan.Counters = plan.Request[:0], plan.Response[:0], plan.Counters[:0]
	plan.Reply, plan.RouteChanged, plan.Limit, plan.Call = nil, false, LimitVerdict{}, nil
	clear(plan.reply.Headers)
	plan.reply = Reply{Headers: plan.reply.Headers[:0]}
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

// limit takes a token from rl's bucket and plans the outcome. It reports
// whether the request goes on.
func (plan *Plan) limit(rl *RateLimit, env Env) bool {
	c := &plan.Route.counters
	res, err := rl.Take(env.Buckets(rl), plan.LimitKey, env.Now(), CASRetries, &plan.scratch)
	if err != nil {
		plan.Limit.Err = err
		plan.Counters = append(plan.Counters, c.contended)
		if rl.OnContention == ContentionAllow {
			return true
		}
		res = TakeResult{RetryAfter: rl.Bucket.FillInterval}
	} else {
		plan.Limit.Checked = true
	}
	plan.Limit.Result = res
	if res.Shared {
		plan.Counters = append(plan.Counters, c.keyShared)
	}
	if res.Allowed {
		if rl.FieldsOnAllowed {
			for _, f := range rl.AppendFields(plan.reply.Headers[:0], res) {
				plan.Response = append(plan.Response, Edit{Kind: HeaderSet, Name: f[0], Value: f[1]})
			}
		}
		return true
	}
	if rl.Shadow {
		plan.Counters = append(plan.Counters, c.shadowLimited)
		plan.Limit.Checked = false // a shadow limit never shows in responses
		return true
	}
	plan.Counters = append(plan.Counters, c.rateLimited)
	headers := rl.AppendFields(plan.reply.Headers[:0], res)
	// As Envoy's local_ratelimit marks its replies.
	headers = append(headers, [2]string{"x-envoy-ratelimited", "true"})
	plan.reply = Reply{Status: rl.Status, Details: RateLimitedDetails, Headers: headers, Body: rl.Body}
	plan.Reply = &plan.reply
	return false
}
