package simulate

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	fwd := func(route, dest, path string) Result {
		return Result{Route: route, Destination: dest, Forwarded: true, UpstreamPath: path, Status: 200}
	}
	limited := Result{Route: "a", Status: 429, Limit: &Limit{Verdict: "limited"}}
	withHeader := fwd("a", "x", "/")
	withHeader.RequestSet = [][2]string{{"x-a", "1"}}
	old := []Result{fwd("a", "x", "/"), fwd("a", "x", "/"), fwd("a", "x", "/"), limited, fwd("a", "x", "/"), fwd("", "", "/p")}
	new := []Result{fwd("a", "x", "/"), fwd("a", "y", "/"), limited, fwd("a", "x", "/"), withHeader, fwd("b", "", "/q")}
	got := Compare(old, new)
	got.Examples = nil
	want := Diff{Requests: 6, Route: 1, Destination: 3, Rewrite: 1, Headers: 1, NewlyLimited: 1, NoLongerLimited: 1, Changed: 5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Compare = %+v\nwant      %+v", got, want)
	}
}
