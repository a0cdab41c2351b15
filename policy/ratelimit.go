package policy

import (
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// Rate-limit defaults and bounds.
const (
	DefaultLimitStatus = 429
	// DefaultMaxKeys is the number of bucket slots of a keyed limit when
	// "maxKeys" is not set.
	DefaultMaxKeys = 1024
	maxMaxKeys     = 1_000_000
)

type limitKind uint8

const (
	limitNone limitKind = iota
	limitHeader
	limitClientAddress
)

// keySource says where a keyed limit takes its key from.
type keySource struct {
	kind limitKind
	name string // header name
}

// keyOf returns the identity of the request's key; a request without the
// key header counts as the empty key.
func (rl *RateLimit) keyOf(req *Request) LimitKey {
	var key string
	switch rl.key.kind {
	case limitNone:
		return 0
	case limitHeader:
		key, _ = header(req, rl.key.name)
	case limitClientAddress:
		key = clientAddress(req)
	}
	return LimitKey(keyHash(key))
}

// AppendFields appends the response header fields (lower-case name, value)
// that res calls for under rl.Fields.
//
// A denial always gets retry-after (whole seconds, rounded up, at least 1),
// plus the fields of rl.Fields. An admitted request gets the fields of
// rl.Fields (never retry-after) only when rl.FieldsOnAllowed is set.
//
// # Notes
//
// "ratelimit" is `"<name>";r=<remaining>;t=<seconds until the next token>`,
// "ratelimit-policy" is `"<name>";q=<maxTokens>;w=<seconds to refill an
// empty bucket>`, and the legacy x-ratelimit-reset is the seconds until the
// bucket is full again. All seconds are rounded up, so a client that waits
// them never comes back too early.
func (rl *RateLimit) AppendFields(dst [][2]string, res TakeResult) [][2]string {
	if res.Allowed && !rl.FieldsOnAllowed {
		return dst
	}
	return appendLimitFields(dst, rl.Fields, !res.Allowed, limitFields{
		name: rl.Name, remaining: res.Remaining, next: ceilSeconds(res.RetryAfter), reset: ceilSeconds(res.Reset),
		limit: rl.limitField, policy: rl.policyField,
	})
}

// limitFields are the values a limit reports to the client, seconds
// rounded up.
type limitFields struct {
	name      string
	remaining uint64
	next      uint64 // until the next request may pass
	reset     uint64 // until the limit is whole again
	limit     string // the limit, in decimal
	// policy is the RateLimit-Policy value when precomputed; "" builds it
	// from name, limit and window.
	policy string
	window uint64
}

// appendLimitFields appends the fields mode calls for: retry-after on a
// denial, then the IETF RateLimit and RateLimit-Policy fields and/or the
// legacy X-RateLimit-* ones. Local and global limits share it.
func appendLimitFields(dst [][2]string, mode FieldsMode, denied bool, f limitFields) [][2]string {
	if denied {
		dst = append(dst, [2]string{"retry-after", strconv.FormatUint(max(f.next, 1), 10)})
	}
	if mode == FieldsIETF || mode == FieldsBoth {
		policy := f.policy
		if policy == "" {
			policy = policyField(f.name, f.limit, f.window)
		}
		dst = append(dst,
			[2]string{"ratelimit", strconv.Quote(f.name) + ";r=" + strconv.FormatUint(f.remaining, 10) +
				";t=" + strconv.FormatUint(f.next, 10)},
			[2]string{"ratelimit-policy", policy})
	}
	if mode == FieldsLegacy || mode == FieldsBoth {
		dst = append(dst,
			[2]string{"x-ratelimit-limit", f.limit},
			[2]string{"x-ratelimit-remaining", strconv.FormatUint(f.remaining, 10)},
			[2]string{"x-ratelimit-reset", strconv.FormatUint(f.reset, 10)})
	}
	return dst
}

// policyField is a RateLimit-Policy value: `"<name>";q=<limit>;w=<window>`.
func policyField(name, limit string, window uint64) string {
	return strconv.Quote(name) + ";q=" + limit + ";w=" + strconv.FormatUint(window, 10)
}

func ceilSeconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return ceilDiv(uint64(d), uint64(time.Second))
}

