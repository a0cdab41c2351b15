package filter

import "testing"

func globalPolicy(failureMode string) string {
	return `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 2, "tokensPerFill": 1, "fillInterval": "1h"}},
	  "globalRateLimit": {"domain": "d", "cluster": "ratelimit", "failureMode": "` + failureMode + `",
	    "rateLimits": [{"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]}]}}]}`
}

// TestFilter_GlobalLimitUnavailable runs where no gRPC call can be made (the
// emulator), as when the rate limit service is down: failureMode decides,
// the failure is counted, and the local bucket is asked first.
func TestFilter_GlobalLimitUnavailable(t *testing.T) {
	tests := []struct {
		name, failureMode string
		wantStatus        uint32 // 0: admitted
	}{
		{name: "allow", failureMode: "allow"},
		{name: "deny", failureMode: "deny", wantStatus: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachLeg(t, globalPolicy(tc.failureMode), func(t *testing.T, l leg, host testHost) {
				startPlugin(t, host)
				send := func(extra ...[2]string) (action, uint32) {
					id := host.InitializeHttpContext()
					a := host.CallOnRequestHeaders(id, request("/api/x", extra...), true)
					if r := host.GetSentLocalResponse(id); r != nil {
						return a, r.StatusCode
					}
					return a, 0
				}
				// Without the descriptor's header there is nothing to ask.
				if a, st := send(); a != actionContinue || st != 0 {
					t.Fatalf("request without descriptor: action %v, status %d; want continue", a, st)
				}
				if a, st := send([2]string{"x-user", "alice"}); st != tc.wantStatus || (st == 0) != (a == actionContinue) {
					t.Fatalf("request with descriptor: action %v, status %d; want status %d", a, st, tc.wantStatus)
				}
				if got := counter(t, host, "wasmgate.route.api.global_error"); got != 1 {
					t.Fatalf("global_error = %d, want 1", got)
				}
				// The local bucket (2 tokens) is empty now: its 429 costs no call.
				if _, st := send([2]string{"x-user", "alice"}); st != 429 {
					t.Fatalf("third request: status %d, want 429 from the local bucket", st)
				}
				if got := counter(t, host, "wasmgate.route.api.global_error"); got != 1 {
					t.Fatalf("global_error = %d after a local denial, want still 1", got)
				}
			})
		})
	}
}
