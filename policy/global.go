package policy

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Global-limit defaults, as in Envoy's envoy.filters.http.ratelimit.
const (
	DefaultGlobalTimeout       = 20 * time.Millisecond
	DefaultGlobalStatusOnError = 500
	// RateLimitService and RateLimitMethod name the gRPC method of Envoy's
	// rate limit service protocol.
	RateLimitService = "envoy.service.ratelimit.v3.RateLimitService"
	RateLimitMethod  = "ShouldRateLimit"
	maxGlobalTimeout = time.Minute
)

// GlobalLimit is a route's limit shared by every gateway replica: each
// request the local bucket (if any) admits asks Envoy's rate limit service
// (envoy.service.ratelimit.v3, e.g. envoyproxy/ratelimit or Limitador)
// whether it is over the limit.
type GlobalLimit struct {
	// Name is the route name, used in RateLimit fields when the service's
	// answer names no limit.
	Name string
	// Domain is the rate limit service's domain of this limit.
	Domain string
	// Cluster is the Envoy cluster of the rate limit service.
	Cluster string
	// Timeout bounds the call; an answer later than that counts as a timeout.
	Timeout time.Duration
	// FailureMode says what a failed or timed-out call does to the request.
	FailureMode FailureMode
	// Status is the HTTP status of a request over the limit (default 429);
	// StatusOnError of a request denied because the call failed (default 500).
	Status, StatusOnError uint32
	// Body is the body of a denied response.
	Body string
	// Fields says which rate-limit response headers a denial carries.
	Fields FieldsMode

	descriptors []descriptorSource
	service     []byte // serialized envoy.config.core.v3.GrpcService
	domainField []byte // RateLimitRequest.domain, tag and length included
}

// FailureMode says whether a request is admitted when the rate limit
// service cannot answer in time.
type FailureMode uint8

const (
	// FailureAllow admits the request (fail open). It is the default, as
	// Envoy's failure_mode_deny: false.
	FailureAllow FailureMode = iota
	// FailureDeny denies it with StatusOnError (fail closed).
	FailureDeny
)

// TimeoutMillis is Timeout in whole milliseconds, rounded up (the unit of
// proxy_grpc_call).
func (g *GlobalLimit) TimeoutMillis() uint32 {
	return uint32(ceilDiv(uint64(g.Timeout), uint64(time.Millisecond)))
}

// GrpcService is the serialized envoy.config.core.v3.GrpcService naming
// Cluster, the service argument of proxy_grpc_call.
func (g *GlobalLimit) GrpcService() []byte { return g.service }

// descriptorSource builds one RateLimitDescriptor, like one entry of Envoy's
// route rate_limits: each action adds one entry, in order.
type descriptorSource struct {
	entries []entrySource
}

type entryKind uint8

const (
	entryConstant      entryKind = iota // genericKey, routeName: encoded at compile time
	entryHeader                         // requestHeaders
	entryAuthority                      // requestHeaders ":authority"
	entryMethod                         // requestHeaders ":method"
	entryPath                           // requestHeaders ":path"
	entryClientAddress                  // remoteAddress
)

type entrySource struct {
	kind entryKind
	key  string
	// name is the header name of entryHeader.
	name string
	// value is a constant entry's value, or the default of a missing header.
	value      string
	hasDefault bool
	// skipIfAbsent drops only this entry (not the descriptor) when the
	// header is missing.
	skipIfAbsent bool
	// encoded is a constant entry's wire form (tag, length, body).
	encoded []byte
}

// resolve returns the entry's value for req; ok is false when the request
// lacks it (a missing header without default).
func (e *entrySource) resolve(req *Request) (string, bool) {
	var v string
	var ok bool
	switch e.kind {
	case entryConstant:
		return e.value, true
	case entryHeader:
		v, ok = header(req, e.name)
	case entryAuthority:
		v, ok = req.Authority, req.Authority != ""
	case entryMethod:
		v, ok = req.Method, req.Method != ""
	case entryPath:
		v, ok = req.Path, req.Path != ""
	case entryClientAddress:
		v = clientAddress(req)
		ok = v != ""
	}
	if !ok && e.hasDefault {
		return e.value, true
	}
	return v, ok
}