var (
	schemaLimitKey = &Schema{Kind: KindObject, OneOf: true,
		Doc:    "What the limit is counted per: exactly one of these.",
		Fields: []*Field{keyHeader, keyClientAddress}}

	schemaTokenBucket = &Schema{Kind: KindObject, Doc: "Envoy local_ratelimit's token bucket.",
		MissingMsg: `missing field "maxTokens" or "fillInterval" (both are required)`,
		Fields: []*Field{
			required("maxTokens", intDecl("Bucket capacity.", 1, math.MaxInt64)),
			optional("tokensPerFill", withDefault(intDecl("Tokens added each fillInterval; at most maxTokens.", 1, math.MaxInt64), 1)),
			required("fillInterval", &Schema{Kind: KindString,
				Pattern: positiveDurationPattern,
				Doc:     "A positive Go duration, e.g. \"1s\", \"1m30s\"."}),
		}}

	schemaRateLimit = &Schema{Kind: KindObject, Def: "rateLimit", Doc: "A local token-bucket rate limit.",
		Requires: [][2]string{{"maxKeys", "key"}},
		Fields: []*Field{
			required("tokenBucket", schemaTokenBucket),
			optional("key", schemaLimitKey),
			optional("maxKeys", withDefault(intDecl("Bucket slots of a keyed limit.", 1, maxMaxKeys), DefaultMaxKeys)),
			optional("shadow", boolDecl("Count requests over the limit but never deny them.")),
			denialStatus,
			denialBody,
			denialFields,
			optional("fieldsOnAllowed", boolDecl("Also write the fields on admitted responses.")),
			optional("onContention", withDefault(&Schema{Kind: KindString, Enum: contentionPolicies,
				Doc: "Admit (allow) or deny a request when the shared bucket stays contended."}, contentionPolicies[0])),
		}}
)

func init() {
	register(&feature{order: 50, fields: []*Field{optional("rateLimit", schemaRateLimit)}, compile: compileRateLimit})
}

// compileRateLimit compiles the "rateLimit" block into Route.RateLimit.
func compileRateLimit(p *parser, route *object, r *Route) unit {
	lv, ok := route.value("rateLimit")
	if !ok {
		return nil
	}
	if r.RateLimit = p.rateLimit(route.at("rateLimit"), lv, r.Name); r.RateLimit == nil {
		return nil
	}
	r.RateLimit.Route = r.Index
	return &limitUnit{rl: r.RateLimit}
}

type limitUnit struct {
	noUnit
	rl                                               *RateLimit
	rateLimited, shadowLimited, contended, keyShared Counter
}

func (u *limitUnit) counters(def func(string) Counter) {
	u.rateLimited = def(CounterRateLimited)
	u.shadowLimited = def(CounterShadowLimited)
	u.contended = def(CounterContended)
	if u.rl.Keyed() {
		u.keyShared = def(CounterKeyShared)
	}
}

func (u *limitUnit) reads(part requestPart) bool {
	return part == readsClientAddress && u.rl.key.kind == limitClientAddress
}

func (u *limitUnit) choose(req *Request, _ string, _ int, _ uint64, d *Decision) {
	d.LimitKey = u.rl.keyOf(req)
}

// step takes a token from the limit's bucket and plans the outcome.
func (u *limitUnit) step(plan *Plan, _ *Request, env Env) bool {
	rl := u.rl
	res, err := rl.Take(env.Buckets(rl), plan.LimitKey, env.Now(), CASRetries, &plan.scratch)
	if err != nil {
		plan.Limit.Err = err
		plan.Counters = append(plan.Counters, u.contended)
		if rl.OnContention == ContentionAllow {
			return true
		}
		res = TakeResult{RetryAfter: rl.Bucket.FillInterval}
	} else {
		plan.Limit.Checked = true
	}
	plan.Limit.Result = res
	if res.Shared {
		plan.Counters = append(plan.Counters, u.keyShared)
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
		plan.Counters = append(plan.Counters, u.shadowLimited)
		plan.Limit.Checked = false // a shadow limit never shows in responses
		return true
	}
	plan.Counters = append(plan.Counters, u.rateLimited)
	plan.deny(rl.Status, RateLimitedDetails, rl.AppendFields(plan.reply.Headers[:0], res), rl.Body)
	return false
}

// deny sets the plan's reply to a limit's denial: headers (built in
// plan.reply.Headers) marked as Envoy's rate limit filters mark theirs.
func (plan *Plan) deny(status uint32, details string, headers [][2]string, body string) {
	headers = append(headers, [2]string{"x-envoy-ratelimited", "true"})
	plan.answer(status, details, headers, body)
}

