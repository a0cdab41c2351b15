// Package verify replays requests through a real Envoy started from the
// same configuration simulate emulates (envoyconfig's rendering of the
// user's Envoy file, echo upstreams for every cluster) and reports every
// verdict where Envoy and the simulator differ: route, status, local reply
// details, upstream path, authority and cluster, the request headers Envoy
// and the plugin touched, the response headers the plugin set.
package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyconfig"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/simulate"
)

// Options say which Envoy to start and how.
type Options struct {
	// Envoy is the binary (FindEnvoy).
	Envoy string
	// Template is the Envoy configuration to start from (envoy.yaml or
	// the user's), Policy the plugin configuration (JSON), Wasm the
	// module's path.
	Template, Policy []byte
	Wasm             string
	// Connections is how many keep-alive connections carry the requests
	// (in turn); 0 means 4.
	Connections int
}

// Disagreement is one check where Envoy and the simulator differ.
type Disagreement struct {
	Source    string `json:"source"`
	Request   string `json:"request"`
	Check     string `json:"check"`
	Envoy     string `json:"envoy"`
	Simulator string `json:"simulator"`
}

// Report counts the checks made and lists the disagreements.
type Report struct {
	Requests      int            `json:"requests"`
	Checks        int            `json:"checks"`
	Disagreements []Disagreement `json:"disagreements"`
}

// startTimeout bounds Envoy's start: V8 compiles the module in every worker
// first, which takes a while for the upstream-Go build on a busy machine.
const startTimeout = 3 * time.Minute

// routerSet are request headers Envoy's router adds after the plugin, so
// their absence upstream is not checked.
var routerSet = []string{"x-envoy-expected-rq-timeout-ms"}

