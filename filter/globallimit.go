package filter

import (
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// globalCall is a stream's call to the rate limit service, if one is out.
type globalCall struct {
	limit   *policy.GlobalLimit
	state   *routeState
	token   uint32
	started int64 // Unix ns
	out     bool
	// admitted is set when the service said OK: its response headers go
	// on the response.
	admitted bool
	answer   policy.Answer
	message  []byte // the encoded request, reused
}

// calls are the streams waiting for the rate limit service, by token. The
// answer comes on the root context, so the stream is found here; a VM runs
// one callback at a time.
var calls = map[uint32]*httpContext{}

// globalMetrics defines the global-limit counters of a route.
func globalMetrics(rs *routeState, prefix string) {
	rs.globalOK = defineCounterMetric(prefix + "global_ok")
	rs.globalOverLimit = defineCounterMetric(prefix + "global_over_limit")
	rs.globalError = defineCounterMetric(prefix + "global_error")
	rs.globalTimeout = defineCounterMetric(prefix + "global_timeout")
}

// askGlobal asks the rate limit service about the request and pauses it
// until the answer. A request without descriptors is admitted without a
// call, as in Envoy.
func (h *httpContext) askGlobal(g *policy.GlobalLimit, rs *routeState) action {
	c := &h.global
	c.limit, c.state, c.admitted = g, rs, false
	var n int
	c.message, n = g.AppendRequest(c.message[:0], &h.request)
	if n == 0 {
		return actionContinue
	}
	token, err := grpcCall(g.GrpcService(), policy.RateLimitService, policy.RateLimitMethod, c.message, g.TimeoutMillis())
	if err != nil {
		logDebug("wasmgate: rate limit service of route " + g.Name + ": " + err.Error())
		return h.globalFailed(policy.AnswerError, false)
	}
	c.token, c.started, c.out = token, time.Now().UnixNano(), true
	calls[token] = h
	return actionPause
}

// globalFailed applies the limit's failureMode to a call that failed or
// timed out. paused says whether the stream waits and must be resumed.
func (h *httpContext) globalFailed(code policy.AnswerCode, paused bool) action {
	c := &h.global
	if code == policy.AnswerTimeout {
		c.state.globalTimeout.Increment(1)
	} else {
		c.state.globalError.Increment(1)
	}
	if c.limit.FailureMode == policy.FailureDeny && h.deny(c.limit.StatusOnError, "rate_limit_service_error", nil, "") {
		return actionPause
	}
	return h.resume(paused)
}

// resume lets the request go on: when paused, by a host call.
func (h *httpContext) resume(paused bool) action {
	if paused {
		if err := resumeHTTPRequest(); err != nil {
			logDebug("wasmgate: resuming a request: " + err.Error())
		}
	}
	return actionContinue
}

// deny answers the stream locally. When that fails, the request is let
// through rather than left waiting.
func (h *httpContext) deny(status uint32, details string, fields [][2]string, body string) bool {
	if err := sendLocalResponse(status, details, fields, body); err != nil {
		logDebug("wasmgate: sending a local response: " + err.Error())
		return false
	}
	h.denied = true
	return true
}

// take removes the stream waiting on token from calls and makes it the
// target of host calls; nil when no stream waits on it.
func take(token uint32) *httpContext {
	h, ok := calls[token]
	if !ok {
		return nil
	}
	delete(calls, token)
	h.global.out = false
	if err := setEffectiveContext(h.contextID); err != nil {
		logDebug("wasmgate: rate limit answer for a finished stream: " + err.Error())
		return nil
	}
	return h
}

func onGrpcReceive(token, size uint32) {
	h := take(token)
	if h == nil {
		return
	}
	c := &h.global
	data, err := grpcReceiveBuffer(size)
	if err == nil {
		err = c.answer.Decode(data)
	}
	if err != nil {
		logDebug("wasmgate: rate limit service of route " + c.limit.Name + ": " + err.Error())
		h.globalFailed(policy.AnswerError, true)
		return
	}
	if c.answer.Code == policy.AnswerOverLimit {
		c.state.globalOverLimit.Increment(1)
		h.fields = c.limit.AppendFields(h.fields[:0], &c.answer)
		if !h.deny(c.limit.Status, "request_rate_limited", h.fields, c.limit.Body) {
			h.resume(true)
		}
		return
	}
	c.state.globalOK.Increment(1)
	c.admitted = true
	for _, kv := range c.answer.RequestHeaders {
		if err := addHTTPRequestHeader(kv[0], kv[1]); err != nil {
			logDebug("wasmgate: header " + kv[0] + ": " + err.Error())
		}
	}
	h.resume(true)
}

// onGrpcClose ends a call without an answer: an error of the service or of
// the way to it, or the timeout. Envoy reports a timeout as UNAVAILABLE
// like a refused connection, so the time taken tells them apart: Envoy's
// timer starts before ours and fires on whole milliseconds, so a close
// after 90% of the timeout counts as the timeout.
func onGrpcClose(token, status uint32) {
	h := take(token)
	if h == nil {
		return
	}
	c := &h.global
	code := policy.AnswerError
	if status == grpcDeadlineExceeded || time.Now().UnixNano()-c.started >= int64(c.limit.Timeout)/10*9 {
		code = policy.AnswerTimeout
	}
	logDebug("wasmgate: rate limit service of route " + c.limit.Name + ": gRPC status " + grpcStatusName(status) + " " + grpcStatusMessage())
	h.globalFailed(code, true)
}

const grpcDeadlineExceeded = 4

func grpcStatusName(status uint32) string {
	const digits = "0123456789"
	if status < 10 {
		return digits[status : status+1]
	}
	if status < 100 {
		return digits[status/10:status/10+1] + digits[status%10:status%10+1]
	}
	return "?"
}

// endGlobal cancels the stream's outstanding call, if any.
func (h *httpContext) endGlobal() {
	c := &h.global
	if c.out {
		grpcCancel(c.token)
		delete(calls, c.token)
		c.out = false
	}
	c.limit, c.state, c.admitted = nil, nil, false
}

// addGlobalResponseHeaders adds the headers an OK answer asked for.
func (h *httpContext) addGlobalResponseHeaders() {
	if !h.global.admitted {
		return
	}
	for _, kv := range h.global.answer.ResponseHeaders {
		if err := addHTTPResponseHeader(kv[0], kv[1]); err != nil {
			logDebug("wasmgate: header " + kv[0] + ": " + err.Error())
		}
	}
}
