package policy

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

// answer makes the plan end in a local reply. headers must be built in
// plan.reply.Headers: reset clears that slice for the next request.
func (plan *Plan) answer(status uint32, details string, headers [][2]string, body string) {
	plan.reply = Reply{Status: status, Details: details, Headers: headers, Body: body}
	plan.Reply = &plan.reply
}

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
	asking  *globalUnit // the unit whose Call this is
	scratch [BucketStateSize]byte
	pathBuf []byte // Decision.Path when the rewrite built it
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

// Counters returns the name of every counter the policy's plans may bump,
// indexed by Counter. The slice must not be modified.
func (p *Policy) Counters() []string { return p.counters }

// HintHeaders returns the headers a route table routes on: every route's
// hint header, ShippedHintHeader, DefaultHintHeader, RouteHeader and
// KeyHeader. A client-sent one is removed from every request.
func (p *Policy) HintHeaders() []string { return p.hintHeaders }

// RouteCounter is the name of a route's counter name (e.g.
// CounterRateLimited): "wasmgate.route.<route>.<name>".
func RouteCounter(route, name string) string { return MetricPrefix + "route." + route + "." + name }

// DestinationCounter is the name of the counter of requests forwarded to
// the destination whose hint is hint.
func DestinationCounter(route, hint string) string {
	return RouteCounter(route, destinationCounter(hint))
}

// The counters of a route, by the name RouteCounter takes.
const (
	CounterMatched        = "matched"
	CounterRewritten      = "rewritten"
	CounterPicked         = "picked" // per destination: see DestinationCounter
	CounterRateLimited    = "rate_limited"
	CounterShadowLimited  = "shadow_limited"
	CounterContended      = "contended"
	CounterKeyShared      = "key_shared"
	CounterGlobalOK       = "global_ok"
	CounterGlobalOver     = "global_over_limit"
	CounterGlobalError    = "global_error"
	CounterGlobalTimeout  = "global_timeout"
	CounterFaultAborted   = "fault_aborted"
	CounterRedirected     = "redirected"
	CounterDirectResponse = "direct_response"
)

// RouteProperty is the property the matched route's name is written to;
// Envoy keeps it in the stream's filter state as "wasm." + RouteProperty
// (%FILTER_STATE(wasm.wasmgate_route:PLAIN)%).
const RouteProperty = "wasmgate_route"
