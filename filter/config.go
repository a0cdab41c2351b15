package filter

import (
	"github.com/wasmgate/wasmgate/policy"
)

// config is a compiled policy plus everything the request path needs from the
// host, precomputed once per configuration: metric ids, counts not yet
// flushed, and shared-data keys.
type config struct {
	policy   *policy.Policy
	routes   []routeState // indexed by policy.Route.Index
	counters counters
	// needsClientAddress tells whether any decision may read the client
	// address, which costs a host call per request.
	needsClientAddress bool
	// needsScheme and needsPort tell whether any decision may read the
	// request's scheme or listener port (a property: a host call).
	needsScheme, needsPort bool
	logRequests            bool
	// streams counts the streams that use this config, so a replaced config
	// is dropped only when its last counts are flushed.
	streams int
}

type routeState struct {
	name      []byte // the route's name, for the route property
	limitKeys limitKeys
}

func newConfig(pol *policy.Policy, plugin string) *config {
	c := &config{policy: pol, routes: make([]routeState, len(pol.Routes()))}
	for _, r := range pol.Routes() {
		c.routes[r.Index].name = []byte(r.Name)
		if rl := r.RateLimit; rl != nil {
			c.routes[r.Index].limitKeys = newLimitKeys(plugin, r.Name, rl.MaxKeys)
		}
	}
	c.counters = newCounters(pol.Counters())
	c.needsClientAddress = pol.UsesClientAddress()
	c.needsScheme, c.needsPort = pol.UsesScheme(), pol.UsesPort()
	c.logRequests = pol.LogRequests()
	return c
}

// counters keeps a policy's counts in guest memory and adds them to the
// proxy's metrics in batches: one host call per changed counter per flush
// instead of one per counter per request.
type counters struct {
	metrics []metricCounter // by policy.Counter
	pending []uint64        // by policy.Counter
	dirty   bool
}

func newCounters(names []string) counters {
	c := counters{metrics: make([]metricCounter, len(names)), pending: make([]uint64, len(names))}
	for i, name := range names {
		c.metrics[i] = defineCounterMetric(name)
	}
	return c
}

func (c *counters) add(ids []policy.Counter) {
	for _, id := range ids {
		c.pending[id]++
	}
	c.dirty = c.dirty || len(ids) > 0
}

// flush adds the pending counts to the proxy's metrics.
func (c *counters) flush() {
	if !c.dirty {
		return
	}
	for i, n := range c.pending {
		if n > 0 {
			c.metrics[i].Increment(n)
			c.pending[i] = 0
		}
	}
	c.dirty = false
}