// Run starts echo upstreams and Envoy, sends reqs at their time offsets (the
// first answer is time zero) and compares each answer with sims, the
// simulator's results for the same requests.
func Run(ctx context.Context, o Options, reqs []simulate.Request, sims []simulate.Result) (Report, error) {
	if len(reqs) != len(sims) {
		return Report{}, fmt.Errorf("%d requests, %d results", len(reqs), len(sims))
	}
	for _, r := range reqs {
		if err := sendable(r); err != nil {
			return Report{}, fmt.Errorf("%s: %w", r.Line, err)
		}
	}
	clusters, _, err := envoyconfig.Needs(o.Policy)
	if err != nil {
		return Report{}, err
	}
	names := []string{envoyconfig.DefaultCluster}
	for _, c := range clusters {
		names = append(names, c.Name)
	}
	addrs := map[string]string{}
	for _, n := range names {
		u, err := startUpstream(n)
		if err != nil {
			return Report{}, err
		}
		defer u.close()
		addrs[n] = u.addr()
	}
	wasm, err := filepath.Abs(o.Wasm)
	if err != nil {
		return Report{}, err
	}
	cfg, err := envoyconfig.Derive(o.Template, envoyconfig.Options{Policy: o.Policy, Wasm: wasm, Upstreams: addrs, RouteHeader: true})
	if err != nil {
		return Report{}, err
	}
	if cfg, err = withDetails(cfg); err != nil {
		return Report{}, err
	}
	e, err := startEnvoy(ctx, o.Envoy, cfg, startTimeout)
	if err != nil {
		return Report{}, err
	}
	defer e.stop()

	n := o.Connections
	if n <= 0 {
		n = 4
	}
	conns := make([]*clientConn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	var rep Report
	var start time.Time
	for i, r := range reqs {
		if i > 0 {
			select {
			case <-time.After(time.Until(start.Add(r.At))):
			case <-ctx.Done():
				return rep, ctx.Err()
			}
		}
		c := &conns[i%n]
		resp, err := send(c, e.gateway, r)
		if err != nil {
			return rep, fmt.Errorf("%s: %v (envoy log: %s)", r.Line, err, e.logTail())
		}
		if i == 0 {
			start = time.Now().Add(-r.At)
		}
		rep.Requests++
		compare(&rep, r, &sims[i], resp)
	}
	err = compareCounters(&rep, e, sims)
	return rep, err
}

// flushWait is how long the plugin may take to add its counts to Envoy's
// (three of its flush periods, docs/policy.md).
const flushWait = 750 * time.Millisecond

// compareCounters checks Envoy's per-route counters (matched,
// rate_limited, shadow_limited) against the simulator's counts.
func compareCounters(rep *Report, e *envoy, sims []simulate.Result) error {
	time.Sleep(flushWait)
	resp, err := http.Get(e.admin + "/stats?filter=" + url.QueryEscape(`wasmgate\.route\..*\.(matched|rate_limited|shadow_limited)$`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		_, counter, found := strings.Cut(name, "wasmgate.route.")
		if n, err := strconv.Atoi(value); ok && found && err == nil && n > 0 {
			got[counter] = n
		}
	}
	want := map[string]int{}
	for _, s := range simulate.Summarize(sims) {
		if s.Route == simulate.NoRoute {
			continue
		}
		want[s.Route+".matched"] = s.Matched
		want[s.Route+".rate_limited"] = s.Limited
		want[s.Route+".shadow_limited"] = s.ShadowLimited
	}
	names := slices.Collect(maps.Keys(want))
	for name := range got {
		if _, ok := want[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		rep.Checks++
		if got[name] != want[name] {
			rep.Disagreements = append(rep.Disagreements, Disagreement{Source: "counters", Request: "wasmgate.route." + name,
				Check: "count", Envoy: fmt.Sprint(got[name]), Simulator: fmt.Sprint(want[name])})
		}
	}
	return nil
}

// sendable refuses what cannot be written on an HTTP/1.1 connection as is.
func sendable(r simulate.Request) error {
	check := func(what, s string) error {
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("%s %q holds a line break: it cannot be sent as one line", what, s)
		}
		return nil
	}
	errs := []error{check("method", r.Method), check("path", r.Path), check("authority", r.Authority)}
	if strings.Contains(r.Method, " ") {
		errs = append(errs, fmt.Errorf("method %q holds a space", r.Method))
	}
	for _, h := range r.Headers {
		errs = append(errs, check("header name", h[0]), check("header "+h[0], h[1]))
	}
	return errors.Join(errs...)
}

// answer is Envoy's response to one request.
type answer struct {
	status  int
	header  http.Header
	reply   *Reply // set when an upstream answered
	details string // DetailsHeader: set on a local reply
}

// clientConn is one keep-alive connection to Envoy, redialled when Envoy
// closed it (after a refused request).
type clientConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func send(cp **clientConn, addr string, r simulate.Request) (*answer, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", r.Method, r.Path)
	if r.Authority != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", r.Authority)
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	for attempt := 0; ; attempt++ {
		if *cp == nil {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil, err
			}
			*cp = &clientConn{conn: conn, r: bufio.NewReader(conn)}
		}
		c := *cp
		_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
		resp, err := roundTrip(c, b.Bytes(), r.Method)
		if err != nil {
			c.conn.Close()
			*cp = nil
			if attempt == 0 {
				continue // Envoy closed an idle connection: once more on a new one
			}
			return nil, err
		}
		if resp.Close {
			c.conn.Close()
			*cp = nil
		}
		return readAnswer(resp, r.Method)
	}
}

func roundTrip(c *clientConn, req []byte, method string) (*http.Response, error) {
	if _, err := c.conn.Write(req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func readAnswer(resp *http.Response, method string) (*answer, error) {
	a := &answer{status: resp.StatusCode, header: resp.Header, details: resp.Header.Get(DetailsHeader)}
	if a.details == "" && method == http.MethodHead {
		a.reply = &Reply{} // forwarded, but the answer has no body to show what arrived
	} else if a.details == "" {
		body, _ := io.ReadAll(resp.Body)
		a.reply = &Reply{}
		if err := json.Unmarshal(body, a.reply); err != nil {
			return nil, fmt.Errorf("status %d without %s and no upstream reply: %s", resp.StatusCode, DetailsHeader, body)
		}
	}
	return a, nil
}

// compare adds the checks of one request to rep.
func compare(rep *Report, r simulate.Request, sim *simulate.Result, a *answer) {
	check := func(what string, agree bool, envoy, simulated any) {
		rep.Checks++
		if !agree {
			rep.Disagreements = append(rep.Disagreements, Disagreement{Source: r.Line, Request: r.Method + " " + r.Path,
				Check: what, Envoy: fmt.Sprint(envoy), Simulator: fmt.Sprint(simulated)})
		}
	}
	route := a.header.Get(envoyconfig.RouteHeader)
	if route == "-" {
		route = ""
	}
	check("route", route == sim.Route, route, sim.Route)
	check("status", a.status == int(sim.Status), a.status, sim.Status)
	forwarded := a.reply != nil
	check("forwarded", forwarded == sim.Forwarded, forwarded, sim.Forwarded)
	if !forwarded && !sim.Forwarded {
		check("details", a.details == sim.Details, a.details, sim.Details)
	}
	for _, h := range sim.ResponseSet {
		vs := a.header.Values(h[0])
		check("response header "+h[0], slices.Contains(vs, h[1]), vs, h[1])
	}
	if !forwarded || !sim.Forwarded || r.Method == http.MethodHead {
		return
	}
	got := a.reply
	wantPath, wantAuthority := sim.UpstreamPath, sim.UpstreamAuthority
	check("upstream path", got.Path == wantPath, got.Path, wantPath)
	check("upstream authority", got.Host == wantAuthority, got.Host, wantAuthority)
	cluster := sim.Destination
	if cluster == "" {
		cluster = envoyconfig.DefaultCluster
	}
	check("cluster", got.Service == cluster, got.Service, cluster)
	values := func(name string) []string {
		var vs []string
		for _, h := range got.Headers {
			if h[0] == name {
				vs = append(vs, h[1])
			}
		}
		return vs
	}
	touched := func(name string) bool {
		return slices.ContainsFunc(sim.RequestSet, func(h [2]string) bool { return h[0] == name }) ||
			slices.Contains(sim.RequestRemoved, name) || name == sim.Destination
	}
	for _, h := range sim.Proxy.Set {
		if touched(h[0]) {
			continue
		}
		vs := values(h[0])
		if slices.Contains(sim.Proxy.Generated, h[0]) {
			check("request header "+h[0]+" (generated)", len(vs) == 1, vs, "one value")
			continue
		}
		check("request header "+h[0], slices.Contains(vs, h[1]), vs, h[1])
	}
	for _, h := range sim.RequestSet {
		vs := values(h[0])
		check("request header "+h[0], slices.Contains(vs, h[1]), vs, h[1])
	}
	for _, name := range append(slices.Clone(sim.Proxy.Removed), sim.RequestRemoved...) {
		if slices.Contains(routerSet, name) || slices.ContainsFunc(sim.RequestSet, func(h [2]string) bool { return h[0] == name }) {
			continue
		}
		vs := values(name)
		check("removed request header "+name, len(vs) == 0, vs, "removed")
	}
}

// WriteText prints the report: one line per disagreement, then the counts.
func (rep Report) WriteText(w io.Writer) error {
	for _, d := range rep.Disagreements {
		if _, err := fmt.Fprintf(w, "%s %s: %s: Envoy %s, simulator %s\n", d.Source, d.Request, d.Check, d.Envoy, d.Simulator); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "verify: %d requests, %d checks, %d disagree\n", rep.Requests, rep.Checks, len(rep.Disagreements))
	return err
}
