package filter

import (
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// A plan with a Call waits for the rate limit service: the stream makes the
// call with proxy_grpc_call and pauses; the answer comes to the VM's root
// context (onGrpcReceive, onGrpcClose), which finds the stream by token,
// makes it the effective context and finishes its plan.

// globalCall is a stream's outstanding call.
type globalCall struct {
	token   uint32
	started int64 // Unix ns
	out     bool
	answer  policy.Answer
}

// calls are the streams waiting for the rate limit service, by token. A VM
// runs one callback at a time.
var calls = map[uint32]*httpContext{}

// call makes the plan's call and pauses the request until the answer. A
// call that cannot be made finishes the plan at once, as failed.
func (h *httpContext) call() action {
	c := h.plan.Call
	g := c.Limit
	token, err := grpcCall(g.GrpcService(), policy.RateLimitService, policy.RateLimitMethod, c.Message, g.TimeoutMillis())
	if err != nil {
		logDebug("wasmgate: rate limit service of route " + g.Name + ": " + err.Error())
		h.global.answer.Fail(policy.AnswerError)
		return h.complete(false)
	}
	h.global.token, h.global.started, h.global.out = token, time.Now().UnixNano(), true
	calls[token] = h
	return actionPause
}

// complete finishes the plan with the answer and applies what it adds.
// paused says whether the request waits and must be resumed.
func (h *httpContext) complete(paused bool) action {
	plan := &h.plan
	plan.Complete(&h.global.answer)
	applyEdits(plan.Request, replaceHTTPRequestHeader, addHTTPRequestHeader, removeHTTPRequestHeader)
	h.config.counters.add(plan.Counters)
	if r := plan.Reply; r != nil && h.reply(r) {
		return actionPause
	}
	if paused {
		if err := resumeHTTPRequest(); err != nil {
			logDebug("wasmgate: resuming a request: " + err.Error())
		}
	}
	return actionContinue
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
	data, err := grpcReceiveBuffer(size)
	if err == nil {
		err = h.global.answer.Decode(data)
	}
	if err != nil {
		logDebug("wasmgate: rate limit service of route " + h.plan.Route.Name + ": " + err.Error())
		h.global.answer.Fail(policy.AnswerError)
	}
	h.complete(true)
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
	code := policy.AnswerError
	if status == grpcDeadlineExceeded || time.Now().UnixNano()-h.global.started >= int64(h.plan.Call.Limit.Timeout)/10*9 {
		code = policy.AnswerTimeout
	}
	logDebug("wasmgate: rate limit service of route " + h.plan.Route.Name + ": gRPC status " + grpcStatusName(status) + " " + grpcStatusMessage())
	h.global.answer.Fail(code)
	h.complete(true)
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

// endCall cancels the stream's outstanding call, if any.
func (h *httpContext) endCall() {
	if g := &h.global; g.out {
		grpcCancel(g.token)
		delete(calls, g.token)
		g.out = false
	}
}
