package policy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const globalPolicy = `{"routes": [{"name": "api", "globalRateLimit": {
  "domain": "shop", "cluster": "ratelimit", "timeout": "150ms", "failureMode": "deny",
  "rateLimits": [
    {"actions": [{"genericKey": {"descriptorValue": "api"}}, {"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]},
    {"actions": [{"remoteAddress": {}}, {"routeName": {}}]},
    {"actions": [{"requestHeaders": {"headerName": ":authority", "descriptorKey": "host"}},
                 {"requestHeaders": {"headerName": ":method", "descriptorKey": "method"}},
                 {"requestHeaders": {"headerName": "x-plan", "descriptorKey": "plan", "defaultValue": "free"}},
                 {"requestHeaders": {"headerName": "x-tag", "descriptorKey": "tag", "skipIfAbsent": true}}]}
  ]}}]}`

// entries is a decoded descriptor for comparisons: "key=value" pairs.
type entries []string

// decodeRequest is a minimal independent reader of RateLimitRequest; the
// real generated types check the same encoding in the tooling module.
func decodeRequest(t *testing.T, data []byte) (string, []entries) {
	t.Helper()
	var domain string
	var descriptors []entries
	err := eachField(data, func(field, wire int, _ uint64, b []byte) error {
		switch field {
		case 1:
			domain = string(b)
		case 2:
			var d entries
			err := eachField(b, func(_, _ int, _ uint64, e []byte) error {
				var k, v string
				err := eachField(e, func(field, _ int, _ uint64, s []byte) error {
					if field == 1 {
						k = string(s)
					} else {
						v = string(s)
					}
					return nil
				})
				d = append(d, k+"="+v)
				return err
			})
			descriptors = append(descriptors, d)
			return err
		default:
			t.Errorf("unexpected field %d wire %d", field, wire)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return domain, descriptors
}

func TestGlobalLimit_Parse(t *testing.T) {
	g := mustParse(t, globalPolicy).Routes()[0].GlobalLimit
	if g.Domain != "shop" || g.Cluster != "ratelimit" || g.Timeout != 150*time.Millisecond || g.TimeoutMillis() != 150 ||
		g.FailureMode != FailureDeny || g.Status != 429 || g.StatusOnError != 500 || g.Name != "api" {
		t.Fatalf("GlobalLimit = %+v", g)
	}
	// GrpcService{envoy_grpc{cluster_name: "ratelimit"}}.
	if want := []byte("\x0a\x0b\x0a\x09ratelimit"); !bytes.Equal(g.GrpcService(), want) {
		t.Fatalf("GrpcService = %q, want %q", g.GrpcService(), want)
	}
	p := mustParse(t, `{"routes": [{"globalRateLimit": {"domain": "d", "cluster": "c", "timeout": "1500us",
	  "rateLimits": [{"actions": [{"genericKey": {"descriptorValue": "v"}}]}]}}]}`)
	if got := p.Routes()[0].GlobalLimit.TimeoutMillis(); got != 2 {
		t.Fatalf("TimeoutMillis = %d, want 2 (rounded up)", got)
	}
	if !mustParse(t, globalPolicy).UsesClientAddress() || !mustParse(t, globalPolicy).UsesMethod() || !mustParse(t, globalPolicy).UsesAuthority() {
		t.Fatal("a global limit reading the client address, :method and :authority must say so")
	}
	if p.UsesClientAddress() || p.UsesMethod() || p.UsesAuthority() {
		t.Fatal("a constant global limit reads nothing")
	}
}

func TestGlobalLimit_AppendRequest(t *testing.T) {
	g := mustParse(t, globalPolicy).Routes()[0].GlobalLimit
	tests := []struct {
		name    string
		req     Request
		want    []entries
		wantLen int
	}{
		{name: "every descriptor", req: Request{Method: "GET", Authority: "shop.example", ClientAddress: "10.0.0.7:5555",
			Headers: headerMap{"x-user": "alice", "x-plan": "gold", "x-tag": "t"}},
			want: []entries{{"generic_key=api", "user=alice"}, {"remote_address=10.0.0.7", "route_name=api"},
				{"host=shop.example", "method=GET", "plan=gold", "tag=t"}}},
		{name: "missing header drops its descriptor; default and skipIfAbsent keep theirs",
			req:  Request{Method: "POST", Authority: "a", ClientAddress: "[::1]:80", Headers: headerMap{"x-user": ""}},
			want: []entries{{"remote_address=::1", "route_name=api"}, {"host=a", "method=POST", "plan=free"}}},
		{name: "nothing to ask", req: Request{}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, n := g.AppendRequest(nil, &tc.req)
			domain, got := decodeRequest(t, data)
			if domain != "shop" || n != len(tc.want) || !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("AppendRequest = %q %q (%d), want shop %q", domain, got, n, tc.want)
			}
		})
	}
}

func TestGlobalLimit_AppendRequest_LongDescriptor(t *testing.T) {
	g := mustParse(t, globalPolicy).Routes()[0].GlobalLimit
	for _, size := range []int{100, 127, 128, 300, 20000} {
		user := strings.Repeat("u", size)
		data, n := g.AppendRequest([]byte("prefix"), &Request{Headers: headerMap{"x-user": user}})
		domain, got := decodeRequest(t, data[len("prefix"):])
		if n != 1 || domain != "shop" || !slices.Equal(got[0], entries{"generic_key=api", "user=" + user}) {
			t.Fatalf("size %d: AppendRequest = %q (%d)", size, got, n)
		}
	}
}

func TestGlobalLimit_AppendRequest_Allocs(t *testing.T) {
	g := mustParse(t, globalPolicy).Routes()[0].GlobalLimit
	req := Request{Method: "GET", Authority: "a", ClientAddress: "10.0.0.1:1", Headers: headerMap{"x-user": "bob"}}
	buf := make([]byte, 0, 512)
	if allocs := testing.AllocsPerRun(100, func() { buf, _ = g.AppendRequest(buf[:0], &req) }); allocs != 0 {
		t.Fatalf("AppendRequest: %v allocations, want 0", allocs)
	}
}

// Encoders for answers, written independently of the decoder.
func field(n int, wire int, payload ...byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(n<<3|wire)), payload...)
}
func varintField(n int, v uint64) []byte {
	return field(n, wireVarint, binary.AppendUvarint(nil, v)...)
}
func msgField(n int, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return field(n, wireBytes, append(binary.AppendUvarint(nil, uint64(len(body))), body...)...)
}
func strField(n int, s string) []byte { return msgField(n, []byte(s)) }

