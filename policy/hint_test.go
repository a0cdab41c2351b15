package policy

import (
	"slices"
	"strings"
	"testing"
)

// pairs is a request's headers as sent, repeats included: Header joins a
// repeated header's values with "," and FirstHeader returns the first, as
// the filter's view does.
type pairs [][2]string

func (h pairs) Header(name string) (string, bool) {
	var values []string
	for _, p := range h {
		if p[0] == name {
			values = append(values, p[1])
		}
	}
	return strings.Join(values, ","), values != nil
}

func (h pairs) FirstHeader(name string) (string, bool) {
	for _, p := range h {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// TestPolicy_Decide_RouteTableHeaders checks that every header a route
// table may route on is removed when a client sends it, whatever the
// policy's routes write, and that an absent one costs no edit.
func TestPolicy_Decide_RouteTableHeaders(t *testing.T) {
	const rewriteOnly = `{"routes": [{"name": "api", "match": [{"uri": {"prefix": "/api"}}], "rewrite": {"uri": "/v2"}}]}`
	const otherHint = `{"routes": [{"route": [{"destination": {"host": "a"}}], "split": {"hintHeader": "x-pool"}}]}`
	tests := []struct {
		name    string
		policy  string
		req     Request
		wantReq string
	}{
		{name: "rewrite-only, the shipped hint header", policy: rewriteOnly,
			req:     Request{Path: "/api/x", Headers: headerMap{ShippedHintHeader: "ratelimit"}},
			wantReq: "remove x-route-to; set :path=/v2/x; set x-envoy-original-path=/api/x; "},
		{name: "unmatched, every fixed header", policy: rewriteOnly,
			req: Request{Path: "/other", Headers: headerMap{ShippedHintHeader: "ratelimit", DefaultHintHeader: "admin",
				RouteHeader: "api", KeyHeader: "guess"}},
			wantReq: "remove x-route-to; remove x-wasmgate-destination; remove x-wasmgate-route; remove x-wasmgate-key; "},
		{name: "absent headers: no edit", policy: rewriteOnly, req: Request{Path: "/other", Headers: headerMap{"x-user": "a"}}},
		{name: "another split header and the shipped one", policy: otherHint,
			req:     Request{Path: "/", Headers: headerMap{"x-pool": "admin", ShippedHintHeader: "admin"}},
			wantReq: "remove x-pool; remove x-route-to; set x-pool=a; "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var plan Plan
			mustParse(t, tc.policy).Decide(&tc.req, newTestEnv(), &plan)
			if got := editList(plan.Request); got != tc.wantReq {
				t.Fatalf("request edits:\n got %s\nwant %s", got, tc.wantReq)
			}
		})
	}
	want := []string{"x-pool", ShippedHintHeader, DefaultHintHeader, RouteHeader, KeyHeader}
	if got := mustParse(t, otherHint).HintHeaders(); !slices.Equal(got, want) {
		t.Fatalf("HintHeaders = %q, want %q", got, want)
	}
}

// TestPolicy_HintKey checks that the key goes with every hint and with
// nothing else.
func TestPolicy_HintKey(t *testing.T) {
	const key = "k3y-0123456789_abcdef"
	p := mustParse(t, `{"hintKey": "`+key+`", "routes": [
	  {"name": "split", "match": [{"uri": {"prefix": "/s"}}], "route": [{"destination": {"host": "a"}}], "split": {"hintHeader": "x-route-to"}},
	  {"name": "plain", "rewrite": {"uri": "/p"}}]}`)
	if p.HintKey() != key {
		t.Fatalf("HintKey = %q", p.HintKey())
	}
	var plan Plan
	p.Decide(&Request{Path: "/s", Headers: headerMap{KeyHeader: "client"}}, newTestEnv(), &plan)
	if got, want := editList(plan.Request), "remove x-wasmgate-key; set x-route-to=a; set x-wasmgate-key="+key+"; "; got != want {
		t.Fatalf("with a hint:\n got %s\nwant %s", got, want)
	}
	p.Decide(&Request{Path: "/x"}, newTestEnv(), &plan)
	if got := editList(plan.Request); strings.Contains(got, KeyHeader) {
		t.Fatalf("without a hint, the key is written: %s", got)
	}
}

// TestGlobalLimit_AppendRequest_Spellings checks that every way of sending
// no value takes the default (or drops the entry), and that a repeated or
// padded value counts as its first value, trimmed: a client gets no fresh
// budget by spelling.
func TestGlobalLimit_AppendRequest_Spellings(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "api", "globalRateLimit": {"domain": "shop", "cluster": "rl",
	  "rateLimits": [
	    {"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "user", "defaultValue": "anonymous"}}]},
	    {"actions": [{"genericKey": {"descriptorValue": "g"}}, {"requestHeaders": {"headerName": "x-user", "descriptorKey": "user", "skipIfAbsent": true}}]},
	    {"actions": [{"requestHeaders": {"headerName": "x-user", "descriptorKey": "strict"}}]}]}}]}`)
	g := p.Routes()[0].GlobalLimit
	none := []entries{{"user=anonymous"}, {"generic_key=g"}}
	alice := []entries{{"user=alice"}, {"generic_key=g", "user=alice"}, {"strict=alice"}}
	tests := []struct {
		name    string
		headers pairs
		want    []entries
	}{
		{name: "absent", want: none},
		{name: "empty", headers: pairs{{"x-user", ""}}, want: none},
		{name: "blank", headers: pairs{{"x-user", " \t "}}, want: none},
		{name: "empty twice", headers: pairs{{"x-user", ""}, {"x-user", ""}}, want: none},
		{name: "one value", headers: pairs{{"x-user", "alice"}}, want: alice},
		{name: "padded", headers: pairs{{"x-user", "  alice\t"}}, want: alice},
		{name: "repeated", headers: pairs{{"x-user", "alice"}, {"x-user", "alice"}}, want: alice},
		{name: "repeated, first counts", headers: pairs{{"x-user", "alice"}, {"x-user", "mallory"}}, want: alice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, n := g.AppendRequest(nil, &Request{Headers: tc.headers})
			_, got := decodeRequest(t, data)
			if n != len(tc.want) || !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("AppendRequest = %q (%d), want %q", got, n, tc.want)
			}
		})
	}
}

// TestTemplate_Render_RepeatedHeader checks that %REQ()% renders the first
// value of a repeated header, as Envoy's does, while matching sees them all.
func TestTemplate_Render_RepeatedHeader(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "r", "match": [{"headers": {"x-in": {"exact": "first,second"}}}],
	  "headers": {"request": {"set": {"x-one": "%REQ(x-in)%", "x-mixed": "v=%REQ(x-in)%"}}}}]}`)
	req := &Request{Path: "/", Headers: pairs{{"x-in", "first"}, {"x-other", "o"}, {"x-in", "second"}}}
	var plan Plan
	p.Decide(req, newTestEnv(), &plan)
	if plan.Route == nil {
		t.Fatal("the joined values do not match")
	}
	if got, want := editList(plan.Request), "set x-one=first; set x-mixed=v=first; "; got != want {
		t.Fatalf("request edits:\n got %s\nwant %s", got, want)
	}
}
