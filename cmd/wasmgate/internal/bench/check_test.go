package main

import (
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// gateway stands in for Envoy and the benchmark's upstream: it does the
// seed job (or the floor's) and mirrors what the upstream would have got,
// except where a fault says otherwise.
type gateway struct {
	floor  bool
	fault  string // "no-rewrite", "keep-debug", "not-sticky", "all-v1", "no-override"
	tokens int    // > 0: deny with 429 past this many requests
	n      int
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.n++
	if g.tokens > 0 && g.n > g.tokens {
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	path := r.URL.RequestURI()
	version := "v1"
	if !g.floor {
		if g.fault != "no-rewrite" {
			path = "/" + strings.TrimPrefix(strings.TrimPrefix(path, "/products"), "/")
		}
		h := fnv.New32a()
		io.WriteString(h, r.Header.Get("x-user-id"))
		if g.fault == "not-sticky" {
			fmt.Fprint(h, g.n)
		}
		if h.Sum32()%10 == 0 && g.fault != "all-v1" {
			version = "v2"
		}
		if r.Header.Get("x-canary") == v2Host && g.fault != "no-override" {
			version = "v2"
		}
		w.Header().Set("x-served-by", map[string]string{"v1": v1Host, "v2": v2Host}[version])
		w.Header().Set("x-echo-forwarded-proto", "https")
		if g.fault == "keep-debug" {
			w.Header().Set("x-echo-internal-debug", r.Header.Get("x-internal-debug"))
		}
		w.Header().Set("x-echo-user-id", r.Header.Get("x-user-id"))
	}
	w.Header().Set("x-echo-path", path)
	fmt.Fprintln(w, version)
}

func TestChecker(t *testing.T) {
	tests := []struct {
		name string
		gw   *gateway
		run  func(c *checker) error
	}{
		{"full", &gateway{}, func(c *checker) error { _, err := c.full(1000); return err }},
		{"floor", &gateway{floor: true}, func(c *checker) error { return c.floor(20) }},
		{"limit", &gateway{tokens: 5}, func(c *checker) error { _, err := c.limit(5); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.gw)
			defer srv.Close()
			if err := tt.run(&checker{base: srv.URL, client: srv.Client()}); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestChecker_Errors(t *testing.T) {
	full := func(c *checker) error { _, err := c.full(1000); return err }
	tests := []struct {
		name string
		gw   *gateway
		run  func(c *checker) error
		want string
	}{
		{"path not rewritten", &gateway{fault: "no-rewrite"}, full,
			`GET /products/0?x=1 (x-user-id user-0): x-echo-path: got "/products/0?x=1", want "/0?x=1" (upstream answered "v1")`},
		{"header not removed", &gateway{fault: "keep-debug"}, full,
			`GET /products/0?x=1 (x-user-id user-0): x-echo-internal-debug: got "1", want "" (upstream answered "v1")`},
		{"not sticky", &gateway{fault: "not-sticky"}, full,
			`GET /products/1000?x=1 (x-user-id user-0): sent to v1, the same user went to v2 before (not sticky)`},
		{"no split", &gateway{fault: "all-v1"}, full,
			`v2 got 0 of 1000 users (0.0 %), want 7–13 % for a 90/10 split`},
		{"no override", &gateway{fault: "no-override"}, full,
			`override to product-service-v2 (x-user-id user-0): answered by v1`},
		{"floor rewrites", &gateway{}, func(c *checker) error { return c.floor(20) },
			`GET /products/0?x=1: status 200 from "v1" with path "/0?x=1", want 200 from v1 with the path unchanged`},
		{"limit never denies", &gateway{floor: true}, func(c *checker) error { _, err := c.limit(5); return err },
			`20 of 20 requests admitted by a bucket of 5, want 5 to 9`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.gw)
			defer srv.Close()
			err := tt.run(&checker{base: srv.URL, client: srv.Client()})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v\nwant %s", err, tt.want)
			}
		})
	}
}
