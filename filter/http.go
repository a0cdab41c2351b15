package filter

import (
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// httpContext is one HTTP stream. It is recycled by its plugin context after
// the stream ends, so its fields are reset in OnHttpRequestHeaders.
type httpContext struct {
	defaultHTTP
	plugin   *pluginContext
	config   *config
	request  policy.Request
	decision policy.Decision
	// limited is set when the route's bucket was consulted; result is valid then.
	limited bool
	// denied is set when the stream was answered with a rate-limit response.
	denied bool
	result policy.TakeResult
	fields [][2]string // scratch for rate-limit response fields
	// requestOps and responseOps are the route's header operations with
	// their values rendered. Response values are rendered while the request
	// passes: Envoy no longer has the request headers when the response
	// comes, and %REQ()% reads them.
	requestOps, responseOps []renderedOp
	buckets                 sharedBuckets
	scratch                 [policy.BucketStateSize]byte
	// contextID is the stream's id, to find it again when the rate limit
	// service answers on the root context; global is that call.
	contextID uint32
	global    globalCall
}

// Header implements policy.HeaderGetter with a host call.
func (h *httpContext) Header(name string) (string, bool) {
	v, err := getHTTPRequestHeader(name)
	return v, err == nil
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) action {
	c := h.config
	h.limited, h.denied = false, false
	if c == nil {
		return actionContinue
	}
	for _, name := range c.hintHeaders {
		if _, ok := h.Header(name); ok {
			h.removeRequestHeader(name)
		}
	}
	h.request = policy.Request{Path: h.header(":path"), Headers: h}
	if c.needsMethod {
		h.request.Method = h.header(":method")
	}
	if c.needsAuthority {
		h.request.Authority = h.header(":authority")
	}
	if c.needsClientAddress {
		h.request.ClientAddress = clientAddress()
	}
	d := &h.decision
	c.policy.Decide(&h.request, h.plugin.nextRandom(), d)
	r := d.Route
	if r == nil {
		return actionContinue
	}
	rs := &c.routes[r.Index]
	rs.matched.Increment(1)

	routeChanged := false
	if d.Path != "" {
		h.replaceRequestHeader(":path", d.Path)
		rs.rewritten.Increment(1)
		routeChanged = true
	}
	if d.Authority != "" {
		h.replaceRequestHeader(":authority", d.Authority)
		routeChanged = true
	}
	h.requestOps = h.render(h.requestOps[:0], r.RequestHeaders)
	applyHeaderOps(h.requestOps, replaceHTTPRequestHeader, addHTTPRequestHeader, removeHTTPRequestHeader)
	if dest := d.Destination; dest != nil {
		h.replaceRequestHeader(r.Split.HintHeader, dest.Hint)
		rs.picked[dest.Index].Increment(1)
		routeChanged = true
	}
	if routeChanged {
		clearRouteCache()
	}
	// Rendered now: Envoy drops the request headers before the response.
	h.responseOps = h.render(h.responseOps[:0], r.ResponseHeaders)
	if rl := r.RateLimit; rl != nil {
		if a := h.rateLimit(rl, rs); a != actionContinue || h.denied {
			return a
		}
	}
	// The global limit is asked only for requests the local bucket admits.
	if g := r.GlobalLimit; g != nil {
		return h.askGlobal(g, rs)
	}
	return actionContinue
}

func (h *httpContext) rateLimit(rl *policy.RateLimit, rs *routeState) action {
	h.buckets.keys = &rs.limitKeys
	res, err := rl.Take(&h.buckets, h.decision.LimitKey, time.Now().UnixNano(), casRetries, &h.scratch)
	ok := err == nil
	if !ok {
		if err != policy.ErrContended {
			logDebug("wasmgate: rate-limit bucket of route " + h.decision.Route.Name + ": " + err.Error())
		}
		rs.contended.Increment(1)
		if rl.OnContention == policy.ContentionAllow {
			return actionContinue
		}
		res = policy.TakeResult{RetryAfter: rl.Bucket.FillInterval}
	}
	if res.Shared {
		rs.keyShared.Increment(1)
	}
	h.limited, h.result = ok, res
	if res.Allowed {
		return actionContinue
	}
	if rl.Shadow {
		rs.shadowLimited.Increment(1)
		h.limited = false // a shadow limit never shows in responses
		return actionContinue
	}
	rs.rateLimited.Increment(1)
	h.fields = rl.AppendFields(h.fields[:0], res)
	if err := sendLocalResponse(rl.Status, "rate_limited", h.fields, rl.Body); err != nil {
		logDebug("wasmgate: sending rate-limit response: " + err.Error())
		return actionContinue
	}
	h.denied = true
	return actionPause
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) action {
	r := h.decision.Route
	if h.config == nil || r == nil || h.denied {
		return actionContinue
	}
	applyHeaderOps(h.responseOps, replaceHTTPResponseHeader, addHTTPResponseHeader, removeHTTPResponseHeader)
	h.addGlobalResponseHeaders()
	if rl := r.RateLimit; h.limited && h.result.Allowed && rl.FieldsOnAllowed {
		h.fields = rl.AppendFields(h.fields[:0], h.result)
		for _, f := range h.fields {
			if err := replaceHTTPResponseHeader(f[0], f[1]); err != nil {
				logDebug("wasmgate: setting " + f[0] + ": " + err.Error())
			}
		}
	}
	return actionContinue
}

func (h *httpContext) OnHttpStreamDone() {
	p := h.plugin
	h.endGlobal()
	h.config, h.request, h.decision = nil, policy.Request{}, policy.Decision{}
	clear(h.requestOps)
	clear(h.responseOps)
	h.requestOps, h.responseOps = h.requestOps[:0], h.responseOps[:0]
	p.free = append(p.free, h)
}

// renderedOp is a header operation with its value for this stream.
type renderedOp struct {
	kind        policy.HeaderOpKind
	name, value string
}

// render appends ops with their values rendered for this request to dst,
// leaving out sets and adds whose value must not be written.
func (h *httpContext) render(dst []renderedOp, ops []policy.HeaderOp) []renderedOp {
	for i := range ops {
		op := &ops[i]
		r := renderedOp{kind: op.Kind, name: op.Name}
		if op.Kind != policy.HeaderRemove {
			var ok bool
			if r.value, ok = op.Value.Render(&h.request, &h.decision); !ok {
				continue
			}
		}
		dst = append(dst, r)
	}
	return dst
}

// applyHeaderOps runs rendered header operations with one header map's host
// calls. A failed host call is logged and the stream goes on.
func applyHeaderOps(ops []renderedOp, set, add func(string, string) error, remove func(string) error) {
	for _, op := range ops {
		var err error
		switch op.kind {
		case policy.HeaderRemove:
			err = remove(op.name)
		case policy.HeaderSet:
			err = set(op.name, op.value)
		case policy.HeaderAdd:
			err = add(op.name, op.value)
		}
		if err != nil {
			logDebug("wasmgate: header " + op.name + ": " + err.Error())
		}
	}
}

func (h *httpContext) header(name string) string {
	v, _ := h.Header(name)
	return v
}

func (h *httpContext) replaceRequestHeader(name, value string) {
	if err := replaceHTTPRequestHeader(name, value); err != nil {
		logDebug("wasmgate: setting " + name + ": " + err.Error())
	}
}

func (h *httpContext) removeRequestHeader(name string) {
	if err := removeHTTPRequestHeader(name); err != nil {
		logDebug("wasmgate: removing " + name + ": " + err.Error())
	}
}

// clientAddress is the downstream peer address ("ip:port"), or "".
func clientAddress() string {
	v, err := getProperty(sourceAddressProperty)
	if err != nil {
		return ""
	}
	return string(v)
}

var sourceAddressProperty = []string{"source", "address"}

// clearRouteCache asks Envoy to select the route again after the plugin
// changed what routing looks at. Envoy clears the cache by itself for the ABI
// versions both SDKs declare; the foreign function makes it explicit where the
// host has it, and a host without it is fine.
func clearRouteCache() {
	if _, err := callForeignFunction("clear_route_cache", nil); err != nil && !routeCacheWarned {
		routeCacheWarned = true
		logDebug("wasmgate: clear_route_cache unavailable: " + err.Error())
	}
}

var routeCacheWarned bool
