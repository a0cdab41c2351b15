package policy

import (
	"math"
	"testing"
)

const destinationHeadersPolicy = `{"routes": [{"name": "canary",
  "headers": {"request": {"set": {"x-tier": "route"}}, "response": {"set": {"x-route": "canary"}}},
  "route": [
    {"destination": {"host": "stable"}, "weight": 50},
    {"destination": {"host": "next"}, "weight": 50,
     "headers": {"request": {"set": {"x-tier": "next"}, "add": {"x-canary": "%DESTINATION%"}, "remove": ["x-debug"]},
                 "response": {"set": {"x-version": "v2"}}}}]}]}`

func TestDestinationHeaders_Plan(t *testing.T) {
	p := mustParse(t, destinationHeadersPolicy)
	tests := []struct {
		name         string
		random       uint64
		wantDest     string
		wantRequest  string
		wantResponse string
	}{
		{name: "without headers", random: 0, wantDest: "stable",
			wantRequest: "set x-tier=route; set x-wasmgate-destination=stable; ", wantResponse: "set x-route=canary; "},
		{name: "with headers, after the route's and the pick", random: math.MaxUint64, wantDest: "next",
			wantRequest:  "set x-tier=route; set x-wasmgate-destination=next; remove x-debug; set x-tier=next; add x-canary=next; ",
			wantResponse: "set x-route=canary; set x-version=v2; "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv()
			env.random = tc.random
			var plan Plan
			p.Decide(&Request{Path: "/", Headers: headerMap{"x-debug": "1"}}, env, &plan)
			if plan.Destination == nil || plan.Destination.Host != tc.wantDest {
				t.Fatalf("destination = %v, want %s", plan.Destination, tc.wantDest)
			}
			if got := editList(plan.Request); got != tc.wantRequest {
				t.Fatalf("request edits = %q\nwant %q", got, tc.wantRequest)
			}
			if got := editList(plan.Response); got != tc.wantResponse {
				t.Fatalf("response edits = %q\nwant %q", got, tc.wantResponse)
			}
		})
	}
}

func TestDestinationHeaders_Allocs(t *testing.T) {
	p := mustParse(t, destinationHeadersPolicy)
	env := newTestEnv()
	env.random = math.MaxUint64
	req := &Request{Path: "/", Headers: headerMap{"x-debug": "1"}}
	var plan Plan
	if allocs := testing.AllocsPerRun(1000, func() { p.Decide(req, env, &plan) }); allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
}
