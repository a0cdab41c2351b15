package policy

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// share runs n picks and returns the percentage that chose hint.
func share(p *Policy, n int, req func(i int) (*Request, uint64), hint string) float64 {
	var d Decision
	hits := 0
	for i := range n {
		r, random := req(i)
		p.Choose(r, random, &d)
		if d.Destination.Hint == hint {
			hits++
		}
	}
	return 100 * float64(hits) / float64(n)
}

func TestSplit_Pick_Distribution(t *testing.T) {
	p := mustParse(t, seedPolicy)
	const n = 100_000
	tests := []struct {
		name string
		req  func(i int) (*Request, uint64)
	}{
		{name: "random", req: func() func(int) (*Request, uint64) {
			rng := rand.New(rand.NewPCG(1, 2))
			return func(int) (*Request, uint64) { return &Request{Path: "/products"}, rng.Uint64() }
		}()},
		{name: "sticky keys", req: func(i int) (*Request, uint64) {
			return &Request{Path: "/products", Headers: headerMap{"x-user-id": "user-" + strconv.Itoa(i)}}, 0
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := share(p, n, tc.req, "product-service-v2")
			if got < 9.5 || got > 10.5 {
				t.Fatalf("canary share = %.2f%%, want 10 ± 0.5", got)
			}
			t.Logf("canary share %.3f%%", got)
		})
	}
}

