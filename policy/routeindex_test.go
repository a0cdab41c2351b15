package policy

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// randomRoutesPolicy writes a policy of n routes whose match blocks draw
// from a small set of paths, so that many routes overlap: prefix, path
// prefix and exact uris, some ignoring case, some by regex, some without a
// uri, some also needing a header, some routes without "match".
func randomRoutesPolicy(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString(`{"routes": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"name": "r` + strconv.Itoa(i) + `"`)
		if rng.IntN(20) > 0 {
			b.WriteString(`, "match": [`)
			for j := range 1 + rng.IntN(2) {
				if j > 0 {
					b.WriteString(",")
				}
				b.WriteString(randomMatchBlock(rng))
			}
			b.WriteString("]")
		}
		b.WriteString("}")
	}
	b.WriteString("]}")
	return b.String()
}

func randomMatchBlock(rng *rand.Rand) string {
	var conds []string
	p := randomPath(rng)
	switch rng.IntN(10) {
	case 0, 1, 2:
		conds = append(conds, `"uri": {"prefix": `+quoteJSON(p)+`}`)
	case 3, 4:
		conds = append(conds, `"uri": {"exact": `+quoteJSON(p)+`}`)
	case 5, 6:
		conds = append(conds, `"uri": {"pathPrefix": `+quoteJSON(p)+`}`)
	case 7:
		conds = append(conds, `"uri": {"regex": `+quoteJSON(p+".*")+`}`)
	case 8:
		conds = append(conds, `"uri": {"prefix": `+quoteJSON(strings.ToUpper(p))+`}`, `"ignoreUriCase": true`)
	}
	if rng.IntN(4) == 0 {
		conds = append(conds, `"headers": {"x-v": {"exact": "1"}}`)
	}
	return "{" + strings.Join(conds, ", ") + "}"
}

// randomPath is "/", or one to three segments from a small alphabet.
func randomPath(rng *rand.Rand) string {
	if rng.IntN(8) == 0 {
		return "/"
	}
	var b strings.Builder
	for range 1 + rng.IntN(3) {
		b.WriteString("/" + [...]string{"a", "b", "ab", "A", "a/"}[rng.IntN(5)])
	}
	return strings.ReplaceAll(b.String(), "//", "/")
}

// TestRouteIndex_FirstMatch checks the index against a scan of the routes:
// the same route (the first that matches) and the same matched prefix, for
// random policies and paths.
func TestRouteIndex_FirstMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		js := randomRoutesPolicy(rng, indexMinRoutes+rng.IntN(40))
		p := mustParse(t, js)
		if p.index == nil {
			t.Fatalf("a policy of %d routes has no index", len(p.routes))
		}
		for range 50 {
			path := randomPath(rng) + [...]string{"", "/", "x", "b"}[rng.IntN(4)]
			hs := headerMap{}
			if rng.IntN(2) == 0 {
				hs["x-v"] = "1"
			}
			req := &Request{Path: path, Headers: hs}
			want, wantPrefix := scanRoutes(p.routes, req, path, "")
			got, gotPrefix := p.index.firstMatch(p.routes, req, path, "")
			if got != want || gotPrefix != wantPrefix {
				t.Fatalf("round %d, path %q, headers %v: index found %s (prefix %d), scan %s (prefix %d)\npolicy: %s",
					round, path, hs, routeName(got), gotPrefix, routeName(want), wantPrefix, js)
			}
		}
	}
}

func routeName(r *Route) string {
	if r == nil {
		return "none"
	}
	return r.Name
}

// TestRouteIndex_Threshold: small policies are scanned, larger ones indexed.
func TestRouteIndex_Threshold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		routes  int
		indexed bool
	}{
		{"one route", 1, false},
		{"below the threshold", indexMinRoutes - 1, false},
		{"at the threshold", indexMinRoutes, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, manyRoutesPolicy(tc.routes, "prefix"))
			if got := p.index != nil; got != tc.indexed {
				t.Errorf("indexed = %v, want %v", got, tc.indexed)
			}
		})
	}
}

// manyRoutesPolicy is n routes matching /svc-0/, /svc-1/, ... by op
// ("prefix" or "exact"); the bench and the tests request the last.
func manyRoutesPolicy(n int, op string) string {
	var b strings.Builder
	b.WriteString(`{"routes": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"name": "svc-` + strconv.Itoa(i) + `", "match": [{"uri": {"` + op + `": "/svc-` + strconv.Itoa(i) + `/items"}}],
		  "route": [{"destination": {"host": "svc-` + strconv.Itoa(i) + `", "port": 8080}}]}`)
	}
	b.WriteString("]}")
	return b.String()
}

func TestRouteIndex_ChooseAllocs(t *testing.T) {
	for _, op := range []string{"prefix", "exact"} {
		t.Run(op, func(t *testing.T) {
			p := mustParse(t, manyRoutesPolicy(1000, op))
			req := &Request{Path: "/svc-999/items?x=1", Headers: headerMap{}}
			var d Decision
			if n := testing.AllocsPerRun(100, func() { p.Choose(req, 1, &d) }); n != 0 {
				t.Errorf("Choose allocates %v times, want 0", n)
			}
			if d.Route == nil || d.Route.Name != "svc-999" {
				t.Errorf("route = %s, want svc-999", routeName(d.Route))
			}
		})
	}
}

// BenchmarkPolicy_ChooseRoutes: the cost of finding the last of 1 000 routes
// against the only one.
func BenchmarkPolicy_ChooseRoutes(b *testing.B) {
	for _, tc := range []struct {
		op     string
		routes int
	}{{"prefix", 1}, {"prefix", 1000}, {"exact", 1000}} {
		b.Run(tc.op+"-"+strconv.Itoa(tc.routes), func(b *testing.B) {
			p := mustParse(b, manyRoutesPolicy(tc.routes, tc.op))
			req := &Request{Path: "/svc-" + strconv.Itoa(tc.routes-1) + "/items?x=1", Headers: headerMap{}}
			var d Decision
			b.ReportAllocs()
			for b.Loop() {
				p.Choose(req, 1, &d)
			}
		})
	}
}
