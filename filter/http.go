package filter

import (
	"encoding/binary"
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// httpContext is one HTTP stream. It is recycled by its plugin context after
// the stream ends; OnHttpRequestHeaders resets what it uses.
type httpContext struct {
	defaultHTTP
	plugin  *pluginContext
	config  *config
	headers headerView
	request policy.Request
	plan    policy.Plan
	buckets sharedBuckets
	// replied is set when the stream was answered with the plan's reply.
	replied bool
	// contextID is the stream's id, to find it again when the rate limit
	// service answers on the root context; global is that call.
	contextID uint32
	global    globalCall
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) action {
	c := h.config
	h.replied = false
	if c == nil {
		return actionContinue
	}
	h.headers.load()
	h.request = policy.Request{
		Path:      h.headers.value(":path"),
		Method:    h.headers.value(":method"),
		Authority: h.headers.value(":authority"),
		Headers:   &h.headers,
	}
	if c.needsClientAddress {
		h.request.ClientAddress = clientAddress()
	}
	if c.needsScheme {
		h.request.Scheme = requestScheme(&h.headers)
	}
	if c.needsPort {
		h.request.Port = listenerPort()
	}
	plan := &h.plan
	c.policy.Decide(&h.request, h, plan)
	applyEdits(plan.Request, replaceHTTPRequestHeader, addHTTPRequestHeader, removeHTTPRequestHeader)
	if r := plan.Route; r != nil {
		if err := setRouteProperty(c.routes[r.Index].name); err != nil {
			logDebug("wasmgate: recording the route: " + err.Error())
		}
	}
	c.counters.add(plan.Counters)
	if plan.Limit.Err != nil && plan.Limit.Err != policy.ErrContended {
		logDebug("wasmgate: rate-limit bucket of route " + plan.Route.Name + ": " + plan.Limit.Err.Error())
	}
	if c.logRequests {
		logRequest(&h.request, plan)
	}
	if r := plan.Reply; r != nil && h.reply(r) {
		return actionPause
	}
	if plan.Call != nil {
		return h.call()
	}
	return actionContinue
}

// reply answers the stream with r; when that fails, the request goes on.
func (h *httpContext) reply(r *policy.Reply) bool {
	if err := sendLocalResponse(r.Status, r.Details, r.Headers, r.Body); err != nil {
		logDebug("wasmgate: sending a local reply: " + err.Error())
		return false
	}
	h.replied = true
	return true
}

// Now, Random and Buckets make the stream the policy.Env of its plan.
func (h *httpContext) Now() int64     { return time.Now().UnixNano() }
func (h *httpContext) Random() uint64 { return h.plugin.nextRandom() }
func (h *httpContext) Buckets(rl *policy.RateLimit) policy.BucketStore {
	h.buckets.keys = &h.config.routes[rl.Route].limitKeys
	return &h.buckets
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) action {
	if h.config == nil || h.replied {
		return actionContinue
	}
	applyEdits(h.plan.Response, replaceHTTPResponseHeader, addHTTPResponseHeader, removeHTTPResponseHeader)
	return actionContinue
}

func (h *httpContext) OnHttpStreamDone() {
	p := h.plugin
	h.endCall()
	if h.config != nil {
		h.config.streams--
	}
	h.config, h.request = nil, policy.Request{}
	h.headers.reset()
	p.free = append(p.free, h)
}

// applyEdits runs header edits with one header map's host calls. A failed
// host call is logged and the stream goes on.
func applyEdits(edits []policy.Edit, set, add func(string, string) error, remove func(string) error) {
	for i := range edits {
		e := &edits[i]
		var err error
		switch e.Kind {
		case policy.HeaderRemove:
			err = remove(e.Name)
		case policy.HeaderSet:
			err = set(e.Name, e.Value)
		case policy.HeaderAdd:
			err = add(e.Name, e.Value)
		}
		if err != nil {
			logDebug("wasmgate: header " + e.Name + ": " + err.Error())
		}
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

// requestScheme is :scheme, which Envoy sets on every request from the
// downstream connection, or else x-forwarded-proto.
func requestScheme(headers *headerView) string {
	if s := headers.value(":scheme"); s != "" {
		return s
	}
	return headers.value("x-forwarded-proto")
}

// listenerPort is the port of the address the request came in on (the
// destination.port property: a 64-bit little-endian integer), or 0.
func listenerPort() uint32 {
	v, err := getProperty(destinationPortProperty)
	if err != nil || len(v) != 8 {
		return 0
	}
	if port := binary.LittleEndian.Uint64(v); port <= 65535 {
		return uint32(port)
	}
	return 0
}

var destinationPortProperty = []string{"destination", "port"}