func TestSplit_Pick_Sticky(t *testing.T) {
	tests := []struct {
		name     string
		stickyBy string
		req      func(user int) *Request
	}{
		{name: "header", stickyBy: `{"header": "x-user-id"}`, req: func(u int) *Request {
			return &Request{Path: "/", Headers: headerMap{"x-user-id": "user-" + strconv.Itoa(u)}}
		}},
		{name: "cookie", stickyBy: `{"cookie": "session"}`, req: func(u int) *Request {
			return &Request{Path: "/", Headers: headerMap{"cookie": `theme=dark; session="user-` + strconv.Itoa(u) + `"; x=1`}}
		}},
		{name: "client address", stickyBy: `{"clientAddress": true}`, req: func(u int) *Request {
			return &Request{Path: "/", ClientAddress: "10.1.2." + strconv.Itoa(u) + ":" + strconv.Itoa(1024+u)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"route": [
			  {"destination": {"host": "a"}, "weight": 50}, {"destination": {"host": "b"}, "weight": 50}],
			  "split": {"stickyBy": `+tc.stickyBy+`}}]}`)
			seen := map[string]bool{}
			for u := range 50 {
				var d Decision
				p.Choose(tc.req(u), 0, &d)
				first := d.Destination.Hint
				seen[first] = true
				for random := range uint64(20) {
					p.Choose(tc.req(u), random<<59, &d)
					if d.Destination.Hint != first {
						t.Fatalf("user %d: picked %q then %q", u, first, d.Destination.Hint)
					}
				}
			}
			if len(seen) != 2 {
				t.Fatalf("50 sticky keys all picked %v; want both destinations", seen)
			}
		})
	}
}

func TestSplit_Pick_StickyKeyAbsentUsesRandom(t *testing.T) {
	p := mustParse(t, seedPolicy)
	var d Decision
	p.Choose(&Request{Path: "/products"}, 0, &d)
	if d.Destination.Host != "product-service" {
		t.Fatalf("random 0 picked %q, want product-service", d.Destination.Host)
	}
	p.Choose(&Request{Path: "/products"}, ^uint64(0), &d)
	if d.Destination.Host != "product-service-v2" {
		t.Fatalf("random max picked %q, want product-service-v2", d.Destination.Host)
	}
}

func TestSplit_Pick_Override(t *testing.T) {
	p := mustParse(t, `{"routes": [{"route": [
	  {"destination": {"host": "stable"}, "weight": 100},
	  {"destination": {"host": "canary", "port": 8080}, "weight": 0, "hint": "canary-8080"}],
	  "split": {"overrideHeader": "X-Canary", "stickyBy": {"header": "x-user-id"}}}]}`)
	tests := []struct {
		name       string
		override   string
		want       string
		overridden bool
	}{
		{name: "by hint", override: "canary-8080", want: "canary-8080", overridden: true},
		{name: "by host", override: "canary", want: "canary-8080", overridden: true},
		{name: "beats sticky and zero weight", override: "stable", want: "stable", overridden: true},
		{name: "unknown value ignored", override: "nope", want: "stable"},
		{name: "empty value ignored", override: "", want: "stable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			for _, random := range []uint64{0, 1 << 63, ^uint64(0)} {
				p.Choose(&Request{Path: "/", Headers: headerMap{"x-canary": tc.override, "x-user-id": "u1"}}, random, &d)
				if d.Destination.Hint != tc.want || d.Overridden != tc.overridden {
					t.Fatalf("picked %q (overridden %v), want %q (%v)", d.Destination.Hint, d.Overridden, tc.want, tc.overridden)
				}
			}
		})
	}
}

func TestSplit_Defaults(t *testing.T) {
	p := mustParse(t, `{"routes": [{"route": [{"destination": {"host": "only"}}]}]}`)
	s := p.Routes()[0].Split
	if s.HintHeader != DefaultHintHeader || len(s.Destinations) != 1 {
		t.Fatalf("Split = %+v", s)
	}
	if d := s.Destinations[0]; d.Weight != 100 || d.Hint != "only" || d.Port != 0 {
		t.Fatalf("Destination = %+v", d)
	}
}

func TestCookie(t *testing.T) {
	tests := []struct{ name, header, cookieName, want string }{
		{name: "first", header: "a=1; b=2", cookieName: "a", want: "1"},
		{name: "later with spaces", header: "a=1;  b = 2 ", cookieName: "b", want: "2"},
		{name: "quoted", header: `s="xyz"`, cookieName: "s", want: "xyz"},
		{name: "absent", header: "a=1", cookieName: "b", want: ""},
		{name: "name is not a suffix match", header: "xa=1", cookieName: "a", want: ""},
		{name: "lines joined with \"; \"", header: "theme=dark; s=u1", cookieName: "s", want: "u1"},
		{name: "lines joined with \",\"", header: "theme=dark,s=u1", cookieName: "s", want: "u1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cookie(tc.header, tc.cookieName); got != tc.want {
				t.Fatalf("cookie(%q, %q) = %q, want %q", tc.header, tc.cookieName, got, tc.want)
			}
		})
	}
}

// TestKeyHash pins the sticky/slot hash: changing it would move every sticky
// client and every keyed bucket after an upgrade. The values were computed
// independently of this package.
func TestKeyHash(t *testing.T) {
	tests := []struct {
		key  string
		want uint64
	}{
		{key: "", want: 0xf52a15e9a9b5e89b},
		{key: "a", want: 0x02c0bdbf481420f8},
		{key: "user-1", want: 0xc499b5f8a721df58},
		{key: "10.0.0.1", want: 0x7fb1b600f0f5c6d3},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := keyHash(tc.key); got != tc.want {
				t.Fatalf("keyHash(%q) = %#x, want %#x", tc.key, got, tc.want)
			}
		})
	}
}

func TestParse_Destination(t *testing.T) {
	tests := []struct {
		name        string
		destination string
		hint        string
		want        Destination
	}{
		{name: "host only", destination: `{"host": "a"}`,
			want: Destination{Host: "a", Hint: "a"}},
		{name: "bare port", destination: `{"host": "a", "port": 8080}`,
			want: Destination{Host: "a", Port: 8080, Hint: "a"}},
		{name: "istio port", destination: `{"host": "a.ns.svc.cluster.local", "port": {"number": 9080}}`,
			want: Destination{Host: "a.ns.svc.cluster.local", Port: 9080, Hint: "a.ns.svc.cluster.local"}},
		{name: "subset in the hint", destination: `{"host": "a", "subset": "v2-canary", "port": {"number": 80}}`,
			want: Destination{Host: "a", Subset: "v2-canary", Port: 80, Hint: "a|v2-canary"}},
		{name: "hint wins", destination: `{"host": "a", "subset": "v2"}`, hint: `, "hint": "canary"`,
			want: Destination{Host: "a", Subset: "v2", Hint: "canary"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": [{"route": [{"destination": `+tc.destination+tc.hint+`}]}]}`)
			got := p.Routes()[0].Split.Destinations[0]
			tc.want.Weight = 100
			if got != tc.want {
				t.Fatalf("Destination = %+v, want %+v", got, tc.want)
			}
		})
	}
}
