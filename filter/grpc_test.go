package filter

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// scriptedService records the calls of the Go leg and holds the answer the
// test hands to onGrpcReceive.
type scriptedService struct {
	next      uint32
	calls     []recordedCall
	cancelled []uint32
	answer    []byte
}

type recordedCall struct {
	token               uint32
	service             []byte
	serviceName, method string
	message             []byte
	timeoutMillis       uint32
}

func (s *scriptedService) call(service []byte, serviceName, method string, message []byte, timeoutMillis uint32) (uint32, error) {
	s.next += 2
	s.calls = append(s.calls, recordedCall{s.next, slices.Clone(service), serviceName, method, slices.Clone(message), timeoutMillis})
	return s.next, nil
}
func (s *scriptedService) cancel(token uint32) { s.cancelled = append(s.cancelled, token) }
func (s *scriptedService) received() []byte    { return s.answer }

// Protobuf writers for answers, independent of the plugin's decoder.
func pbVarint(field int, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(field<<3)), v)
}
func pbBytes(field int, parts ...[]byte) []byte {
	body := slices.Concat(parts...)
	return append(binary.AppendUvarint(binary.AppendUvarint(nil, uint64(field<<3|2)), uint64(len(body))), body...)
}

// overLimit is RateLimitResponse{OVER_LIMIT, [status{OVER_LIMIT, 5 per
// minute named "per-user", reset in 42 s}], response header x-why: user}.
var overLimit = slices.Concat(pbVarint(1, 2),
	pbBytes(2, pbVarint(1, 2), pbBytes(2, pbVarint(1, 5), pbVarint(2, 2), pbBytes(3, []byte("per-user"))),
		pbBytes(4, pbVarint(1, 42))),
	pbBytes(3, pbBytes(1, []byte("x-why")), pbBytes(2, []byte("user"))))

// okAnswer is RateLimitResponse{OK} asking for a request and a response header.
var okAnswer = slices.Concat(pbVarint(1, 1),
	pbBytes(4, pbBytes(1, []byte("x-limit-checked")), pbBytes(2, []byte("yes"))),
	pbBytes(3, pbBytes(1, []byte("x-quota")), pbBytes(2, []byte("fine"))))

// grpcDriver answers the plugin's gRPC calls in one leg: the Go leg's
// scripted service and callbacks, or proxyhost's for a .wasm.
type grpcDriver interface {
	// made is the number of calls made so far.
	made() int
	lastCall(t *testing.T) recordedCall
	receive(t *testing.T, token uint32, answer []byte)
	close(t *testing.T, token, status uint32)
	cancelled(token uint32) bool
	resumed(id uint32) bool
	// later makes the plugin's clock (Go leg: the call's start) d later.
	later(token uint32, d time.Duration)
}

// newGrpcDriver returns the driver of leg l, whose host is host.
func newGrpcDriver(t *testing.T, l leg, host testHost) grpcDriver {
	if l.wasm != "" {
		return wasmDriver{host.(*wasmHost)}
	}
	svc := &scriptedService{}
	nativeGrpc = svc
	t.Cleanup(func() { nativeGrpc = nil })
	return goDriver{svc, host}
}

type goDriver struct {
	svc  *scriptedService
	host testHost
}

func (d goDriver) made() int { return len(d.svc.calls) }
func (d goDriver) lastCall(t *testing.T) recordedCall {
	if len(d.svc.calls) == 0 {
		t.Fatal("no call made")
	}
	return d.svc.calls[len(d.svc.calls)-1]
}
func (d goDriver) receive(_ *testing.T, token uint32, answer []byte) {
	d.svc.answer = answer
	onGrpcReceive(token, uint32(len(answer)))
}
func (d goDriver) close(_ *testing.T, token, status uint32) { onGrpcClose(token, status) }
func (d goDriver) cancelled(token uint32) bool              { return slices.Contains(d.svc.cancelled, token) }
func (d goDriver) resumed(id uint32) bool {
	// The SDK's emulator keeps each stream's action.
	return d.host.(interface{ GetCurrentHttpStreamAction(uint32) action }).GetCurrentHttpStreamAction(id) == actionContinue
}
func (d goDriver) later(token uint32, by time.Duration) {
	if h, ok := calls[token]; ok {
		h.global.started -= int64(by)
	}
}

type wasmDriver struct{ h *wasmHost }