// status encodes a DescriptorStatus with a limit of perUnit per unit.
func status(code uint64, name string, perUnit, unit, remaining uint64, resetSeconds uint64) []byte {
	return msgField(2, varintField(1, code),
		msgField(2, varintField(1, perUnit), varintField(2, unit), strField(3, name)),
		varintField(3, remaining), msgField(4, varintField(1, resetSeconds), varintField(2, 500_000_000)))
}

func TestAnswer_Decode(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want Answer
	}{
		{name: "ok", data: bytes.Join([][]byte{varintField(1, 1),
			status(1, "a", 10, 2, 7, 30), status(1, "b", 5, 1, 3, 0),
			msgField(3, strField(1, "X-Seen"), strField(2, "yes")), msgField(4, strField(1, "x-up"), strField(3, "raw"))}, nil),
			want: Answer{Code: AnswerOK, HasLimit: true,
				Limit:           LimitStatus{Name: "b", RequestsPerUnit: 5, Window: time.Second, Remaining: 3, Reset: 500 * time.Millisecond},
				ResponseHeaders: [][2]string{{"x-seen", "yes"}}, RequestHeaders: [][2]string{{"x-up", "raw"}}}},
		{name: "over limit reports the over status that resets last", data: bytes.Join([][]byte{varintField(1, 2),
			status(1, "ok", 100, 3, 0, 9), status(2, "minute", 5, 2, 0, 20), status(2, "hour", 50, 3, 0, 1000), []byte{0x3a, 0}}, nil),
			want: Answer{Code: AnswerOverLimit, HasLimit: true,
				Limit: LimitStatus{Name: "hour", RequestsPerUnit: 50, Window: time.Hour, Reset: 1000*time.Second + 500*time.Millisecond, over: true}}},
		{name: "no statuses", data: varintField(1, 2), want: Answer{Code: AnswerOverLimit}},
		{name: "unit multiplier", data: bytes.Join([][]byte{varintField(1, 1),
			msgField(2, msgField(2, varintField(1, 9), varintField(2, 2), msgField(4, varintField(1, 5))))}, nil),
			want: Answer{Code: AnswerOK, HasLimit: true, Limit: LimitStatus{RequestsPerUnit: 9, Window: 5 * time.Minute}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Answer
			if err := a.Decode(tc.data); err != nil {
				t.Fatal(err)
			}
			if a.Code != tc.want.Code || a.HasLimit != tc.want.HasLimit || a.Limit != tc.want.Limit ||
				!slices.Equal(a.ResponseHeaders, tc.want.ResponseHeaders) || !slices.Equal(a.RequestHeaders, tc.want.RequestHeaders) {
				t.Fatalf("Decode = %+v\nwant     %+v", a, tc.want)
			}
		})
	}
}

