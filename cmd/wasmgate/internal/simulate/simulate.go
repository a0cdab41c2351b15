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

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyproc"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/ratelimitsvc"
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
	// Proxy is what Envoy did to the request before the plugin saw it.
	Proxy Proxy `json:"proxy"`
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
	// GlobalLimit is the rate limit service's verdict ("allowed" or
	// "limited"), nil when the route has no globalRateLimit or the plugin
	// did not ask (its local limit denied first).
	GlobalLimit *Limit `json:"globalLimit,omitempty"`
	// Status is the response status: Envoy's refusal, the plugin's local
	// reply, or 200 from the emulated upstream.
	Status uint32 `json:"status"`
	// Details is Envoy's response code details of a local reply (Envoy's
	// or the plugin's), "" for an upstream's answer.
	Details string `json:"details,omitempty"`
	// ResponseSet are the response headers the plugin set or added, or the
	// headers of its local reply.
	ResponseSet [][2]string `json:"responseSet,omitempty"`
}

// Proxy is what Envoy's codec and connection manager did to a request
// before the plugin (package envoyproc).
type Proxy struct {
	// Path and Authority are what the plugin saw, after normalization.
	Path      string `json:"path,omitempty"`
	Authority string `json:"authority,omitempty"`
	// Set are the headers Envoy set or appended, Removed the names it
	// removed. Generated names those of Set whose value Envoy makes up
	// (x-request-id, deterministic here; x-forwarded-for behind a loopback
	// peer, which gets Envoy's own address): another proxy's value differs.
	Set       [][2]string `json:"set,omitempty"`
	Removed   []string    `json:"removed,omitempty"`
	Generated []string    `json:"generated,omitempty"`
	// Rejected is true when Envoy answered the request itself (Status,
	// Details): the plugin never saw it.
	Rejected bool `json:"rejected,omitempty"`
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
	host  *proxyhost.Host
	vm    *proxyhost.VM
	proxy envoyproc.Config
	ids   *rand.ChaCha8 // x-request-id values
	rls   *ratelimitsvc.Service
	// grpcAnswered counts the plugin's gRPC calls answered so far.
	grpcAnswered int
	now          time.Time
	routes       []routeInfo
	// metricIDs remembers each counter's last value, to see what a request
	// bumped.
	counters map[string]uint64
	cas      uint32
	nextTick time.Time
}

type routeInfo struct {
	name            string
	limited, shadow string // counter names
	globalOK        string // counter names of the global limit's answers
	globalOver      string
	hintHeader      string
	bucketPrefix    string
	bucket          policy.Bucket
}

// Options are a simulation's settings.
type Options struct {
	// Seed fixes the module's random source and the request ids.
	Seed uint64
	// Proxy is the Envoy processing requests go through before the plugin.
	Proxy envoyproc.Config
	// RateLimit answers the plugin's calls to the rate limit service; a
	// policy with a globalRateLimit needs it.
	RateLimit *ratelimitsvc.Service
}

// New compiles the module and starts it with the policy (JSON).
//
// # Errors
//
// New fails when the policy does not parse (policy.Parse's error) or when
// the module refuses it or does not start; the module's logs are included.
func New(wasm, policyJSON []byte, o Options) (*Simulator, error) {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
		return nil, err
	}
	s := &Simulator{now: start, counters: map[string]uint64{}, proxy: o.Proxy, ids: rand.NewChaCha8(seedBytes(^o.Seed)), rls: o.RateLimit}
	h, err := proxyhost.NewHost(proxyhost.Options{
		Properties: map[string]string{"plugin_name": PluginName, "plugin_root_id": PluginName},
		Clock:      func() time.Time { return s.now },
		Rand:       rand.NewChaCha8(seedBytes(o.Seed)),
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
		if r.GlobalLimit != nil && o.RateLimit == nil {
			h.Close()
			return nil, fmt.Errorf("routes[%d] (%s) has a globalRateLimit: give the rate limit service's configuration (-ratelimit-config)", r.Index, r.Name)
		}
	}
	for _, r := range pol.Routes() {
		ri := routeInfo{name: r.Name,
			limited: policy.RouteCounter(r.Name, policy.CounterRateLimited),
			shadow:  policy.RouteCounter(r.Name, policy.CounterShadowLimited)}
		if r.GlobalLimit != nil {
			ri.globalOK = policy.RouteCounter(r.Name, policy.CounterGlobalOK)
			ri.globalOver = policy.RouteCounter(r.Name, policy.CounterGlobalOver)
		}
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
	lines := req.Headers
	if req.Authority != "" {
		lines = append([][2]string{{"Host", req.Authority}}, lines...)
	}
	p := s.proxy.Process(envoyproc.Request{Method: req.Method, Target: req.Path, Headers: lines, Client: req.Client}, s.requestID())
	if p.Reject != nil {
		res.Proxy.Rejected = true
		res.Status, res.Details = uint32(p.Reject.Status), p.Reject.Details
		if p.Reject.Location != "" {
			res.ResponseSet = [][2]string{{"location", p.Reject.Location}}
		}
		return res, nil
	}
	res.Proxy = Proxy{Set: p.Set, Removed: p.Removed, Generated: p.Generated}
	if p.Path != req.Path {
		res.Proxy.Path = p.Path
	}
	if p.Authority != req.Authority {
		res.Proxy.Authority = p.Authority
	}
	stream, err := s.vm.NewHTTPStream()
	if err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	stream.SetProperty("source.address", p.Source)
	stream.SetProperty("destination.port", listenerPort(p.Authority))
	in := append([][2]string{{":method", p.Method}, {":path", p.Path}, {":authority", p.Authority}, {":scheme", "http"}}, p.Headers...)
	if _, err := stream.RequestHeaders(in, true); err != nil {
		return res, fmt.Errorf("%s: %w", req.Line, err)
	}
	if err := s.answerCalls(); err != nil {
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
	if route != nil && route.globalOK != "" {
		switch {
		case grew[route.globalOver]:
			res.GlobalLimit = &Limit{Verdict: "limited"}
		case grew[route.globalOK]:
			res.GlobalLimit = &Limit{Verdict: "allowed"}
		}
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
		res.Status, res.Details = local.StatusCode, local.Details
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

// answerCalls answers the plugin's new calls to the rate limit service with
// the emulated service's verdict at the simulated time.
func (s *Simulator) answerCalls() error {
	calls := s.vm.GrpcCalls()
	for ; s.grpcAnswered < len(calls); s.grpcAnswered++ {
		c := calls[s.grpcAnswered]
		if c.Cancelled {
			continue
		}
		var req rlsv3.RateLimitRequest
		if err := proto.Unmarshal(c.Message, &req); err != nil {
			return fmt.Errorf("the plugin's RateLimitRequest: %w", err)
		}
		answer, err := proto.Marshal(s.rls.ShouldRateLimit(&req, s.now))
		if err != nil {
			return err
		}
		if err := s.vm.GrpcReceive(c.Token, answer); err != nil {
			return err
		}
	}
	return nil
}

// requestID is the next x-request-id: a version-4 UUID from the seeded
// source.
func (s *Simulator) requestID() string {
	var b [16]byte
	_, _ = s.ids.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
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
func RunAll(wasm, policyJSON []byte, o Options, reqs []Request) ([]Result, error) {
	s, err := New(wasm, policyJSON, o)
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