func (p *parser) globalLimit(path string, v gjson.Result, routeName string) *GlobalLimit {
	o, ok := p.object(path, v, schemaGlobalLimit)
	if !ok {
		return nil
	}
	before := len(p.errs)
	g := &GlobalLimit{Name: routeName, Timeout: DefaultGlobalTimeout, Status: DefaultLimitStatus, StatusOnError: DefaultGlobalStatusOnError}
	o.requireAll()
	if dv, ok := o.value("domain"); ok {
		g.Domain, _ = p.headerValue(o.at("domain"), dv)
	}
	if cv, ok := o.value("cluster"); ok {
		g.Cluster, _ = p.headerValue(o.at("cluster"), cv)
	}
	if items, ok := o.list("rateLimits"); ok {
		g.descriptors = p.descriptorSources(o.at("rateLimits"), items, routeName)
	}
	if s, ok := o.str("timeout"); ok {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			p.fail(o.at("timeout"), "%q is not a duration", s)
		case d < time.Millisecond || d > maxGlobalTimeout:
			p.fail(o.at("timeout"), "must be from 1ms to %s, got %q", maxGlobalTimeout, s)
		default:
			g.Timeout = d
		}
	}
	if n, ok := o.enum("failureMode"); ok {
		g.FailureMode = FailureMode(n)
	}
	o.denial(&g.Status, &g.Body, &g.Fields)
	if n, ok := o.integer("statusOnError"); ok {
		g.StatusOnError = uint32(n)
	}
	if len(p.errs) != before {
		return nil
	}
	g.service = appendGrpcService(nil, g.Cluster)
	g.domainField = appendStringField(nil, 1, g.Domain)
	return g
}

func (p *parser) descriptorSources(path string, items []gjson.Result, routeName string) []descriptorSource {
	out := make([]descriptorSource, 0, len(items))
	for i, item := range items {
		ipath := index(path, i)
		o, ok := p.object(ipath, item, schemaDescriptor)
		if !ok {
			continue
		}
		actions, ok := o.list("actions")
		if !ok {
			continue
		}
		d := descriptorSource{entries: make([]entrySource, 0, len(actions))}
		for j, a := range actions {
			if e, ok := p.action(index(ipath+".actions", j), a, routeName); ok {
				d.entries = append(d.entries, e)
			}
		}
		out = append(out, d)
	}
	return out
}

// action reads one of Envoy's rate limit actions (in its camelCase JSON
// form) and the routeName action of our own.
func (p *parser) action(path string, v gjson.Result, routeName string) (entrySource, bool) {
	f, val, ok := p.oneOf(path, v, schemaAction)
	if !ok {
		return entrySource{}, false
	}
	which := f.Name
	path += "." + which
	before := len(p.errs)
	var e entrySource
	switch which {
	case "genericKey":
		o, ok := p.object(path, val, schemaGenericKey)
		if !ok {
			break
		}
		e = entrySource{kind: entryConstant, key: "generic_key"}
		o.descriptorField("descriptorValue", &e.value)
		o.descriptorField("descriptorKey", &e.key)
	case "routeName":
		o, ok := p.object(path, val, schemaRouteNameAction)
		if !ok {
			break
		}
		e = entrySource{kind: entryConstant, key: "route_name", value: routeName}
		o.descriptorField("descriptorKey", &e.key)
	case "remoteAddress":
		if !val.IsObject() || len(val.Map()) != 0 {
			p.fail(path, "must be {} (it has no options), got %s", val.Raw)
			break
		}
		e = entrySource{kind: entryClientAddress, key: "remote_address"}
	case "requestHeaders":
		e = p.requestHeadersAction(path, val)
	}
	if len(p.errs) != before {
		return entrySource{}, false
	}
	if e.kind == entryConstant {
		e.encoded = appendEntry(nil, e.key, e.value)
	}
	return e, true
}

// descriptorField reads the string field name, which is written into a
// descriptor entry, into dst when it is there.
func (o *object) descriptorField(name string, dst *string) {
	if v, ok := o.value(name); ok {
		*dst, _ = o.p.headerValue(o.at(name), v)
	}
}

