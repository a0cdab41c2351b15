// Package policy is wasmgate's policy engine: it parses one JSON gateway
// policy, validates and compiles it into an immutable Policy, and decides
// what to do with each request (rewrite, header operations, routing hint,
// rate-limit bucket, a question to the global rate limit service).
//
// The package is pure Go. It imports no proxy-wasm SDK and reads no clock or
// randomness: the caller passes time and random numbers in, so behaviour is
// exact in tests.
//
// # Lifecycle
//
//	p, err := policy.Parse(jsonText) // parse → validate → compile, once
//	var plan policy.Plan              // reused across requests
//	p.Decide(&req, env, &plan)        // per request: reads p, writes plan
//	if plan.Call != nil {             // a global limit asks its service:
//		answer.Decode(reply)          // (or answer.Fail(policy.AnswerTimeout))
//		plan.Complete(&answer)        // the plan's rest, from the answer
//	}
package policy

import "time"

// Policy is a compiled gateway policy. It is immutable once Parse returns it
// and safe to share between streams; a new configuration builds a new Policy.
type Policy struct {
	routes            []*Route
	counters          []string // every counter name, indexed by Counter
	hintHeaders       []string // the headers a route table routes on, once
	hintKey           string
	usesClientAddress bool
	usesMethod        bool
	usesAuthority     bool
	usesScheme        bool
	usesPort          bool
	logRequests       bool

	// index narrows the routes to try by path; nil: try each in order.
	index *routeIndex
}

// LogRequests reports whether the policy asks for one debug-level log line
// per request ("logRequests"): the route, the rewrite, the destination and
// the limit verdict.
func (p *Policy) LogRequests() bool { return p.logRequests }

// Routes returns the compiled routes in match order. The slice and the routes
// must not be modified.
func (p *Policy) Routes() []*Route { return p.routes }

// Route is one compiled entry of the policy's "routes" list.
type Route struct {
	// Name is the route's unique name ("name" field, or "route-<index>").
	Name string
	// Index is the position of the route in the policy's "routes" list.
	Index int

	// RequestHeaders and ResponseHeaders are the header operations to apply,
	// in order: all "remove", then all "set", then all "add".
	RequestHeaders  []HeaderOp
	ResponseHeaders []HeaderOp

	// Split is the weighted destination choice, or nil when the route has no
	// "route" list.
	Split *Split
	// RateLimit is the route's token bucket, or nil when it has none.
	RateLimit *RateLimit
	// GlobalLimit is the route's limit across gateway replicas, asked of the
	// rate limit service after RateLimit admits a request, or nil.
	GlobalLimit *GlobalLimit
	// Table is what the route asks of the route table (timeout, retries,
	// CORS, mirrors, delay), or nil when it asks nothing.
	Table *Table

	matches []matchBlock
	units   []unit // the route's features, in plan order
}

// HeaderOpKind says how a HeaderOp changes a header map.
type HeaderOpKind uint8

const (
	// HeaderSet replaces every value of the header, or adds it when absent.
	HeaderSet HeaderOpKind = iota + 1
	// HeaderAdd appends a value, keeping existing ones.
	HeaderAdd
	// HeaderRemove removes the header.
	HeaderRemove
)

// HeaderOp is one compiled header operation.
type HeaderOp struct {
	Kind HeaderOpKind
	// Name is the header name, lower-case.
	Name string
	// Value is the pre-parsed value template (unused for HeaderRemove).
	Value Template
}

// Template is a pre-parsed header value: literal text and variables
// (%REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %ROUTE_NAME%,
// %DESTINATION%, %% for a literal percent).
type Template struct {
	literal string // the whole value when parts is nil
	parts   []templatePart
}

// Split is a compiled weighted choice between destinations.
type Split struct {
	// HintHeader is the request header the chosen destination's Hint is
	// written to (lower-case).
	HintHeader string
	// Destinations are the route's destinations in policy order.
	Destinations []Destination

	cumulative []uint64 // cumulative weights; last is the sum
	sticky     stickyKey
	override   string // lower-case header name, "" when none
	key        string // the policy's hintKey, written beside the hint
}

// OverrideHeader is the request header that names a destination to use
// instead of the weighted choice (lower-case), "" when there is none.
func (s *Split) OverrideHeader() string { return s.override }

// Destination is one entry of a route's "route" list.
type Destination struct {
	// Host, Subset and Port are "destination.host", "destination.subset"
	// ("" when unset) and "destination.port" (0 when unset).
	Host   string
	Subset string
	Port   uint32
	// Weight is the relative weight (share = Weight / sum of weights).
	Weight uint32
	// Hint is the value written to the hint header: "hint", or Host, or
	// Host + "|" + Subset when a subset is set.
	Hint string
	// Index is the position in the route's "route" list.
	Index int
}

