package vsimport

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/simulate"
)

// TestImport_Simulate runs the imported seed policies through both builds of
// the plugin: the rewrite strips /products and adds X-Forwarded-Proto, and
// the split sends about a tenth of the requests to product-service-v2.
func TestImport_Simulate(t *testing.T) {
	const (
		v1 = "product-service.default.svc.cluster.local"
		v2 = "product-service-v2.default.svc.cluster.local"
	)
	for _, build := range []string{"tinygo", "go"} {
		t.Run(build, func(t *testing.T) {
			wasm, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "out", "wasmgate-"+build+".wasm"))
			if err != nil {
				t.Fatalf("%v: run `make build`", err)
			}
			for _, pathPrefix := range []bool{false, true} {
				t.Run(fmt.Sprintf("path-prefix=%v", pathPrefix), func(t *testing.T) {
					res, err := importFiles(t, Options{PathPrefix: pathPrefix}, "seed-rewrite.yaml")
					if err != nil {
						t.Fatal(err)
					}
					got, err := simulate.RunAll(wasm, res.Policy, simulate.Options{Seed: 1}, []simulate.Request{
						{Method: "GET", Path: "/products/123?x=1", Authority: "shop.example", Client: simulate.DefaultClient, Line: "1"},
						{Method: "GET", Path: "/products", Authority: "shop.example", Client: simulate.DefaultClient, Line: "2"},
						{Method: "GET", Path: "/productsX", Authority: "shop.example", Client: simulate.DefaultClient, Line: "3"},
					})
					if err != nil {
						t.Fatal(err)
					}
					for i, want := range []string{"/123?x=1", "/"} {
						r := got[i]
						if r.UpstreamPath != want || r.Destination != v1 || !slices.Contains(r.RequestSet, [2]string{"x-forwarded-proto", "https"}) {
							t.Errorf("%s: upstream %q, destination %q, headers set %v; want %q, %s, x-forwarded-proto: https", r.Path, r.UpstreamPath, r.Destination, r.RequestSet, want, v1)
						}
					}
					// A plain prefix matches /productsX, as in Istio; a path prefix does not.
					if matched := got[2].Route != ""; matched == pathPrefix {
						t.Errorf("/productsX: route %q, upstream %q with path-prefix=%v", got[2].Route, got[2].UpstreamPath, pathPrefix)
					}
				})
			}
			t.Run("hosts", func(t *testing.T) {
				// The rules of a VirtualService for shop.example.com take its
				// requests only, as in Istio, though the plugin sees all.
				res, err := importFiles(t, Options{}, "carried.yaml")
				if err != nil {
					t.Fatal(err)
				}
				got, err := simulate.RunAll(wasm, res.Policy, simulate.Options{Seed: 1}, []simulate.Request{
					{Method: "GET", Path: "/old/a", Authority: "shop.example.com", Client: simulate.DefaultClient, Line: "1"},
					{Method: "GET", Path: "/old/a", Authority: "other.example.com", Client: simulate.DefaultClient, Line: "2"},
				})
				if err != nil {
					t.Fatal(err)
				}
				if got[0].Route != "legacy" || got[0].UpstreamPath != "/new/a" || got[1].Route != "" || got[1].UpstreamPath != "/old/a" {
					t.Errorf("shop.example.com: route %q, upstream %q; other.example.com: route %q, upstream %q; want legacy /new/a, none /old/a",
						got[0].Route, got[0].UpstreamPath, got[1].Route, got[1].UpstreamPath)
				}
			})
			t.Run("request-features", func(t *testing.T) {
				res, err := importFiles(t, Options{}, "request-features.yaml")
				if err != nil {
					t.Fatal(err)
				}
				got, err := simulate.RunAll(wasm, res.Policy, simulate.Options{Seed: 1}, []simulate.Request{
					{Method: "GET", Path: "/shop/a?y=1", Authority: "shop.example:80", Client: simulate.DefaultClient, Line: "1"},
					{Method: "GET", Path: "/old", Authority: "a.example:8080", Client: simulate.DefaultClient, Line: "2"},
					{Method: "GET", Path: "/billing/x", Authority: "a.example", Client: simulate.DefaultClient, Line: "3"},
					{Method: "GET", Path: "/teapot", Authority: "a.example", Client: simulate.DefaultClient, Line: "4"},
				})
				if err != nil {
					t.Fatal(err)
				}
				for i, want := range []struct {
					status   uint32
					location string
				}{{308, "https://shop.example/store?y=1"}, {301, "http://new.example.com:8080/old"}, {503, ""}, {418, ""}} {
					r := got[i]
					location, _ := header(r.ResponseSet, "location")
					if r.Forwarded || r.Status != want.status || location != want.location {
						t.Errorf("%s: forwarded %v, status %d, location %q; want %d %q", r.Path, r.Forwarded, r.Status, location, want.status, want.location)
					}
				}
				var text strings.Builder
				if err := simulate.WriteText(&text, got); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(text.String(), "response   308 location: https://shop.example/store?y=1") {
					t.Errorf("simulate's text does not show the Location:\n%s", text.String())
				}
			})
			t.Run("split", func(t *testing.T) {
				res, err := importFiles(t, Options{}, "seed-split.yaml")
				if err != nil {
					t.Fatal(err)
				}
				const n = 2000
				reqs := make([]simulate.Request, n)
				for i := range reqs {
					reqs[i] = simulate.Request{Method: "GET", Path: fmt.Sprintf("/products/%d", i), Authority: "shop.example", Client: simulate.DefaultClient, Line: fmt.Sprint(i + 1)}
				}
				got, err := simulate.RunAll(wasm, res.Policy, simulate.Options{Seed: 1}, reqs)
				if err != nil {
					t.Fatal(err)
				}
				count := map[string]int{}
				for _, r := range got {
					count[r.Destination]++
				}
				// 10 % ± 3 standard deviations of 2000 draws (2.01 points).
				if share := 100 * float64(count[v2]) / n; count[v1]+count[v2] != n || share < 7.99 || share > 12.01 {
					t.Errorf("destinations %v: v2 share %.2f %%, want 10 ± 2.01", count, share)
				}
			})
		})
	}
}

func header(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}