func (p *parser) requestHeadersAction(path string, v gjson.Result) entrySource {
	o, ok := p.object(path, v, schemaRequestHeadersAction)
	if !ok {
		return entrySource{}
	}
	e := entrySource{kind: entryHeader}
	if s, ok := o.str("headerName"); ok {
		switch strings.ToLower(s) {
		case ":authority":
			e.kind = entryAuthority
		case ":method":
			e.kind = entryMethod
		case ":path":
			e.kind = entryPath
		default:
			e.name, _ = p.headerName(o.at("headerName"), s, "use :authority, :method or :path, or a regular header")
		}
	}
	o.descriptorField("descriptorKey", &e.key)
	e.skipIfAbsent, _ = o.flag("skipIfAbsent")
	if dv, ok := o.value("defaultValue"); ok {
		e.value, e.hasDefault = p.headerValue(o.at("defaultValue"), dv)
		if e.skipIfAbsent {
			o.excludes("defaultValue")
		}
	}
	return e
}

var (
	descriptorText = &Schema{Kind: KindString, Pattern: headerValuePattern,
		Doc: "Text written into a descriptor entry: not empty, no CR, LF or NUL."}

	schemaGenericKey = &Schema{Kind: KindObject, Doc: "A constant entry.", Fields: []*Field{
		required("descriptorValue", descriptorText),
		optional("descriptorKey", withDefault(descriptorText, "generic_key")),
	}}

	schemaRouteNameAction = &Schema{Kind: KindObject, Doc: "The route's name as an entry.", Fields: []*Field{
		optional("descriptorKey", withDefault(descriptorText, "route_name")),
	}}

	schemaRequestHeadersAction = &Schema{Kind: KindObject, Doc: "A request header (or :authority, :method, :path) as an entry.",
		Excludes: [][2]string{{"skipIfAbsent", "defaultValue"}},
		Fields: []*Field{
			required("headerName", strDecl("The header, or :authority, :method or :path.")),
			required("descriptorKey", descriptorText),
			optional("skipIfAbsent", boolDecl("Leave the descriptor out when the header is absent.")),
			optional("defaultValue", descriptorText),
		}}

	schemaAction = &Schema{Kind: KindObject, Def: "rateLimitAction", OneOf: true,
		Doc: "One descriptor entry, as Envoy's rate limit actions: exactly one of these.",
		Fields: []*Field{
			optional("genericKey", schemaGenericKey),
			optional("requestHeaders", schemaRequestHeadersAction),
			optional("remoteAddress", &Schema{Kind: KindObject, Doc: "The client address as an entry: {}."}),
			optional("routeName", schemaRouteNameAction),
		}}

	schemaDescriptor = &Schema{Kind: KindObject, Doc: "One descriptor sent to the service.", Fields: []*Field{
		required("actions", &Schema{Kind: KindList, Items: schemaAction, MinItems: 1, Doc: "The descriptor's entries, in order."}),
	}}

	schemaGlobalLimit = &Schema{Kind: KindObject, Def: "globalRateLimit",
		Doc: "A global limit decided by an Envoy rate limit service over gRPC.",
		Fields: []*Field{
			required("domain", &Schema{Kind: KindString, Pattern: headerValuePattern, Doc: "The rate limit service's domain."}),
			required("cluster", &Schema{Kind: KindString, Pattern: headerValuePattern, Doc: "The Envoy cluster of the rate limit service."}),
			required("rateLimits", &Schema{Kind: KindList, Items: schemaDescriptor, MinItems: 1, Doc: "The descriptors to send."}),
			optional("timeout", withDefault(&Schema{Kind: KindString,
				Pattern: positiveDurationPattern,
				Doc:     "How long to wait for the service: a Go duration from 1ms to 1m."}, DefaultGlobalTimeout.String())),
			optional("failureMode", withDefault(&Schema{Kind: KindString, Enum: failureModes,
				Doc: "Admit (allow) or deny a request when the service does not answer."}, failureModes[0])),
			denialStatus,
			optional("statusOnError", withDefault(intDecl("HTTP status of a request denied because the service failed.", 400, 599), DefaultGlobalStatusOnError)),
			denialBody,
			denialFields,
		}}
)

func init() {
	register(&feature{order: 60, fields: []*Field{optional("globalRateLimit", schemaGlobalLimit)}, compile: compileGlobalLimit})
}