// RateLimit is a compiled local rate limit of one route.
type RateLimit struct {
	// Name identifies the limit in RateLimit fields: the route name.
	Name string
	// Route is the Index of the limit's route.
	Route  int
	Bucket Bucket
	// MaxKeys is the number of bucket slots; 1 when the limit has no key.
	MaxKeys uint32
	// Shadow counts requests over the limit but never denies them.
	Shadow bool
	// Status is the HTTP status of a denied request (default 429).
	Status uint32
	// Body is the body of a denied response.
	Body string
	// Fields says which rate-limit response headers are written.
	Fields FieldsMode
	// FieldsOnAllowed also writes the fields on admitted responses.
	FieldsOnAllowed bool
	// OnContention says what happens when the shared bucket could not be
	// updated after the filter's last compare-and-swap retry.
	OnContention ContentionPolicy

	key         keySource
	policyField string // precomputed RateLimit-Policy value
	limitField  string // precomputed MaxTokens in decimal
}

// KeyedByClientAddress reports whether the limit is counted per client
// address ("key": {"clientAddress": true}).
func (rl *RateLimit) KeyedByClientAddress() bool { return rl.key.kind == limitClientAddress }

// FieldsMode selects the rate-limit response headers.
type FieldsMode uint8

const (
	// FieldsIETF writes RateLimit and RateLimit-Policy (IETF draft) and
	// Retry-After on denials. It is the default.
	FieldsIETF FieldsMode = iota
	// FieldsNone writes only Retry-After on denials.
	FieldsNone
	// FieldsLegacy writes X-RateLimit-Limit/Remaining/Reset.
	FieldsLegacy
	// FieldsBoth writes the IETF and the legacy fields.
	FieldsBoth
)

// ContentionPolicy says whether a request is admitted when the shared bucket
// stays contended after the last retry.
type ContentionPolicy uint8

const (
	// ContentionAllow admits the request (fail open). It is the default.
	ContentionAllow ContentionPolicy = iota
	// ContentionDeny denies it (fail closed).
	ContentionDeny
)

// Bucket is token-bucket arithmetic with the parameters of Envoy's
// local_ratelimit token_bucket. Time is passed in as Unix nanoseconds.
type Bucket struct {
	MaxTokens     uint64
	TokensPerFill uint64
	FillInterval  time.Duration
}

// BucketState is the stored state of one bucket.
type BucketState struct {
	// Units is the token count in fixed point: one token is
	// FillInterval-in-nanoseconds units, so refill is exact integer math.
	Units uint64
	// Last is the Unix time in nanoseconds of the last refill.
	Last int64
	// Key is the key whose bucket this is (0 for a limit without a key).
	Key LimitKey
}

// BucketStateSize is the length of an encoded BucketState.
const BucketStateSize = 24

// TakeResult is the outcome of one Take.
type TakeResult struct {
	Allowed bool
	// Remaining is the whole tokens left after this request.
	Remaining uint64
	// RetryAfter is the wait until the next whole token (0 when one is left).
	RetryAfter time.Duration
	// Reset is the wait until the bucket is full again.
	Reset time.Duration
	// Shared is set by RateLimit.Take when the key had no bucket of its own
	// and took from another key's (see RateLimit.Take).
	Shared bool
}

// Request is the view of a request that Decide and Choose read.
type Request struct {
	// Method is the :method pseudo-header.
	Method string
	// Path is the :path pseudo-header, query string included.
	Path string
	// Authority is the :authority pseudo-header (host[:port]).
	Authority string
	// ClientAddress is the downstream address, "ip:port" or "ip".
	ClientAddress string
	// Scheme is the :scheme pseudo-header ("http" or "https"), filled
	// only when Policy.UsesScheme says so.
	Scheme string
	// Port is the port the request came in on (the listener's), 0 when
	// unknown; filled only when Policy.UsesPort says so.
	Port uint32
	// Headers looks up request headers by lower-case name.
	Headers HeaderGetter
}

// HeaderGetter looks up one request header by lower-case name.
type HeaderGetter interface {
	Header(name string) (value string, ok bool)
}

// Decision is what Choose chose for one request. Reuse one value across
// requests to avoid allocation.
type Decision struct {
	// Route is the matched route, or nil: then the request is left alone.
	Route *Route
	// Path is the new :path (query kept), or "" when unchanged. When the
	// rewrite had to build it, it is in memory the Decision reuses: valid
	// until the next Choose or Decide into the same Decision (copy it to
	// keep it longer).
	Path string
	// Authority is the new :authority, or "" when unchanged.
	Authority string
	// Destination is the chosen destination, or nil when the route has no
	// Split. Overridden tells that the override header chose it.
	Destination *Destination
	Overridden  bool
	// LimitKey is the request's key for the route's RateLimit (0 when the
	// limit has no key), to pass to RateLimit.Take.
	LimitKey LimitKey

	// pathBuf, when set (a Plan's Decision), holds a Path the rewrite
	// built, so that a request allocates nothing for it.
	pathBuf *[]byte
}
