package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicy_Choose(t *testing.T) {
	p := mustParse(t, seedPolicy)
	req := &Request{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example.com",
		Headers: headerMap{"x-user-id": "user-1", "x-internal-debug": "1"}}
	var d Decision
	p.Choose(req, 0, &d)
	r := p.Routes()[0]
	want := Decision{Route: r, Path: "/123?x=1", Destination: &r.Split.Destinations[0], LimitKey: 0}
	// user-1 hashes into the 90% share (keyHash("user-1") < 0.9 × 2^64).
	if d != want {
		t.Fatalf("Decision = %+v, want %+v", d, want)
	}
	if r.Split.HintHeader != "x-route-to" || d.Destination.Hint != "product-service" {
		t.Fatalf("hint %s: %s, want x-route-to: product-service", r.Split.HintHeader, d.Destination.Hint)
	}
	v, ok := r.ResponseHeaders[0].Value.Render(req, &d)
	if !ok || v != "product-service" {
		t.Fatalf("x-served-by = %q, %v; want product-service", v, ok)
	}
}

// TestPolicy_Choose_Allocs asserts the seed policy's request path: decision
// (match, sticky pick, prefix-stripping rewrite, slot) plus rendering every
// header operation allocates nothing.
func TestPolicy_Choose_Allocs(t *testing.T) {
	p := mustParse(t, seedPolicy)
	req := &Request{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example.com",
		ClientAddress: "10.0.0.1:1234", Headers: headerMap{"x-user-id": "user-1"}}
	var d Decision
	allocs := testing.AllocsPerRun(1000, func() {
		p.Choose(req, 12345, &d)
		for _, ops := range [][]HeaderOp{d.Route.RequestHeaders, d.Route.ResponseHeaders} {
			for i := range ops {
				ops[i].Value.Render(req, &d)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
	if d.Path != "/123?x=1" {
		t.Fatalf("Path = %q, want /123?x=1", d.Path)
	}
}

// TestPolicy_Choose_RewriteAllocs states the irreducible cost of a rewrite
// whose result is not a piece of the original :path: one string.
func TestPolicy_Choose_RewriteAllocs(t *testing.T) {
	p := mustParse(t, `{"routes": [{"match": [{"uri": {"prefix": "/api"}}], "rewrite": {"uri": "/v2"}}]}`)
	req := &Request{Path: "/api/items?page=2"}
	var d Decision
	allocs := testing.AllocsPerRun(1000, func() { p.Choose(req, 0, &d) })
	if allocs != 1 || d.Path != "/v2/items?page=2" {
		t.Fatalf("allocs = %v, Path = %q; want 1, /v2/items?page=2", allocs, d.Path)
	}
}

func BenchmarkPolicy_Choose(b *testing.B) {
	p := mustParse(b, seedPolicy)
	req := &Request{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example.com",
		ClientAddress: "10.0.0.1:1234", Headers: headerMap{"x-user-id": "user-1"}}
	var d Decision
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Choose(req, uint64(i), &d)
	}
}

// corpus returns the contents of the testdata files matching pattern.
func corpus(t testing.TB, pattern string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata matching %s: %v", pattern, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = data
	}
	return out
}

func FuzzDecide(f *testing.F) {
	for _, data := range corpus(f, "valid/*.json") {
		f.Add(data, "GET", "/products/123?x=1", "api.example.com:443", "x-user-id", "u1", "10.0.0.1:9", uint64(7))
	}
	f.Fuzz(func(t *testing.T, policy []byte, method, path, authority, name, value, client string, random uint64) {
		p, err := Parse(policy)
		if err != nil {
			return
		}
		req := &Request{Method: method, Path: path, Authority: authority, ClientAddress: client,
			Headers: headerMap{strings.ToLower(name): value, "cookie": value}}
		var d Decision
		p.Choose(req, random, &d)
		if d.Route == nil {
			return
		}
		if _, query, hasQuery := strings.Cut(path, "?"); d.Path != "" && (!strings.HasPrefix(d.Path, "/") || hasQuery && !strings.HasSuffix(d.Path, "?"+query)) {
			t.Fatalf("Path %q from %q: want absolute, query kept", d.Path, path)
		}
		if rl := d.Route.RateLimit; rl != nil {
			if !rl.Keyed() && d.LimitKey != 0 {
				t.Fatalf("LimitKey %d for a limit without a key", d.LimitKey)
			}
			// A bucket for the key, then the next take finds it.
			var scratch [BucketStateSize]byte
			store := newMemStore()
			for i := range 2 {
				res, err := rl.Take(store, d.LimitKey, int64(random>>2), 8, &scratch)
				if err != nil || res.Shared || i == 0 && !res.Allowed {
					t.Fatalf("take %d for key %d: %+v, %v; want admitted from its own bucket", i, d.LimitKey, res, err)
				}
			}
		}
		if s := d.Route.Split; s != nil && d.Destination == nil {
			t.Fatal("route with a split chose no destination")
		}
		for _, ops := range [][]HeaderOp{d.Route.RequestHeaders, d.Route.ResponseHeaders} {
			for i := range ops {
				if v, ok := ops[i].Value.Render(req, &d); ok && (v == "" || unsafeValue(v)) {
					t.Fatalf("%s rendered %q as writable", ops[i].Name, v)
				}
			}
		}
	})
}

func TestPolicy_UsesClientAddress(t *testing.T) {
	tests := []struct {
		name   string
		routes string
		want   bool
	}{
		{name: "seed", routes: `[{"route": [{"destination": {"host": "a"}}], "split": {"stickyBy": {"header": "x-u"}}}]`, want: false},
		{name: "sticky", routes: `[{"route": [{"destination": {"host": "a"}}], "split": {"stickyBy": {"clientAddress": true}}}]`, want: true},
		{name: "limit key", routes: `[{}, {"name": "l", "rateLimit": {"tokenBucket": {"maxTokens": 1, "fillInterval": "1s"}, "key": {"clientAddress": true}}}]`, want: true},
		{name: "response template", routes: `[{"headers": {"response": {"add": {"x-ip": "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}}}]`, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, `{"routes": `+tc.routes+`}`).UsesClientAddress(); got != tc.want {
				t.Fatalf("UsesClientAddress = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPolicy_UsesMethodAndAuthority(t *testing.T) {
	tests := []struct {
		name                  string
		routes                string
		wantMethod, wantAuthz bool
	}{
		{name: "seed", routes: `[{"match": [{"uri": {"prefix": "/p"}}], "rewrite": {"uri": "/", "authority": "x"}}]`},
		{name: "method match", routes: `[{"match": [{"uri": {"prefix": "/p"}}, {"method": {"exact": "GET"}}]}]`, wantMethod: true},
		{name: "authority match", routes: `[{}, {"name": "b", "match": [{"authority": {"exact": "*.example.com"}}]}]`, wantAuthz: true},
		{name: "templates", routes: `[{"headers": {"request": {"set": {"x-m": "%REQ(:method)%"}}, "response": {"add": {"x-a": "a=%REQ(:authority)%"}}}}]`, wantMethod: true, wantAuthz: true},
		{name: "other header template", routes: `[{"headers": {"request": {"set": {"x-m": "%REQ(x-method)%"}}}}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, `{"routes": `+tc.routes+`}`)
			if got := p.UsesMethod(); got != tc.wantMethod {
				t.Errorf("UsesMethod = %v, want %v", got, tc.wantMethod)
			}
			if got := p.UsesAuthority(); got != tc.wantAuthz {
				t.Errorf("UsesAuthority = %v, want %v", got, tc.wantAuthz)
			}
		})
	}
}
