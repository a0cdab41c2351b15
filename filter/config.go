package filter

import (
	"strings"

	"github.com/wasmgate/wasmgate/policy"
)

// metricPrefix starts every metric name; Envoy adds its own prefix for Wasm
// metrics in front of it.
const metricPrefix = "wasmgate."

// config is a compiled policy plus everything the request path needs from the
// host, precomputed once per configuration: metric ids, shared-data keys and
// the hint headers to strip from client requests.
type config struct {
	policy *policy.Policy
	routes []routeState // indexed by policy.Route.Index
	// hintHeaders are the hint header names of all routes: a client must not
	// choose a cluster by sending one itself.
	hintHeaders []string
	// needsMethod, needsAuthority and needsClientAddress tell whether any
	// decision may read that part of the request: each costs a host call per
	// request, and most policies need none of them.
	needsMethod, needsAuthority, needsClientAddress bool
}

type routeState struct {
	matched, rewritten, rateLimited, shadowLimited, contended, keyShared metricCounter
	globalOK, globalOverLimit, globalError, globalTimeout                metricCounter
	picked                                                               []metricCounter // by Destination.Index
	limitKeys                                                            limitKeys
}

func newConfig(pol *policy.Policy, plugin string) *config {
	c := &config{policy: pol, routes: make([]routeState, len(pol.Routes()))}
	seen := map[string]bool{}
	for _, r := range pol.Routes() {
		prefix := metricPrefix + "route." + r.Name + "."
		rs := &c.routes[r.Index]
		rs.matched = defineCounterMetric(prefix + "matched")
		rs.rewritten = defineCounterMetric(prefix + "rewritten")
		if s := r.Split; s != nil {
			rs.picked = make([]metricCounter, len(s.Destinations))
			for i, d := range s.Destinations {
				rs.picked[i] = defineCounterMetric(prefix + "destination." + metricSegment(d.Hint) + ".picked")
			}
			if !seen[s.HintHeader] {
				seen[s.HintHeader] = true
				c.hintHeaders = append(c.hintHeaders, s.HintHeader)
			}
		}
		if rl := r.RateLimit; rl != nil {
			rs.rateLimited = defineCounterMetric(prefix + "rate_limited")
			rs.shadowLimited = defineCounterMetric(prefix + "shadow_limited")
			rs.contended = defineCounterMetric(prefix + "contended")
			if rl.Keyed() {
				rs.keyShared = defineCounterMetric(prefix + "key_shared")
			}
			rs.limitKeys = newLimitKeys(plugin, r.Name, rl.MaxKeys)
		}
		if r.GlobalLimit != nil {
			globalMetrics(rs, prefix)
		}
	}
	c.needsMethod = pol.UsesMethod()
	c.needsAuthority = pol.UsesAuthority()
	c.needsClientAddress = pol.UsesClientAddress()
	return c
}

// metricSegment makes s one segment of a dotted metric name.
func metricSegment(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
