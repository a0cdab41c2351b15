package rlsproof

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmgate/wasmgate/policy"
)

const policyJSON = `{"routes": [{"name": "api", "globalRateLimit": {
  "domain": "shop", "cluster": "outbound|8081||ratelimit.infra.svc.cluster.local",
  "rateLimits": [
    {"actions": [{"genericKey": {"descriptorValue": "api"}}, {"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]},
    {"actions": [{"remoteAddress": {}}, {"routeName": {}}, {"requestHeaders": {"headerName": ":method", "descriptorKey": "method"}}]}
  ]}}]}`

type headers map[string]string

func (h headers) Header(name string) (string, bool) { v, ok := h[name]; return v, ok }

func limit(t *testing.T) *policy.GlobalLimit {
	t.Helper()
	p, err := policy.Parse([]byte(policyJSON))
	if err != nil {
		t.Fatal(err)
	}
	return p.Routes()[0].GlobalLimit
}

func entry(k, v string) *rlcommon.RateLimitDescriptor_Entry {
	return &rlcommon.RateLimitDescriptor_Entry{Key: k, Value: v}
}

// TestRequest_Encoding: the bytes AppendRequest writes are exactly what the
// generated RateLimitRequest marshals to (deterministic, canonical), and
// they unmarshal to the expected message.
func TestRequest_Encoding(t *testing.T) {
	g := limit(t)
	long := string(make([]byte, 300)) // a descriptor longer than 127 bytes
	for _, user := range []string{"alice", long} {
		req := &policy.Request{Method: "POST", ClientAddress: "10.1.2.3:4567", Headers: headers{"x-user": user}}
		data, n := g.AppendRequest(nil, req)
		want := &rlsv3.RateLimitRequest{Domain: "shop", Descriptors: []*rlcommon.RateLimitDescriptor{
			{Entries: []*rlcommon.RateLimitDescriptor_Entry{entry("generic_key", "api"), entry("user", user)}},
			{Entries: []*rlcommon.RateLimitDescriptor_Entry{entry("remote_address", "10.1.2.3"), entry("route_name", "api"), entry("method", "POST")}},
		}}
		var got rlsv3.RateLimitRequest
		if err := proto.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if n != 2 || !proto.Equal(&got, want) {
			t.Fatalf("decoded %v (%d descriptors), want %v", &got, n, want)
		}
		canonical, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if string(canonical) != string(data) {
			t.Fatalf("AppendRequest bytes differ from the generated encoding:\n%x\n%x", data, canonical)
		}
	}
}

func TestGrpcService_Encoding(t *testing.T) {
	g := limit(t)
	var got corev3.GrpcService
	if err := proto.Unmarshal(g.GrpcService(), &got); err != nil {
		t.Fatal(err)
	}
	want := &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: g.Cluster}}}
	if !proto.Equal(&got, want) {
		t.Fatalf("GrpcService = %v, want %v", &got, want)
	}
	canonical, _ := proto.Marshal(want)
	if string(canonical) != string(g.GrpcService()) {
		t.Fatalf("GrpcService bytes %x, want %x", g.GrpcService(), canonical)
	}
}

// TestAnswer_Decoding: answers marshalled by the generated types decode to
// the same values, including fields the plugin skips.
func TestAnswer_Decoding(t *testing.T) {
	resp := &rlsv3.RateLimitResponse{
		OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT,
		Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{
			{Code: rlsv3.RateLimitResponse_OK, CurrentLimit: &rlsv3.RateLimitResponse_RateLimit{Name: "per-ip", RequestsPerUnit: 100, Unit: rlsv3.RateLimitResponse_RateLimit_HOUR},
				LimitRemaining: 99, DurationUntilReset: durationpb.New(10 * time.Minute)},
			{Code: rlsv3.RateLimitResponse_OVER_LIMIT, CurrentLimit: &rlsv3.RateLimitResponse_RateLimit{Name: "per-user", RequestsPerUnit: 5,
				Unit: rlsv3.RateLimitResponse_RateLimit_MINUTE, UnitMultiplier: wrapperspb.UInt32(2)},
				DurationUntilReset: durationpb.New(41*time.Second + 250*time.Millisecond)},
		},
		ResponseHeadersToAdd: []*corev3.HeaderValue{{Key: "X-RateLimit-Why", Value: "user"}},
		RequestHeadersToAdd:  []*corev3.HeaderValue{{Key: "x-limited", RawValue: []byte("raw")}},
		RawBody:              []byte("ignored"),
		Quota:                &rlsv3.RateLimitResponse_Quota{Id: "q", Requests: 1},
	}
	data, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var a policy.Answer
	if err := a.Decode(data); err != nil {
		t.Fatal(err)
	}
	want := policy.LimitStatus{Name: "per-user", RequestsPerUnit: 5, Window: 2 * time.Minute, Reset: 41*time.Second + 250*time.Millisecond}
	if a.Code != policy.AnswerOverLimit || !a.HasLimit || a.Limit.Name != want.Name || a.Limit.RequestsPerUnit != want.RequestsPerUnit ||
		a.Limit.Window != want.Window || a.Limit.Reset != want.Reset || a.Limit.Remaining != 0 {
		t.Fatalf("Decode = %+v", a)
	}
	if len(a.ResponseHeaders) != 1 || a.ResponseHeaders[0] != [2]string{"x-ratelimit-why", "user"} ||
		len(a.RequestHeaders) != 1 || a.RequestHeaders[0] != [2]string{"x-limited", "raw"} {
		t.Fatalf("headers = %q, %q", a.ResponseHeaders, a.RequestHeaders)
	}
	ok, _ := proto.Marshal(&rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK})
	if err := a.Decode(ok); err != nil || a.Code != policy.AnswerOK || a.HasLimit {
		t.Fatalf("Decode(OK) = %v, %+v", err, a)
	}
}
