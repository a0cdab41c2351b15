package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The job of the seed policy (envoy.yaml) and of its native twin
// (deploy/envoy-native.yaml), as the benchmark's upstream sees it: the
// upstream mirrors what arrived in x-echo-* response headers when a request
// carries x-bench-echo, and answers "v1\n" or "v2\n".
const (
	v1Host, v2Host = "product-service", "product-service-v2"
	// v2Low and v2High bound the share of users sent to v2 (weight 10 of
	// 100). The users are the same on every run, so for a given hash the
	// share is fixed; the bounds are about 3 standard deviations of a
	// binomial over the default 1000 users.
	v2Low, v2High = 0.07, 0.13
)

func checkCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	url := fs.String("url", "", "the gateway, http://127.0.0.1:PORT (required)")
	job := fs.String("job", "", "what the scenario must do: full (the seed policy), floor (pass requests unchanged to v1), limit (deny past -tokens)")
	users := fs.Int("users", 1000, "distinct x-user-id values of the full check")
	tokens := fs.Int("tokens", 0, "the limit check's bucket size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("check: -url is required")
	}
	c := &checker{base: strings.TrimSuffix(*url, "/"), client: &http.Client{Timeout: 10 * time.Second}}
	var err error
	switch *job {
	case "full":
		var share float64
		if share, err = c.full(*users); err == nil {
			fmt.Fprintf(stdout, "rewrite, request and response headers, stickiness, override: ok over %d requests; v2 share %.1f %% of %d users\n", c.sent, 100*share, *users)
		}
	case "floor":
		if err = c.floor(20); err == nil {
			fmt.Fprintf(stdout, "unchanged path, v1: ok over %d requests\n", c.sent)
		}
	case "limit":
		var admitted int
		if admitted, err = c.limit(*tokens); err == nil {
			fmt.Fprintf(stdout, "limit: %d of %d admitted, the rest denied with 429\n", admitted, c.sent)
		}
	default:
		return fmt.Errorf("check: -job: want full, floor or limit, got %q", *job)
	}
	if err != nil {
		return fmt.Errorf("check %s at %s: %w", *job, *url, err)
	}
	return nil
}

type checker struct {
	base   string
	client *http.Client
	sent   int
}

// reply is what one request got back.
type reply struct {
	status  int
	version string // the upstream's body, trimmed: "v1" or "v2"
	header  http.Header
}

// get sends GET path with headers (name, value pairs).
func (c *checker) get(path string, headers ...string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c.sent++
	resp, err := c.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("GET %s: %w", path, err)
	}
	return reply{status: resp.StatusCode, version: strings.TrimSpace(string(body)), header: resp.Header}, nil
}

// full sends two requests per user and checks each against the seed
// policy; it returns the share of users sent to v2.
func (c *checker) full(users int) (float64, error) {
	versionOf := make([]string, users)
	v2 := 0
	for round := range 2 {
		for u := range users {
			n := round*users + u
			path, user := fmt.Sprintf("/products/%d?x=1", n), fmt.Sprintf("user-%d", u)
			// A forged routing hint must not move the request.
			r, err := c.get(path, "x-bench-echo", "1", "x-user-id", user, "x-internal-debug", "1", "x-route-to", v2Host)
			if err != nil {
				return 0, err
			}
			where := fmt.Sprintf("GET %s (x-user-id %s)", path, user)
			if err := r.seed(fmt.Sprintf("/%d?x=1", n), user); err != nil {
				return 0, fmt.Errorf("%s: %w", where, err)
			}
			switch {
			case round == 0:
				versionOf[u] = r.version
				if r.version == "v2" {
					v2++
				}
			case r.version != versionOf[u]:
				return 0, fmt.Errorf("%s: sent to %s, the same user went to %s before (not sticky)", where, r.version, versionOf[u])
			}
		}
	}
	share := float64(v2) / float64(users)
	if share < v2Low || share > v2High {
		return share, fmt.Errorf("v2 got %d of %d users (%.1f %%), want %.0f–%.0f %% for a 90/10 split", v2, users, 100*share, 100*v2Low, 100*v2High)
	}
	// The override: a v1 user who asks for v2 gets it.
	for u, v := range versionOf {
		if v != "v1" {
			continue
		}
		user := fmt.Sprintf("user-%d", u)
		r, err := c.get("/products/override?x=1", "x-bench-echo", "1", "x-user-id", user, "x-canary", v2Host)
		if err != nil {
			return 0, err
		}
		if err := r.seed("/override?x=1", user); err != nil {
			return 0, fmt.Errorf("override to %s (x-user-id %s): %w", v2Host, user, err)
		}
		if r.version != "v2" {
			return 0, fmt.Errorf("override to %s (x-user-id %s): answered by %s", v2Host, user, r.version)
		}
		break
	}
	return share, nil
}

// seed checks one reply of the seed policy: rewritten path, request
// headers set and removed, x-served-by naming the upstream that answered.
func (r reply) seed(wantPath, user string) error {
	if r.status != http.StatusOK {
		return fmt.Errorf("status %d, want 200", r.status)
	}
	served := map[string]string{"v1": v1Host, "v2": v2Host}[r.version]
	for _, h := range []struct{ name, want string }{
		{"x-echo-path", wantPath},
		{"x-echo-forwarded-proto", "https"},
		{"x-echo-internal-debug", ""},
		{"x-echo-user-id", user},
		{"x-served-by", served},
	} {
		if got := r.header.Get(h.name); got != h.want || served == "" {
			return fmt.Errorf("%s: got %q, want %q (upstream answered %q)", h.name, got, h.want, r.version)
		}
	}
	return nil
}

// floor checks that n requests reach v1 unchanged.
func (c *checker) floor(n int) error {
	for i := range n {
		path := fmt.Sprintf("/products/%d?x=1", i)
		r, err := c.get(path, "x-bench-echo", "1")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || r.version != "v1" || r.header.Get("x-echo-path") != path {
			return fmt.Errorf("GET %s: status %d from %q with path %q, want 200 from v1 with the path unchanged", path, r.status, r.version, r.header.Get("x-echo-path"))
		}
	}
	return nil
}

// limit sends 4×tokens requests to a bucket of tokens (refilled by at most
// tokens during the check): at least tokens and fewer than 2×tokens may
// pass, every other must get 429.
func (c *checker) limit(tokens int) (int, error) {
	if tokens < 1 {
		return 0, errors.New("-tokens: must be at least 1")
	}
	admitted := 0
	for i := range 4 * tokens {
		r, err := c.get(fmt.Sprintf("/products/%d?x=1", i), "x-user-id", "user-0")
		if err != nil {
			return 0, err
		}
		switch r.status {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
		default:
			return 0, fmt.Errorf("request %d: status %d, want 200 or 429", i, r.status)
		}
	}
	if admitted < tokens || admitted >= 2*tokens {
		return admitted, fmt.Errorf("%d of %d requests admitted by a bucket of %d, want %d to %d", admitted, c.sent, tokens, tokens, 2*tokens-1)
	}
	return admitted, nil
}