func TestAnswer_Decode_Errors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "unknown code", data: varintField(1, 0), want: "rate limit answer: overall code is neither OK nor OVER_LIMIT"},
		{name: "empty", data: nil, want: "rate limit answer: overall code is neither OK nor OVER_LIMIT"},
		{name: "truncated length", data: []byte{0x12, 0x05, 1}, want: "rate limit answer: truncated or malformed"},
		{name: "truncated varint", data: []byte{0x08, 0x80}, want: "rate limit answer: truncated or malformed"},
		{name: "field zero", data: []byte{0x00, 0x01}, want: "rate limit answer: truncated or malformed"},
		{name: "group wire type", data: []byte{0x0b}, want: "rate limit answer: truncated or malformed"},
		{name: "header with CR", data: append(varintField(1, 1), msgField(3, strField(1, "x"), strField(2, "a\rb"))...),
			want: "rate limit answer: truncated or malformed"},
		{name: "header without name", data: append(varintField(1, 1), msgField(3, strField(2, "v"))...),
			want: "rate limit answer: truncated or malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Answer
			err := a.Decode(tc.data)
			if err == nil || err.Error() != tc.want || a.Code != AnswerError {
				t.Fatalf("Decode = %v (code %d), want %q", err, a.Code, tc.want)
			}
		})
	}
}