func (d wasmDriver) made() int { return len(d.h.vm.GrpcCalls()) }
func (d wasmDriver) lastCall(t *testing.T) recordedCall {
	cs := d.h.vm.GrpcCalls()
	if len(cs) == 0 {
		t.Fatal("no call made")
	}
	c := cs[len(cs)-1]
	return recordedCall{c.Token, c.Service, c.ServiceName, c.Method, c.Message, c.TimeoutMillis}
}
func (d wasmDriver) receive(t *testing.T, token uint32, answer []byte) {
	if err := d.h.vm.GrpcReceive(token, answer); err != nil {
		t.Fatal(err)
	}
}
func (d wasmDriver) close(t *testing.T, token, status uint32) {
	if err := d.h.vm.GrpcClose(token, status, "test"); err != nil {
		t.Fatal(err)
	}
}
func (d wasmDriver) cancelled(token uint32) bool {
	for _, c := range d.h.vm.GrpcCalls() {
		if c.Token == token {
			return c.Cancelled
		}
	}
	return false
}
func (d wasmDriver) resumed(id uint32) bool           { return d.h.stream(id).Resumed() > 0 }
func (d wasmDriver) later(_ uint32, by time.Duration) { d.h.w.now.Add(int64(by)) }

func TestFilter_GlobalLimitAnswers(t *testing.T) {
	// A local bucket that never runs dry here.
	config := strings.Replace(globalPolicy("deny"), `"maxTokens": 2`, `"maxTokens": 100`, 1)
	forEachLeg(t, config, func(t *testing.T, l leg, host testHost) {
		drv := newGrpcDriver(t, l, host)
		startPlugin(t, host)
		user := [2]string{"x-user", "alice"}
		start := func() (uint32, recordedCall) {
			t.Helper()
			id := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(id, request("/api/x", user), true); a != actionPause {
				t.Fatalf("action %v while the service is asked, want pause", a)
			}
			return id, drv.lastCall(t)
		}

		t.Run("the call", func(t *testing.T) {
			id, c := start()
			defer host.CompleteHttpContext(id)
			g := policyOf(t, config)
			wantMessage, _ := g.AppendRequest(nil, &policy.Request{Headers: headerList{user}})
			if string(c.service) != string(g.GrpcService()) || c.serviceName != "envoy.service.ratelimit.v3.RateLimitService" ||
				c.method != "ShouldRateLimit" || c.timeoutMillis != 20 || string(c.message) != string(wantMessage) {
				t.Fatalf("call = %+v", c)
			}
		})
		t.Run("over limit", func(t *testing.T) {
			id, c := start()
			defer host.CompleteHttpContext(id)
			drv.receive(t, c.token, overLimit)
			r := host.GetSentLocalResponse(id)
			if r == nil || r.StatusCode != 429 || r.StatusCodeDetail != "wasmgate_rate_limited" && l.wasm != "" {
				t.Fatalf("local response %+v, want 429 wasmgate_rate_limited", r)
			}
			for name, want := range map[string]string{"retry-after": "42", "ratelimit": `"per-user";r=0;t=42`,
				"ratelimit-policy": `"per-user";q=5;w=60`, "x-why": "user", "x-envoy-ratelimited": "true"} {
				if got, _ := header(r.Headers, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
		t.Run("ok", func(t *testing.T) {
			id, c := start()
			defer host.CompleteHttpContext(id)
			drv.receive(t, c.token, okAnswer)
			if !drv.resumed(id) || host.GetSentLocalResponse(id) != nil {
				t.Fatalf("resumed %v, local response %+v; want the request resumed", drv.resumed(id), host.GetSentLocalResponse(id))
			}
			must(t, host.GetCurrentRequestHeaders(id), "x-limit-checked", "yes")
			host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
			must(t, host.GetCurrentResponseHeaders(id), "x-quota", "fine")
		})
		t.Run("error and timeout", func(t *testing.T) {
			for _, late := range []bool{false, true} {
				id, c := start()
				if late {
					drv.later(c.token, time.Second) // the 20 ms passed long ago
				}
				drv.close(t, c.token, 14)
				if r := host.GetSentLocalResponse(id); r == nil || r.StatusCode != 500 {
					t.Fatalf("late %v: local response %+v, want 500 (failureMode deny)", late, r)
				}
				host.CompleteHttpContext(id)
			}
		})
		t.Run("unknown tokens and late answers are ignored", func(t *testing.T) {
			drv.receive(t, 12345, nil)
			drv.close(t, 12345, 2)
			id, c := start()
			host.CompleteHttpContext(id)
			if !drv.cancelled(c.token) {
				t.Fatalf("the finished stream's call %d was not cancelled", c.token)
			}
			drv.receive(t, c.token, overLimit) // after the cancel: nothing to do
		})
		host.Tick()
		for name, want := range map[string]uint64{"global_ok": 1, "global_over_limit": 1, "global_error": 1, "global_timeout": 1} {
			if got := counter(t, host, "wasmgate.route.api."+name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
		if len(calls) != 0 {
			t.Errorf("%d calls still waiting in the Go leg, want none", len(calls))
		}
	})
}

// headerList is a policy.HeaderGetter over name-value pairs.
type headerList [][2]string

func (h headerList) Header(name string) (string, bool) { return header(h, name) }

func policyOf(t *testing.T, js string) *policy.GlobalLimit {
	t.Helper()
	p, err := policy.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return p.Routes()[0].GlobalLimit
}
