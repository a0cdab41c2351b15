package filter

import "testing"

func globalPolicy(failureMode string) string {
	return `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}],
	  "rateLimit": {"tokenBucket": {"maxTokens": 2, "tokensPerFill": 1, "fillInterval": "1h"}},
	  "globalRateLimit": {"domain": "d", "cluster": "ratelimit", "failureMode": "` + failureMode + `",
	    "rateLimits": [{"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user"}}]}]}}]}`
}

// TestFilter_GlobalLimitFailureMode: a failed call is decided by
// failureMode and counted; a request without the descriptor's header costs
// no call; the local bucket is asked first, and its 429 costs no call.
func TestFilter_GlobalLimitFailureMode(t *testing.T) {
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
				drv := newGrpcDriver(t, l, host)
				startPlugin(t, host)
				status := func(id uint32) uint32 {
					if r := host.GetSentLocalResponse(id); r != nil {
						return r.StatusCode
					}
					return 0
				}
				id := host.InitializeHttpContext()
				if a := host.CallOnRequestHeaders(id, request("/api/x"), true); a != actionContinue || drv.made() != 0 {
					t.Fatalf("request without descriptor: action %v, %d calls; want continue without a call", a, drv.made())
				}
				id = host.InitializeHttpContext()
				if a := host.CallOnRequestHeaders(id, request("/api/x", [2]string{"x-user", "alice"}), true); a != actionPause {
					t.Fatalf("request with descriptor: action %v, want pause", a)
				}
				drv.close(t, drv.lastCall(t).token, 14) // UNAVAILABLE, at once
				if st := status(id); st != tc.wantStatus || st == 0 && !drv.resumed(id) {
					t.Fatalf("failed call: status %d, resumed %v; want status %d", st, drv.resumed(id), tc.wantStatus)
				}
				// The local bucket (2 tokens) is empty now: its 429 costs no call.
				id = host.InitializeHttpContext()
				host.CallOnRequestHeaders(id, request("/api/x", [2]string{"x-user", "alice"}), true)
				if st := status(id); st != 429 || drv.made() != 1 {
					t.Fatalf("third request: status %d after %d calls, want 429 from the local bucket after 1", st, drv.made())
				}
				host.Tick()
				if got := counter(t, host, "wasmgate.route.api.global_error"); got != 1 {
					t.Fatalf("global_error = %d, want 1", got)
				}
			})
		})
	}
}

// TestFilter_GlobalLimitNoHost: where no call can be made at all (the SDK's
// emulator without a service), failureMode decides at once.
func TestFilter_GlobalLimitNoHost(t *testing.T) {
	for failureMode, want := range map[string]uint32{"allow": 0, "deny": 500} {
		host, reset := newHost(t, leg{name: "go"}, globalPolicy(failureMode))
		startPlugin(t, host)
		id := host.InitializeHttpContext()
		a := host.CallOnRequestHeaders(id, request("/api/x", [2]string{"x-user", "alice"}), true)
		var got uint32
		if r := host.GetSentLocalResponse(id); r != nil {
			got = r.StatusCode
		}
		if got != want || (got == 0) != (a == actionContinue) {
			t.Errorf("failureMode %s: action %v, status %d; want status %d", failureMode, a, got, want)
		}
		reset()
	}
}
