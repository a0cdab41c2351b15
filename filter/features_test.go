package filter

import "testing"

// TestFilter_LocalReplies: a redirect, a direct response and a fault abort
// are answered by the proxy, with the scheme and listener port the
// filter reads for the policy.
func TestFilter_LocalReplies(t *testing.T) {
	const policy = `{"routes": [
	  {"name": "to-https", "match": [{"uri": {"prefix": "/shop"}, "scheme": {"exact": "http"}, "port": 10000}],
	   "redirect": {"scheme": "https", "derivePort": "FROM_REQUEST_PORT", "uri": "/store"}},
	  {"name": "down", "match": [{"uri": {"prefix": "/billing"}}],
	   "directResponse": {"status": 503, "body": {"string": "maintenance"}}},
	  {"name": "broken", "match": [{"uri": {"prefix": "/broken"}}],
	   "fault": {"abort": {"percentage": {"value": 100}, "httpStatus": 418}}},
	  {"name": "other-port", "match": [{"port": 8443}], "directResponse": {"status": 500}}]}`
	forEachLeg(t, policy, func(t *testing.T, l leg, host testHost) {
		startPlugin(t, host)
		for _, tc := range []struct {
			name, path    string
			scheme        string
			status        uint32
			details, body string
			location      string
		}{
			{name: "redirect", path: "/shop/1?x=2", scheme: "http", status: 301, details: "wasmgate_redirect",
				location: "https://api.example.com:10000/store?x=2"},
			{name: "scheme does not match", path: "/shop/1", scheme: "https"},
			{name: "direct response", path: "/billing", scheme: "http", status: 503, details: "wasmgate_direct_response", body: "maintenance"},
			{name: "fault abort", path: "/broken", scheme: "http", status: 418, details: "wasmgate_fault_abort", body: "fault filter abort"},
		} {
			id := host.InitializeHttpContext()
			a := host.CallOnRequestHeaders(id, [][2]string{
				{":method", "GET"}, {":path", tc.path}, {":authority", "api.example.com"}, {":scheme", tc.scheme}}, true)
			resp := host.GetSentLocalResponse(id)
			if tc.status == 0 {
				if a != actionContinue || resp != nil {
					t.Errorf("%s: action %v, local response %+v; want forwarded", tc.name, a, resp)
				}
				continue
			}
			if a != actionPause || resp == nil || resp.StatusCode != tc.status || string(resp.Data) != tc.body {
				t.Errorf("%s: action %v, local response %+v; want %d %q", tc.name, a, resp, tc.status, tc.body)
				continue
			}
			if l.wasm != "" && resp.StatusCodeDetail != tc.details {
				t.Errorf("%s: details = %q, want %q", tc.name, resp.StatusCodeDetail, tc.details)
			}
			if tc.location != "" {
				must(t, resp.Headers, "location", tc.location)
			}
		}
		if got := counter(t, host, "wasmgate.route.to-https.redirected"); got != 1 {
			t.Errorf("redirected = %d, want 1", got)
		}
	})
}
