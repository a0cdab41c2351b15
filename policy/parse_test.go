package policy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err from Parse's output")

func TestParse(t *testing.T) {
	p := mustParse(t, `{"routes": [
	  {"name": "a", "match": [{"uri": {"exact": "/a"}}]},
	  {"route": [{"destination": {"host": "h", "port": 8080}, "weight": 3, "hint": "h-8080"},
	             {"destination": {"host": "g"}, "weight": 1}],
	   "split": {"hintHeader": "X-Hint", "overrideHeader": "X-Override", "stickyBy": {"header": "X-User"}}}]}`)
	routes := p.Routes()
	if len(routes) != 2 || routes[0].Name != "a" || routes[1].Name != "route-1" || routes[1].Index != 1 {
		t.Fatalf("routes = %+v", routes)
	}
	if routes[0].Split != nil || routes[0].RateLimit != nil {
		t.Fatal("route a: unexpected split or rate limit")
	}
	s := routes[1].Split
	wantDest := []Destination{
		{Host: "h", Port: 8080, Weight: 3, Hint: "h-8080", Index: 0},
		{Host: "g", Weight: 1, Hint: "g", Index: 1},
	}
	if s.HintHeader != "x-hint" || s.override != "x-override" || s.sticky != (stickyKey{stickyHeader, "x-user"}) {
		t.Fatalf("split options = %q %q %+v", s.HintHeader, s.override, s.sticky)
	}
	if len(s.Destinations) != 2 || s.Destinations[0] != wantDest[0] || s.Destinations[1] != wantDest[1] {
		t.Fatalf("Destinations = %+v, want %+v", s.Destinations, wantDest)
	}
	if len(s.cumulative) != 2 || s.cumulative[0] != 3 || s.cumulative[1] != 4 {
		t.Fatalf("cumulative = %v, want [3 4]", s.cumulative)
	}
	// Keys are taken literally, never as gjson path syntax.
	p = mustParse(t, `{"routes": [{"headers": {"request": {"set": {"X.a|b*": "v"}}}}]}`)
	if got := p.Routes()[0].RequestHeaders[0].Name; got != "x.a|b*" {
		t.Fatalf("header name = %q, want x.a|b*", got)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Error
	}{
		{name: "empty input", input: "", want: []Error{{"policy", "not valid JSON"}}},
		{name: "trailing data", input: `{"routes": [{}]} x`, want: []Error{{"policy", "not valid JSON"}}},
		{name: "string document", input: `"routes"`, want: []Error{{"policy", "must be an object, got a string"}}},
		{name: "every error of every route", input: `{"routes": [
		  {"name": "", "match": [{"uri": {"exact": 1}}, {"method": {"regex": "[" }}]},
		  {"route": [{"destination": {"host": "a\u0000"}, "weight": 1}], "rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "-1s"}}}]}`,
			want: []Error{
				{"routes[0].name", `"" is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -`},
				{"routes[0].match[0].uri.exact", "must be a string, got a number"},
				{"routes[0].match[1].method.regex", "invalid regex \"[\": missing closing ]: `[`"},
				{"routes[1].route[0].destination.host", "must not contain CR, LF or NUL"},
				{"routes[1].rateLimit.tokenBucket.fillInterval", `must be positive, got "-1s"`},
			}},
		{name: "gjson path syntax in keys is not interpreted", input: `{"routes": [{"headers": {"request": {"set": {"x.a b*": "v"}}}}]}`,
			want: []Error{{`routes[0].headers.request.set["x.a b*"]`, `"x.a b*" is not a valid header name`}}},
		{name: "pseudo-header in template", input: `{"routes": [{"headers": {"request": {"set": {"x-a": "%REQ(:scheme)%"}}}}]}`,
			want: []Error{{`routes[0].headers.request.set["x-a"]`, `%REQ(:scheme)%: ":scheme" is not a valid header name`}}},
		{name: "huge integer", input: `{"routes": [{"rateLimit": {"tokenBucket": {"maxTokens": 99999999999999999999, "fillInterval": "1ns"}}}]}`,
			want: []Error{{"routes[0].rateLimit.tokenBucket.maxTokens", "must be an integer of at least 1, got 99999999999999999999"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.input))
			if p != nil {
				t.Fatal("Parse returned a policy with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T) is not Errors", err, err)
			}
			got := make([]Error, len(errs))
			for i, e := range errs {
				got[i] = *e
			}
			if strings.Join(errStrings(got), "\n") != strings.Join(errStrings(tc.want), "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errStrings(got), "\n"), strings.Join(errStrings(tc.want), "\n"))
			}
		})
	}
}

func errStrings(errs []Error) []string {
	out := make([]string, len(errs))
	for i := range errs {
		out[i] = errs[i].Error()
	}
	return out
}

func TestErrors_Error(t *testing.T) {
	errs := Errors{{Path: "routes[0].name", Msg: "bad"}, {Path: "routes[1]", Msg: "worse"}}
	if got, want := errs.Error(), "routes[0].name: bad; routes[1]: worse"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestParse_Testdata(t *testing.T) {
	valid := corpus(t, "valid/*.json")
	if _, ok := valid["seed"]; !ok {
		t.Fatal("testdata/valid/seed.json is missing")
	}
	for name, data := range valid {
		t.Run("valid/"+name, func(t *testing.T) {
			if _, err := Parse(data); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	invalid := corpus(t, "invalid/*.json")
	if len(invalid) < 30 {
		t.Fatalf("%d invalid cases, want at least 30", len(invalid))
	}
	for name, data := range invalid {
		t.Run("invalid/"+name, func(t *testing.T) {
			errFile := filepath.Join("testdata", "invalid", name+".err")
			_, err := Parse(data)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if *update {
				if err := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error(); got != strings.TrimSuffix(string(want), "\n") {
				t.Fatalf("error:\n%s\nwant (%s):\n%s", got, errFile, want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"valid/*.json", "invalid/*.json"} {
		for _, data := range corpus(f, pattern) {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err == nil {
			if p == nil || len(p.Routes()) == 0 {
				t.Fatal("Parse succeeded without routes")
			}
			return
		}
		var errs Errors
		if p != nil || !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse = %v, %v (%T); want nil and non-empty Errors", p, err, err)
		}
		for _, e := range errs {
			if e.Path == "" || e.Msg == "" {
				t.Fatalf("error without location or reason: %q", e.Error())
			}
		}
		if _, again := Parse(data); again.Error() != err.Error() {
			t.Fatalf("errors differ between runs:\n%v\n%v", err, again)
		}
	})
}

// TestSprintf checks the parser's formatter against fmt.Sprintf for every
// verb and argument type its messages use.
func TestSprintf(t *testing.T) {
	tests := []struct {
		name   string
		format string
		args   []any
	}{
		{name: "quote", format: "%q is not one of %s", args: []any{"a\"b\n", `"x", "y"`}},
		{name: "ints", format: "must be an integer from %d to %d, got %s", args: []any{uint64(1), uint64(65535), "70000"}},
		{name: "int", format: "duplicate route name %q (also routes[%d])", args: []any{"a", 3}},
		{name: "duration", format: "at most %d tokens with fillInterval %s", args: []any{uint64(9), time.Second}},
		{name: "error", format: "invalid regex %q: %s", args: []any{"(", errors.New("missing )")}},
		{name: "percent", format: "%%%s%%: unterminated at byte %d; write %%%% for a literal percent", args: []any{"REQ(x)", 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := sprintf(tc.format, tc.args...), fmt.Sprintf(tc.format, tc.args...); got != want {
				t.Fatalf("sprintf = %q, want %q", got, want)
			}
		})
	}
}
