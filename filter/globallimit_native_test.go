//go:build !wasm

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

func TestFilter_GlobalLimitAnswers(t *testing.T) {
	svc := &scriptedService{}
	nativeGrpc = svc
	defer func() { nativeGrpc = nil }()
	// A local bucket that never runs dry here.
	config := strings.Replace(globalPolicy("deny"), `"maxTokens": 2`, `"maxTokens": 100`, 1)
	host, reset := newHost(t, leg{name: "go"}, config)
	defer reset()
	startPlugin(t, host)
	user := [2]string{"x-user", "alice"}
	start := func() (uint32, recordedCall) {
		t.Helper()
		id := host.InitializeHttpContext()
		if a := host.CallOnRequestHeaders(id, request("/api/x", user), true); a != actionPause {
			t.Fatalf("action %v while the service is asked, want pause", a)
		}
		return id, svc.calls[len(svc.calls)-1]
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
		svc.answer = overLimit
		onGrpcReceive(c.token, uint32(len(overLimit)))
		r := host.GetSentLocalResponse(id)
		if r == nil || r.StatusCode != 429 {
			t.Fatalf("local response %+v, want 429", r)
		}
		for name, want := range map[string]string{"retry-after": "42", "ratelimit": `"per-user";r=0;t=42`,
			"ratelimit-policy": `"per-user";q=5;w=60`, "x-why": "user"} {
			if got, _ := header(r.Headers, name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	})
	t.Run("ok", func(t *testing.T) {
		id, c := start()
		svc.answer = okAnswer
		onGrpcReceive(c.token, uint32(len(okAnswer)))
		// The Go leg's host is the SDK's emulator, which keeps each stream's action.
		emulator := host.(interface{ GetCurrentHttpStreamAction(uint32) action })
		if a := emulator.GetCurrentHttpStreamAction(id); a != actionContinue || host.GetSentLocalResponse(id) != nil {
			t.Fatalf("action %v, local response %+v; want the request resumed", a, host.GetSentLocalResponse(id))
		}
		must(t, host.GetCurrentRequestHeaders(id), "x-limit-checked", "yes")
		host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
		must(t, host.GetCurrentResponseHeaders(id), "x-quota", "fine")
	})
	t.Run("error and timeout", func(t *testing.T) {
		id, c := start()
		onGrpcClose(c.token, 14)
		if r := host.GetSentLocalResponse(id); r == nil || r.StatusCode != 500 {
			t.Fatalf("local response %+v, want 500 (failureMode deny)", r)
		}
		id, c = start()
		calls[c.token].global.started -= int64(time.Second) // as if the 20ms had passed long ago
		onGrpcClose(c.token, 14)
		if r := host.GetSentLocalResponse(id); r == nil || r.StatusCode != 500 {
			t.Fatalf("local response %+v, want 500 (failureMode deny)", r)
		}
	})
	t.Run("unknown tokens and late answers are ignored", func(t *testing.T) {
		onGrpcReceive(12345, 0)
		onGrpcClose(12345, 2)
		id, c := start()
		host.CompleteHttpContext(id)
		if !slices.Contains(svc.cancelled, c.token) {
			t.Fatalf("cancelled %v, want the finished stream's call %d", svc.cancelled, c.token)
		}
		svc.answer = overLimit
		onGrpcReceive(c.token, uint32(len(overLimit))) // after the cancel: nothing to do
	})
	for name, want := range map[string]uint64{"global_ok": 1, "global_over_limit": 1, "global_error": 1, "global_timeout": 1} {
		if got := counter(t, host, "wasmgate.route.api."+name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if len(calls) != 0 {
		t.Errorf("%d calls still waiting, want none", len(calls))
	}
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
