package policy

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestRoute_Table(t *testing.T) {
	yes := true
	tests := []struct {
		name   string
		fields string // route fields after "name"
		want   *Table
	}{
		{name: "none", fields: `"route": [{"destination": {"host": "a"}}]`},
		{name: "timeout", fields: `"timeout": "1.5s"`, want: &Table{Timeout: 1500 * time.Millisecond}},
		{name: "retries", fields: `"retries": {"attempts": 3, "perTryTimeout": "250ms", "retryOn": "5xx,503"}`,
			want: &Table{Retries: &Retries{Attempts: 3, PerTryTimeout: 250 * time.Millisecond, RetryOn: "5xx,503"}}},
		{name: "retries off", fields: `"retries": {"attempts": 0}`, want: &Table{Retries: &Retries{}}},
		{name: "cors", fields: `"corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}, {"prefix": "https://b."}, {"regex": "https://.*\\.c"}],
			"allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"], "exposeHeaders": ["x-b", "*"], "maxAge": "24h", "allowCredentials": true}`,
			want: &Table{CORS: &CORSPolicy{
				AllowOrigins: []OriginMatch{{Exact: "https://a.example"}, {Prefix: "https://b."}, {Regex: `https://.*\.c`}},
				AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-a"}, ExposeHeaders: []string{"x-b", "*"},
				MaxAge: 24 * time.Hour, AllowCredentials: &yes}}},
		{name: "mirror", fields: `"mirror": {"host": "m", "port": {"number": 81}}, "mirrorPercentage": {"value": 50}`,
			want: &Table{Mirrors: []Mirror{{Destination: Destination{Host: "m", Port: 81, Hint: "m"}, PerMillion: 500000}}}},
		{name: "mirrors", fields: `"mirrors": [{"destination": {"host": "m", "subset": "v1"}}, {"destination": {"host": "n"}, "percentage": {"value": 50}}]`,
			want: &Table{Mirrors: []Mirror{{Destination: Destination{Host: "m", Subset: "v1", Hint: "m|v1"}, PerMillion: 1000000}, {Destination: Destination{Host: "n", Hint: "n"}, PerMillion: 500000}}}},
		{name: "delay", fields: `"fault": {"delay": {"fixedDelay": "200ms", "percentage": {"value": 12.5}}}`,
			want: &Table{Delay: &Delay{PerMillion: 125000, FixedDelay: 200 * time.Millisecond}}},
		{name: "delay of every request", fields: `"fault": {"delay": {"fixedDelay": "1s"}}`,
			want: &Table{Delay: &Delay{PerMillion: 1000000, FixedDelay: time.Second}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"name": "r", `+tc.fields+`}]}`)
			r := p.Routes()[0]
			if !reflect.DeepEqual(r.Table, tc.want) {
				t.Fatalf("Table = %+v, want %+v", r.Table, tc.want)
			}
			// The route header is written exactly when the route has a table.
			var plan Plan
			p.Decide(&Request{Path: "/"}, newTestEnv(), &plan)
			wrote := slices.Contains(plan.Request, Edit{Kind: HeaderSet, Name: RouteHeader, Value: "r"})
			if wrote != (tc.want != nil) {
				t.Fatalf("wrote %s: %v (edits %s), want %v", RouteHeader, wrote, editList(plan.Request), tc.want != nil)
			}
			if wrote && !plan.RouteChanged {
				t.Fatal("RouteChanged not set")
			}
		})
	}
}

// TestRoute_Table_ClientHeader: a client-sent route header is removed on
// every request of a policy with a route-table feature, matched or not.
func TestRoute_Table_ClientHeader(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "r", "match": [{"uri": {"prefix": "/r"}}], "timeout": "1s"}, {"name": "s"}]}`)
	for _, path := range []string{"/r", "/s"} {
		var plan Plan
		p.Decide(&Request{Path: path, Headers: headerMap{RouteHeader: "r"}}, newTestEnv(), &plan)
		if len(plan.Request) == 0 || plan.Request[0] != (Edit{Kind: HeaderRemove, Name: RouteHeader}) {
			t.Errorf("%s: edits %s, want %s removed first", path, editList(plan.Request), RouteHeader)
		}
	}
	if got := mustParse(t, `{"routes": [{"name": "s"}]}`).HintHeaders(); slices.Contains(got, RouteHeader) {
		t.Errorf("a policy without route-table features removes %s: %v", RouteHeader, got)
	}
}

// TestRoute_Table_OneHeader: a route with several route-table features
// writes the route header once.
func TestRoute_Table_OneHeader(t *testing.T) {
	p := mustParse(t, `{"routes": [{"name": "r", "timeout": "1s", "retries": {"attempts": 1}, "corsPolicy": {"allowMethods": ["GET"]},
		"mirror": {"host": "m"}}]}`)
	var plan Plan
	p.Decide(&Request{Path: "/"}, newTestEnv(), &plan)
	n := 0
	for _, e := range plan.Request {
		if e.Name == RouteHeader {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d edits of %s (%s), want 1", n, RouteHeader, editList(plan.Request))
	}
}
