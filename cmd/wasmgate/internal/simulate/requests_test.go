package simulate

import (
	"reflect"
	"testing"
	"time"
)

func TestReadRequests(t *testing.T) {
	tests := []struct {
		name, data string
		want       []Request
	}{
		{name: "json lines with defaults", data: "# recorded\n{\"path\": \"/a\"}\n\n{\"method\": \"POST\", \"path\": \"/b?x=1\", \"authority\": \"shop\", \"headers\": {\"X-B\": \"2\", \"x-a\": \"1\"}, \"client\": \"10.0.0.1:5\", \"at\": \"1.5s\"}\n{\"path\": \"/c\"}\n",
			want: []Request{
				{Method: "GET", Path: "/a", Authority: "localhost", Client: DefaultClient, Line: "r:2"},
				{Method: "POST", Path: "/b?x=1", Authority: "shop", Headers: [][2]string{{"X-B", "2"}, {"x-a", "1"}}, Client: "10.0.0.1:5", At: 1500 * time.Millisecond, Line: "r:4"},
				{Method: "GET", Path: "/c", Authority: "localhost", Client: DefaultClient, At: 1500 * time.Millisecond, Line: "r:5"},
			}},
		{name: "repeated headers", data: `{"path": "/a", "headers": {"X-A": "1", "x-a": ["2", "3"], "b": []}}
{"path": "/b", "headers": [["x-a", "1"], ["Host", "h1"], ["x-a", " 2 "], ["host", "h2"]]}
{"path": "/c%2e?q#f", "method": "get", "authority": "shop"}`,
			want: []Request{
				{Method: "GET", Path: "/a", Authority: "localhost", Headers: [][2]string{{"X-A", "1"}, {"x-a", "2"}, {"x-a", "3"}}, Client: DefaultClient, Line: "r:1"},
				{Method: "GET", Path: "/b", Headers: [][2]string{{"x-a", "1"}, {"Host", "h1"}, {"x-a", " 2 "}, {"host", "h2"}}, Client: DefaultClient, Line: "r:2"},
				{Method: "get", Path: "/c%2e?q#f", Authority: "shop", Client: DefaultClient, Line: "r:3"},
			}},
		{name: "har", data: `{"log": {"version": "1.2", "entries": [
			{"startedDateTime": "2026-01-01T10:00:00.000Z", "request": {"method": "GET", "url": "https://shop.example/products/1?x=1",
			  "headers": [{"name": ":authority", "value": "shop.example"}, {"name": "Cookie", "value": "a=1"}, {"name": "cookie", "value": "b=2"}, {"name": "Host", "value": "shop.example"}]}},
			{"startedDateTime": "2026-01-01T10:00:02.250Z", "request": {"method": "POST", "url": "http://api.example:8080/orders", "headers": []}}]}}`,
			want: []Request{
				{Method: "GET", Path: "/products/1?x=1", Authority: "shop.example", Headers: [][2]string{{"Cookie", "a=1"}, {"cookie", "b=2"}}, Client: DefaultClient, Line: "r: log.entries[0]"},
				{Method: "POST", Path: "/orders", Authority: "api.example:8080", Client: DefaultClient, At: 2250 * time.Millisecond, Line: "r: log.entries[1]"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadRequests("r", []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadRequests_Errors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{name: "empty", data: "\n# nothing\n", want: "r: no requests"},
		{name: "unknown field", data: `{"path": "/", "heders": {}}`, want: `r:1: json: unknown field "heders"`},
		{name: "duplicate key", data: "{\"path\": \"/\"}\n{\"path\": \"/\", \"headers\": {\"x-a\": \"1\", \"x-a\": \"2\"}}", want: `r:2: headers: duplicate key "x-a"`},
		{name: "duplicate field", data: `{"path": "/", "path": "/b"}`, want: `r:1: duplicate key "path"`},
		{name: "bad pair", data: `{"path": "/", "headers": [["x-a"]]}`, want: `r:1: headers: [0]: want [name, value], got 1 strings`},
		{name: "bad value", data: `{"path": "/", "headers": {"x-a": 1}}`, want: `r:1: headers: x-a: want a string or a list of strings`},
		{name: "host twice", data: `{"path": "/", "authority": "a", "headers": {"Host": "b"}}`, want: `r:1: authority and a host header: give one`},
		{name: "no path", data: `{"method": "GET"}`, want: `r:1: path: required`},
		{name: "time goes back", data: "{\"path\": \"/\", \"at\": \"2s\"}\n{\"path\": \"/\", \"at\": \"1s\"}", want: `r:2: at: 1s is before the previous request's (2s)`},
		{name: "har without entries", data: `{"log": {"entries": []}}`, want: "r: no requests in log.entries"},
		{name: "har relative url", data: `{"log": {"entries": [{"request": {"url": "/a"}}]}}`, want: `r: log.entries[0].request.url: "/a" is not an absolute URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadRequests("r", []byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %s", err, tc.want)
			}
		})
	}
}
