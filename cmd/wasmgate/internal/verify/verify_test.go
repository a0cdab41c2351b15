package verify

import (
	"bufio"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/simulate"
)

// TestUpstream: the echo upstream reports the target as it arrived (a
// malformed escape included) and every header line in order, on one
// keep-alive connection.
func TestUpstream(t *testing.T) {
	u, err := startUpstream("svc")
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	conn, err := net.Dial("tcp", u.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &clientConn{conn: conn, r: bufio.NewReader(conn)}
	for _, target := range []string{"/a%zz//b", "/c"} {
		resp, err := roundTrip(c, []byte("GET "+target+" HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-b: 2\r\nx-a:  3 \r\n\r\n"), "GET")
		if err != nil {
			t.Fatal(err)
		}
		a, err := readAnswer(resp, "GET")
		if err != nil {
			t.Fatal(err)
		}
		want := &Reply{Service: "svc", Method: "GET", Path: target, Host: "h", Headers: [][2]string{{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}}}
		if !reflect.DeepEqual(a.reply, want) {
			t.Fatalf("reply %+v, want %+v", a.reply, want)
		}
	}
}

// TestCompare: each check that differs is one disagreement; headers Envoy
// makes up are checked for presence only.
func TestCompare(t *testing.T) {
	sim := &simulate.Result{Route: "a", Forwarded: true, Status: 200, UpstreamPath: "/x", UpstreamAuthority: "h",
		Destination: "v2", RequestSet: [][2]string{{"x-set", "1"}},
		Proxy: simulate.Proxy{Set: [][2]string{{"x-request-id", "sim-id"}, {"x-forwarded-proto", "http"}}, Generated: []string{"x-request-id"}, Removed: []string{"x-envoy-internal"}}}
	a := &answer{status: 200, header: http.Header{"X-Wasmgate-Route": {"a"}},
		reply: &Reply{Service: "default-backend", Path: "/x", Host: "h",
			Headers: [][2]string{{"x-request-id", "envoy-id"}, {"x-forwarded-proto", "http"}, {"x-set", "2"}, {"x-envoy-internal", "true"}}}}
	var rep Report
	compare(&rep, simulate.Request{Method: "GET", Path: "/y", Line: "r:1"}, sim, a)
	var got []string
	for _, d := range rep.Disagreements {
		got = append(got, d.Check+": "+d.Envoy+" / "+d.Simulator)
	}
	want := []string{"cluster: default-backend / v2", "request header x-set: [2] / 1", "removed request header x-envoy-internal: [true] / removed"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("disagreements\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Checks != 10 {
		t.Fatalf("%d checks, want 10", rep.Checks)
	}
}

func TestSendable(t *testing.T) {
	if err := sendable(simulate.Request{Method: "GET", Path: "/a", Headers: [][2]string{{"x", "a\r\nb"}}}); err == nil ||
		err.Error() != `header x "a\r\nb" holds a line break: it cannot be sent as one line` {
		t.Fatalf("error %v", err)
	}
	if err := sendable(simulate.Request{Method: "get", Path: "/caf\u00e9#f", Headers: [][2]string{{"X Y", "\x01"}}}); err != nil {
		t.Fatal(err)
	}
}

func TestWithDetails(t *testing.T) {
	out, err := withDetails([]byte("static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config: {stat_prefix: g}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "key: "+DetailsHeader) || !strings.Contains(string(out), "value: '%RESPONSE_CODE_DETAILS%'") {
		t.Fatalf("%s", out)
	}
	if _, err := withDetails([]byte("static_resources: {}")); err == nil {
		t.Fatal("no listener accepted")
	}
}
