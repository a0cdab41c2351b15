// Package simulate replays recorded requests through the real plugin module
// on wazero (the project's proxy-wasm host) and reports what the plugin did
// to each: route, rewrite, header edits, destination, rate-limit verdict.
//
// Everything reported is read from what the plugin did through the host:
// the route it recorded in the stream's filter state (RouteProperty), the
// headers it left, its local reply, the counters it bumped
// ("wasmgate.route.<name>.rate_limited", ".shadow_limited") and the
// rate-limit buckets it wrote to shared data. The policy is parsed here only
// to learn route names, hint headers and bucket sizes; no decision is made
// outside the module.
package simulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/internal/proxyhost"
	"github.com/wasmgate/wasmgate/policy"
)

// PluginName is the plugin_name the module sees; it prefixes its shared-data
// keys.
const PluginName = "wasmgate"

// RouteProperty is the stream property the module records the matched
// route's name in (Envoy's filter state wasm.wasmgate_route).
const RouteProperty = policy.RouteProperty

// start is the plugin's clock at the first request. Fixed, so a run is
// reproducible: the plugin seeds its random choices from the clock.
var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is what the plugin did to one request.
type Result struct {
	// Source locates the request ("requests.jsonl:3").
	Source string `json:"source"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// At is the request's time offset.
	At string `json:"at"`
	// Route is the matched route's name, "" when none matched.
	Route string `json:"route,omitempty"`
	// Forwarded is false when the plugin answered the request itself.
	Forwarded bool `json:"forwarded"`
	// UpstreamPath and UpstreamAuthority are what the upstream receives.
	UpstreamPath      string `json:"upstreamPath,omitempty"`
	UpstreamAuthority string `json:"upstreamAuthority,omitempty"`
	// RequestSet are the request headers the plugin set or added (name,
	// value), RequestRemoved those it removed; pseudo-headers and the
	// destination hint are left out (see UpstreamPath and Destination).
	RequestSet     [][2]string `json:"requestSet,omitempty"`
	RequestRemoved []string    `json:"requestRemoved,omitempty"`
	// Destination is the destination hint the plugin wrote, "" when none.
	Destination string `json:"destination,omitempty"`
	// Limit is the route's rate-limit verdict, nil when it has no limit.
	Limit *Limit `json:"limit,omitempty"`
	// Status is the response status: the plugin's local reply, or 200 from
	// the emulated upstream.
	Status uint32 `json:"status"`
	// ResponseSet are the response headers the plugin set or added, or the
	// headers of its local reply.
	ResponseSet [][2]string `json:"responseSet,omitempty"`
}

// Limit is a rate-limit verdict.
type Limit struct {
	// Verdict is "allowed", "limited" or "shadow-limited" (over the limit,
	// let through by a shadow limit).
	Verdict string `json:"verdict"`
	// Remaining is the whole tokens left in the request's bucket, nil when
	// the bucket could not be read.
	Remaining *uint64 `json:"remaining,omitempty"`
}

// Limited reports whether the plugin denied the request for its rate limit.
func (r *Result) Limited() bool { return r.Limit != nil && r.Limit.Verdict == "limited" }

// Simulator runs one policy in one plugin VM, which plays one Envoy worker.
// Rate-limit buckets live in the host's shared data, as in Envoy, so one
// worker sees every request's tokens as several would.
type Simulator struct {
	host   *proxyhost.Host
	vm     *proxyhost.VM
	now    time.Time
	routes []routeInfo
	// metricIDs remembers each counter's last value, to see what a request
	// bumped.
	counters map[string]uint64
	cas      uint32
	nextTick time.Time
}

type routeInfo struct {
	name            string
	limited, shadow string // counter names
	hintHeader      string
	bucketPrefix    string
	bucket          policy.Bucket
}

// New compiles the module and starts it with the policy (JSON). seed fixes
// the module's random source.
//
// # Errors
//
// New fails when the policy does not parse (policy.Parse's error) or when
// the module refuses it or does not start; the module's logs are included.
func New(wasm, policyJSON []byte, seed uint64) (*Simulator, error) {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
		return nil, err
	}
	s := &Simulator{now: start, counters: map[string]uint64{}}
	h, err := proxyhost.NewHost(proxyhost.Options{
		Properties: map[string]string{"plugin_name": PluginName, "plugin_root_id": PluginName},
		Clock:      func() time.Time { return s.now },
		Rand:       rand.NewChaCha8(seedBytes(seed)),
	})
	if err != nil {
		return nil, err
	}
	m, err := h.Compile(wasm)
	if err != nil {
		h.Close()
		return nil, err
	}
	vm, err := h.NewVM(m, policyJSON)
	if err != nil {
		logs := strings.Join(h.Logs(proxyhost.LogCritical), "; ")
		h.Close()
		return nil, fmt.Errorf("the module did not start: %w (logs: %s)", err, logs)
	}
	s.host, s.vm = h, vm
	for _, r := range pol.Routes() {
		if r.GlobalLimit != nil {
			return nil, fmt.Errorf("routes[%d] (%s) has a globalRateLimit: simulate does not emulate a rate limit service", r.Index, r.Name)
		}
	}
	for _, r := range pol.Routes() {
		ri := routeInfo{name: r.Name,
			limited: policy.RouteCounter(r.Name, policy.CounterRateLimited),
			shadow:  policy.RouteCounter(r.Name, policy.CounterShadowLimited)}
		if r.Split != nil {
			ri.hintHeader = r.Split.HintHeader
		}
		if rl := r.RateLimit; rl != nil {
			ri.bucketPrefix = policy.BucketKeyPrefix(PluginName, r.Name)
			ri.bucket = rl.Bucket
		}
		s.routes = append(s.routes, ri)
	}
	s.snapshot()
	_, s.cas = h.SharedDataSince(0)
	if p := vm.TickPeriod(); p > 0 {
		s.nextTick = start.Add(p)
	}
	return s, nil
}

func seedBytes(seed uint64) (b [32]byte) {
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}

// Close releases the VM and its host.
func (s *Simulator) Close() error { return s.host.Close() }

// snapshot records every counter's value and returns those that grew.
func (s *Simulator) snapshot() map[string]bool {
	grew := map[string]bool{}
	for _, m := range s.host.Metrics() {
		if m.Type == proxyhost.MetricCounter && m.Value != s.counters[m.Name] {
			grew[m.Name] = true
			s.counters[m.Name] = m.Value
		}
	}
	return grew
}

// Run replays one request at its time offset. Requests must come in time
// order.
func (s *Simulator) Run(req Request) (Result, error) {
	if t := start.Add(req.At); t.After(s.now) {
		s.now = t
	}
	for p := s.vm.TickPeriod(); p > 0 && !s.nextTick.After(s.now); s.nextTick = s.nextTick.Add(p) {
		if err := s.vm.Tick(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", req.Line, err)
		}
	}
	res := Result{Source: req.Line, Method: req.Method, Path: req.Path, At: req.At.String()}
	stream, err := s.vm.NewHTTPStream()
	if err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	stream.SetProperty("source.address", req.Client)
	stream.SetProperty("destination.port", listenerPort(req.Authority))
	in := append([][2]string{{":method", req.Method}, {":path", req.Path}, {":authority", req.Authority}, {":scheme", "http"}}, req.Headers...)
	if _, err := stream.RequestHeaders(in, true); err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	out := stream.Request()
	// The module keeps counts in its memory and adds them to the host's
	// metrics on its timer: a tick now makes this request's counts visible.
	if err := s.vm.Tick(); err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	grew := s.snapshot()
	var route *routeInfo
	res.Route, _ = stream.Property(RouteProperty)
	for i := range s.routes {
		if s.routes[i].name == res.Route {
			route = &s.routes[i]
		}
	}
	local := stream.LocalResponse()
	res.Forwarded = local == nil
	if res.Forwarded {
		res.UpstreamPath, _ = out.Get(":path")
		res.UpstreamAuthority, _ = out.Get(":authority")
	}
	hint := ""
	if route != nil && route.hintHeader != "" {
		hint = route.hintHeader
		res.Destination, _ = out.Get(hint)
	}
	res.RequestSet, res.RequestRemoved = headerChanges(in, out, hint)
	if route != nil && route.bucketPrefix != "" {
		res.Limit = s.limit(route, grew)
	}
	upstream := [][2]string{{":status", "200"}}
	if local != nil {
		upstream = append([][2]string{{":status", fmt.Sprint(local.StatusCode)}}, local.Headers...)
	}
	if _, err := stream.ResponseHeaders(upstream, true); err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	res.Status = 200
	if local != nil {
		res.Status = local.StatusCode
		res.ResponseSet = withoutPseudo(stream.Response())
	} else {
		res.ResponseSet, _ = headerChanges(upstream, stream.Response(), "")
	}
	if err := stream.Done(); err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	s.snapshot() // counters bumped at the end of the stream belong to it
	return res, nil
}

// limit reads the verdict from the counters the request bumped and the
// tokens left from the bucket it wrote.
func (s *Simulator) limit(route *routeInfo, grew map[string]bool) *Limit {
	l := &Limit{Verdict: "allowed"}
	switch {
	case grew[route.limited]:
		l.Verdict = "limited"
	case grew[route.shadow]:
		l.Verdict = "shadow-limited"
	}
	keys, next := s.host.SharedDataSince(s.cas)
	s.cas = next
	for _, k := range keys {
		if !strings.HasPrefix(k, route.bucketPrefix) {
			continue
		}
		v, _, _ := s.host.SharedData(k)
		if n, err := route.bucket.StoredTokens(v); err == nil {
			l.Remaining = &n
		}
	}
	if l.Remaining == nil && l.Verdict != "allowed" {
		var zero uint64 // a denied request writes no bucket: none was left
		l.Remaining = &zero
	}
	return l
}

// headerChanges lists the headers out has that in had not (set or added)
// and the names in had that out has not (removed), leaving out
// pseudo-headers and skip.
func headerChanges(in, out [][2]string, skip string) (set [][2]string, removed []string) {
	for _, h := range out {
		if !strings.HasPrefix(h[0], ":") && h[0] != skip && !slices.Contains(in, h) {
			set = append(set, h)
		}
	}
	for _, h := range in {
		if strings.HasPrefix(h[0], ":") || h[0] == skip || slices.Contains(removed, h[0]) {
			continue
		}
		if !slices.ContainsFunc(out, func(o [2]string) bool { return o[0] == h[0] }) {
			removed = append(removed, h[0])
		}
	}
	return set, removed
}

func withoutPseudo(hs [][2]string) [][2]string {
	var out [][2]string
	for _, h := range hs {
		if !strings.HasPrefix(h[0], ":") {
			out = append(out, h)
		}
	}
	return out
}

// RunAll replays requests in order through a new Simulator.
func RunAll(wasm, policyJSON []byte, seed uint64, reqs []Request) ([]Result, error) {
	s, err := New(wasm, policyJSON, seed)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([]Result, 0, len(reqs))
	for _, r := range reqs {
		res, err := s.Run(r)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	if len(out) == 0 {
		return nil, errors.New("no requests")
	}
	return out, nil
}

// listenerPort is the destination.port property of a request: the port
// of its authority, or 80 (the requests are plain HTTP), encoded as the
// proxy encodes an integer property.
func listenerPort(authority string) string {
	port := uint64(80)
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		if n, err := strconv.ParseUint(authority[i+1:], 10, 16); err == nil {
			port = n
		}
	}
	return string(binary.LittleEndian.AppendUint64(nil, port))
}