// compileGlobalLimit compiles the "globalRateLimit" block into
// Route.GlobalLimit.
func compileGlobalLimit(p *parser, route *object, r *Route) unit {
	gv, ok := route.value("globalRateLimit")
	if !ok {
		return nil
	}
	if r.GlobalLimit = p.globalLimit(route.at("globalRateLimit"), gv, r.Name); r.GlobalLimit == nil {
		return nil
	}
	return &globalUnit{g: r.GlobalLimit}
}

type globalUnit struct {
	noUnit
	g                              *GlobalLimit
	ok, overLimit, failed, timeout Counter
}

func (u *globalUnit) counters(def func(string) Counter) {
	u.ok = def(CounterGlobalOK)
	u.overLimit = def(CounterGlobalOver)
	u.failed = def(CounterGlobalError)
	u.timeout = def(CounterGlobalTimeout)
}

func (u *globalUnit) reads(part requestPart) bool {
	kind := entryClientAddress
	switch part {
	case readsMethod:
		kind = entryMethod
	case readsAuthority:
		kind = entryAuthority
	}
	for _, d := range u.g.descriptors {
		for _, e := range d.entries {
			if e.kind == kind {
				return true
			}
		}
	}
	return false
}

// step plans the call to the service for req. Asked only when the local
// bucket admitted the request; the destination counts once the answer
// admits it too (Complete). Without a descriptor that applies there is
// nothing to ask.
func (u *globalUnit) step(plan *Plan, req *Request, _ Env) bool {
	var n int
	plan.call.Message, n = u.g.AppendRequest(plan.call.Message[:0], req)
	if n == 0 {
		return true
	}
	plan.call.Limit = u.g
	plan.Call = &plan.call
	plan.asking = u
	return false
}

// Call is a call to the rate limit service that a plan waits for.
type Call struct {
	// Limit is the global limit asking; its GrpcService and TimeoutMillis
	// are the call's.
	Limit *GlobalLimit
	// Message is the encoded RateLimitRequest.
	Message []byte
}

// RateLimitServiceErrorDetails is the response code detail of a request
// denied because the rate limit service could not answer (failureMode
// "deny"). A request over a global limit gets RateLimitedDetails, as over
// a local one.
const RateLimitServiceErrorDetails = "wasmgate_rate_limit_service_error"

// Complete finishes a plan whose Call is over, with the service's answer
// a: a decoded RateLimitResponse, or an Answer whose Code is AnswerError
// or AnswerTimeout when the call failed.
//
// It replaces Request and Counters with what the answer adds (the caller
// has applied the earlier ones) and sets Call to nil. OK admits the
// request, with the headers the service asks to add to it (Request) and to
// the response (appended to Response). OVER_LIMIT sets Reply: the limit's
// status and body, the RateLimit fields of the answer and its response
// headers. A failure follows the limit's FailureMode.
func (plan *Plan) Complete(a *Answer) {
	u := plan.asking
	plan.Call = nil
	clear(plan.Request)
	plan.Request, plan.Counters = plan.Request[:0], plan.Counters[:0]
	if u == nil || plan.Route == nil {
		return
	}
	g := u.g
	switch a.Code {
	case AnswerOK:
		plan.Counters = append(plan.Counters, u.ok)
		for _, h := range a.RequestHeaders {
			plan.Request = append(plan.Request, Edit{Kind: HeaderAdd, Name: h[0], Value: h[1]})
		}
		for _, h := range a.ResponseHeaders {
			plan.Response = append(plan.Response, Edit{Kind: HeaderAdd, Name: h[0], Value: h[1]})
		}
	case AnswerOverLimit:
		plan.Counters = append(plan.Counters, u.overLimit)
		plan.deny(g.Status, RateLimitedDetails, g.AppendFields(plan.reply.Headers[:0], a), g.Body)
		return
	default:
		if a.Code == AnswerTimeout {
			plan.Counters = append(plan.Counters, u.timeout)
		} else {
			plan.Counters = append(plan.Counters, u.failed)
		}
		if g.FailureMode == FailureDeny {
			plan.reply = Reply{Status: g.StatusOnError, Details: RateLimitServiceErrorDetails, Headers: plan.reply.Headers[:0]}
			plan.Reply = &plan.reply
			return
		}
	}
	plan.admit()
}