func TestGlobalLimit_AppendFields(t *testing.T) {
	over := Answer{Code: AnswerOverLimit, HasLimit: true,
		Limit:           LimitStatus{RequestsPerUnit: 5, Window: time.Minute, Remaining: 0, Reset: 41200 * time.Millisecond},
		ResponseHeaders: [][2]string{{"x-why", "quota"}}}
	named := over
	named.Limit.Name = "per-user"
	named.ResponseHeaders = nil
	tests := []struct {
		name   string
		fields string
		a      Answer
		want   [][2]string
	}{
		{name: "ietf", a: over, want: [][2]string{{"retry-after", "42"},
			{"ratelimit", `"api";r=0;t=42`}, {"ratelimit-policy", `"api";q=5;w=60`}, {"x-why", "quota"}}},
		{name: "named limit, legacy", fields: "legacy", a: named, want: [][2]string{{"retry-after", "42"},
			{"x-ratelimit-limit", "5"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "42"}}},
		{name: "none", fields: "none", a: named, want: [][2]string{{"retry-after", "42"}}},
		{name: "no limit status", a: Answer{Code: AnswerOverLimit}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.fields != "" {
				extra = `, "fields": ` + quoteJSON(tc.fields)
			}
			g := mustParse(t, `{"routes": [{"name": "api", "globalRateLimit": {"domain": "d", "cluster": "c",
			  "rateLimits": [{"actions": [{"genericKey": {"descriptorValue": "v"}}]}]`+extra+`}}]}`).Routes()[0].GlobalLimit
			if got := g.AppendFields(nil, &tc.a); !slices.Equal(got, tc.want) {
				t.Fatalf("AppendFields = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzAnswer_Decode: any bytes from the service decode or fail cleanly,
// never panic, and a failure is an AnswerError.
func FuzzAnswer_Decode(f *testing.F) {
	f.Add(varintField(1, 1))
	f.Add(bytes.Join([][]byte{varintField(1, 2), status(2, "n", 5, 2, 0, 30), msgField(3, strField(1, "x"), strField(2, "v"))}, nil))
	f.Add([]byte{0x12, 0x05, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Answer
		if err := a.Decode(data); err != nil && a.Code != AnswerError {
			t.Fatalf("Decode failed (%v) with code %d", err, a.Code)
		}
		for _, h := range a.ResponseHeaders {
			if !isToken(h[0]) || unsafeValue(h[1]) {
				t.Fatalf("unsafe header %q", h)
			}
		}
	})
}

// planGlobal is a policy whose route has a split, a local bucket of 2 and a
// global limit on x-user.
const planGlobal = `{"routes": [{"name": "api",
  "route": [{"destination": {"host": "a"}, "weight": 1}],
  "rateLimit": {"tokenBucket": {"maxTokens": 2, "fillInterval": "1h"}},
  "globalRateLimit": {"domain": "d", "cluster": "rl", "failureMode": "deny", "body": "slow down",
    "rateLimits": [{"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]}]}}]}`

func TestPlan_Call(t *testing.T) {
	p := mustParse(t, planGlobal)
	env := newTestEnv()
	var plan Plan
	req := Request{Path: "/x", Headers: headerMap{"x-user": "u"}}
	p.Decide(&req, env, &plan)
	g := p.Routes()[0].GlobalLimit
	wantMessage, _ := g.AppendRequest(nil, &req)
	if plan.Call == nil || plan.Call.Limit != g || string(plan.Call.Message) != string(wantMessage) || plan.Reply != nil {
		t.Fatalf("plan.Call = %+v, Reply %+v; want a call of the route's limit", plan.Call, plan.Reply)
	}
	if got := strings.Join(counterNames(p, &plan), " "); got != "route.api.matched" {
		t.Fatalf("counters before the answer = %q, want only matched (picked waits for the answer)", got)
	}
	// Without the descriptor's header there is nothing to ask.
	p.Decide(&Request{Path: "/x", Headers: headerMap{}}, env, &plan)
	if plan.Call != nil || strings.Join(counterNames(p, &plan), " ") != "route.api.matched route.api.destination.a.picked" {
		t.Fatalf("no descriptor: Call %+v, counters %q", plan.Call, counterNames(p, &plan))
	}
	// The local bucket (2 tokens, one left) refuses the third: no call.
	p.Decide(&req, env, &plan)
	if plan.Call != nil || plan.Reply == nil || plan.Reply.Status != 429 {
		t.Fatalf("local denial: Call %+v, Reply %+v", plan.Call, plan.Reply)
	}
}

func TestPlan_Complete(t *testing.T) {
	over := Answer{Code: AnswerOverLimit, HasLimit: true,
		Limit: LimitStatus{RequestsPerUnit: 5, Window: time.Minute, Reset: 30 * time.Second}}
	ok := Answer{Code: AnswerOK, RequestHeaders: [][2]string{{"x-checked", "1"}}, ResponseHeaders: [][2]string{{"x-quota", "ok"}}}
	tests := []struct {
		name         string
		answer       Answer
		wantRequest  string
		wantResponse string
		wantCounters string
		wantReply    string
	}{
		{name: "ok", answer: ok, wantRequest: "add x-checked=1; ", wantResponse: "add x-quota=ok; ",
			wantCounters: "route.api.global_ok route.api.destination.a.picked"},
		{name: "over limit", answer: over, wantCounters: "route.api.global_over_limit",
			wantReply: `429 wasmgate_rate_limited [[retry-after 30] [ratelimit "api";r=0;t=30] [ratelimit-policy "api";q=5;w=60] [x-envoy-ratelimited true]] slow down`},
		{name: "error, failureMode deny", answer: Answer{Code: AnswerError}, wantCounters: "route.api.global_error",
			wantReply: "500 wasmgate_rate_limit_service_error [] "},
		{name: "timeout, failureMode deny", answer: Answer{Code: AnswerTimeout}, wantCounters: "route.api.global_timeout",
			wantReply: "500 wasmgate_rate_limit_service_error [] "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, planGlobal)
			var plan Plan
			p.Decide(&Request{Path: "/x", Headers: headerMap{"x-user": "u"}}, newTestEnv(), &plan)
			plan.Complete(&tc.answer)
			reply := ""
			if r := plan.Reply; r != nil {
				reply = fmt.Sprintf("%d %s %v %s", r.Status, r.Details, r.Headers, r.Body)
			}
			if plan.Call != nil || editList(plan.Request) != tc.wantRequest || editList(plan.Response) != tc.wantResponse ||
				strings.Join(counterNames(p, &plan), " ") != tc.wantCounters || reply != tc.wantReply {
				t.Fatalf("Complete: call %v request %q response %q counters %q reply %q\nwant request %q response %q counters %q reply %q",
					plan.Call, editList(plan.Request), editList(plan.Response), counterNames(p, &plan), reply,
					tc.wantRequest, tc.wantResponse, tc.wantCounters, tc.wantReply)
			}
		})
	}
	// failureMode allow admits.
	p := mustParse(t, strings.Replace(planGlobal, `"deny"`, `"allow"`, 1))
	var plan Plan
	p.Decide(&Request{Path: "/x", Headers: headerMap{"x-user": "u"}}, newTestEnv(), &plan)
	plan.Complete(&Answer{Code: AnswerTimeout})
	if plan.Reply != nil || strings.Join(counterNames(p, &plan), " ") != "route.api.global_timeout route.api.destination.a.picked" {
		t.Fatalf("failureMode allow: reply %+v, counters %q", plan.Reply, counterNames(p, &plan))
	}
}

func TestPlan_Call_Allocs(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "api", "globalRateLimit": {"domain": "d", "cluster": "rl",
	  "rateLimits": [{"actions": [{"genericKey": {"descriptorValue": "api"}}, {"remoteAddress": {}},
	    {"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]}]}}]}`)
	env := newTestEnv()
	req := Request{Path: "/x", ClientAddress: "10.0.0.1:5", Headers: headerMap{"x-user": "u"}}
	var plan Plan
	answer := Answer{Code: AnswerOK}
	if allocs := testing.AllocsPerRun(100, func() {
		p.Decide(&req, env, &plan)
		plan.Complete(&answer)
	}); allocs != 0 || plan.Call != nil {
		t.Fatalf("Decide and Complete with a global limit: %v allocations, want 0", allocs)
	}
}