func (u *limitUnit) describe(line string, plan *Plan) string {
	switch v := plan.Limit; {
	case plan.Reply != nil:
		return line + " limit=denied retry_after_ns=" + strconv.FormatInt(int64(v.Result.RetryAfter), 10)
	case v.Err != nil:
		return line + " limit=error(" + v.Err.Error() + ")"
	case !v.Checked:
		return line + " limit=shadow-denied"
	default:
		return line + " limit=allowed remaining=" + strconv.FormatUint(v.Result.Remaining, 10)
	}
}

func (p *parser) rateLimit(path string, v gjson.Result, routeName string) *RateLimit {
	o, ok := p.object(path, v, schemaRateLimit)
	if !ok {
		return nil
	}
	before := len(p.errs)
	rl := &RateLimit{Name: routeName, MaxKeys: 1, Status: DefaultLimitStatus}
	if bv, ok := o.value("tokenBucket"); ok {
		rl.Bucket = p.tokenBucket(o.at("tokenBucket"), bv)
	}
	if kv, ok := o.value("key"); ok {
		rl.key = p.limitKey(o.at("key"), kv)
		rl.MaxKeys = DefaultMaxKeys
	}
	if o.has("maxKeys") && o.requires("maxKeys") {
		if n, ok := o.integer("maxKeys"); ok {
			rl.MaxKeys = uint32(n)
		}
	}
	rl.Shadow, _ = o.flag("shadow")
	o.denial(&rl.Status, &rl.Body, &rl.Fields)
	rl.FieldsOnAllowed, _ = o.flag("fieldsOnAllowed")
	if n, ok := o.enum("onContention"); ok {
		rl.OnContention = ContentionPolicy(n)
	}
	if len(p.errs) != before {
		return nil
	}
	b := rl.Bucket
	refill := time.Duration(ceilDiv(b.capacity(), b.TokensPerFill)) // empty to full
	rl.limitField = strconv.FormatUint(b.MaxTokens, 10)
	rl.policyField = policyField(rl.Name, rl.limitField, ceilSeconds(refill))
	return rl
}

func (p *parser) tokenBucket(path string, v gjson.Result) Bucket {
	var b Bucket
	o, ok := p.object(path, v, schemaTokenBucket)
	if !ok {
		return b
	}
	b.TokensPerFill = 1
	if !o.requireAll() {
		return b
	}
	b.MaxTokens, ok = o.integer("maxTokens")
	if tv, has := o.value("tokensPerFill"); has && ok {
		// At most maxTokens: a bound the declaration cannot state.
		b.TokensPerFill, _ = p.integer(o.at("tokensPerFill"), tv, o.field("tokensPerFill").Value.Min, b.MaxTokens)
	}
	if s, ok := o.str("fillInterval"); ok {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			p.fail(o.at("fillInterval"), "%q is not a duration", s)
		case d <= 0:
			p.fail(o.at("fillInterval"), "must be positive, got %q", s)
		default:
			b.FillInterval = d
		}
	}
	if b.MaxTokens > 0 && b.FillInterval > 0 && b.MaxTokens > uint64(math.MaxInt64/b.FillInterval) {
		p.fail(path, "maxTokens × fillInterval must fit in 63 bits of nanoseconds: at most %d tokens with fillInterval %s",
			uint64(math.MaxInt64/b.FillInterval), b.FillInterval)
	}
	return b
}

func (p *parser) limitKey(path string, v gjson.Result) keySource {
	f, val, ok := p.oneOf(path, v, schemaLimitKey)
	if !ok {
		return keySource{}
	}
	if f.Name == "header" {
		name, _ := p.headerField(path+".header", val)
		return keySource{kind: limitHeader, name: name}
	}
	p.flag(path+".clientAddress", val, f.Value)
	return keySource{kind: limitClientAddress}
}

// denial reads the options of a limit's denial: "status", "body" and
// "fields".
func (o *object) denial(status *uint32, body *string, mode *FieldsMode) {
	if n, ok := o.integer("status"); ok {
		*status = uint32(n)
	}
	*body, _ = o.str("body")
	if n, ok := o.enum("fields"); ok {
		*mode = FieldsMode(n)
	}
}
