package policy

import (
	"slices"
	"testing"
)

func TestTemplate_Render(t *testing.T) {
	dest := &Destination{Host: "svc", Hint: "svc-hint"}
	req := &Request{
		Method:        "GET",
		Path:          "/p?q",
		Authority:     "api.example.com",
		ClientAddress: "10.0.0.7:5555",
		Headers:       headerMap{"x-user": "alice", "x-evil": "a\r\nx-injected: 1", "x-empty": ""},
	}
	tests := []struct {
		name   string
		value  string
		want   string
		wantOK bool
	}{
		{name: "literal", value: "https", want: "https", wantOK: true},
		{name: "literal percent", value: "100%%", want: "100%", wantOK: true},
		{name: "route name folded", value: "r=%ROUTE_NAME%", want: "r=tmpl", wantOK: true},
		{name: "request header", value: "%REQ(X-User)%", want: "alice", wantOK: true},
		{name: "pseudo-header", value: "%REQ(:authority)%", want: "api.example.com", wantOK: true},
		{name: "client address without port", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", want: "10.0.0.7", wantOK: true},
		{name: "destination hint", value: "%DESTINATION%", want: "svc-hint", wantOK: true},
		{name: "mixed", value: "u=%REQ(x-user)%;d=%DESTINATION%", want: "u=alice;d=svc-hint", wantOK: true},
		{name: "missing header renders empty", value: "%REQ(x-missing)%", want: "", wantOK: false},
		{name: "empty header renders empty", value: "%REQ(x-empty)%", want: "", wantOK: false},
		{name: "mixed with missing header keeps text", value: "u=%REQ(x-missing)%", want: "u=", wantOK: true},
		{name: "CR LF from header dropped", value: "%REQ(x-evil)%", want: "a\r\nx-injected: 1", wantOK: false},
		{name: "CR LF in mixed value dropped", value: "v=%REQ(x-evil)%", want: "", wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"name": "tmpl", "headers": {"request": {"set": {"x-out": `+quoteJSON(tc.value)+`}}}}]}`)
			tmpl := &p.Routes()[0].RequestHeaders[0].Value
			got, ok := tmpl.Render(req, &Decision{Destination: dest})
			if ok != tc.wantOK || ok && got != tc.want {
				t.Fatalf("Render = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestTemplate_Render_IPv6(t *testing.T) {
	p := mustParse(t, `{"routes": [{"headers": {"request": {"set": {"x-ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}}}]}`)
	got, ok := p.Routes()[0].RequestHeaders[0].Value.Render(&Request{ClientAddress: "[2001:db8::1]:443"}, &Decision{})
	if !ok || got != "2001:db8::1" {
		t.Fatalf("Render = %q, %v; want 2001:db8::1", got, ok)
	}
}

func TestRoute_HeaderOps(t *testing.T) {
	p := mustParse(t, `{"routes": [{"headers": {
	  "request": {"add": {"X-A": "1"}, "set": {"x-b": "2", "x-c": "3"}, "remove": ["X-D", "x-e"]},
	  "response": {"set": {"x-f": "4"}}}}]}`)
	r := p.Routes()[0]
	type op struct {
		kind HeaderOpKind
		name string
	}
	var got []op
	for _, o := range r.RequestHeaders {
		got = append(got, op{o.Kind, o.Name})
	}
	want := []op{{HeaderRemove, "x-d"}, {HeaderRemove, "x-e"}, {HeaderSet, "x-b"}, {HeaderSet, "x-c"}, {HeaderAdd, "x-a"}}
	if !slices.Equal(got, want) {
		t.Fatalf("request ops = %v, want %v", got, want)
	}
	if len(r.ResponseHeaders) != 1 || r.ResponseHeaders[0].Name != "x-f" || r.ResponseHeaders[0].Kind != HeaderSet {
		t.Fatalf("response ops = %+v", r.ResponseHeaders)
	}
}
