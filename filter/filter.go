// Package filter is the proxy-wasm glue of wasmgate: it runs the compiled
// policy (package policy) inside Envoy or istio-proxy.
//
// The VM context starts one plugin context per configuration; the plugin
// context parses and compiles the policy and defines metrics; each HTTP stream
// asks the policy for a decision and applies it with host calls. All SDK names
// live in the SDK shim (sdk_*.go), so the TinyGo build (tetratelabs SDK) and
// the upstream Go build (proxy-wasm SDK) share every line of this package.
//
// # Notes
//
//   - Envoy runs one VM per worker thread. Rate-limit buckets live in the
//     host's shared data, so one budget holds across workers (see bucket.go).
//   - A bad configuration is logged once at Critical and fails the plugin
//     start: Envoy refuses it and keeps the previous one.
package filter

import (
	"strconv"
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// Register installs wasmgate as the VM's root context. Call it once from the
// main package's init function.
func Register() { setVMContext(&vmContext{}) }

// invalidPolicyPrefix starts the Critical log line of a refused policy.
const invalidPolicyPrefix = "wasmgate: invalid policy: "

type vmContext struct{ defaultVMContext }

func (*vmContext) OnVMStart(int) onVMStartStatus {
	reserveHeap()
	return vmStartOK
}

func (*vmContext) NewPluginContext(uint32) pluginContextIface { return &pluginContext{} }

// flushPeriod is how often each worker adds its counts to the proxy's
// metrics: counters reach /stats at most this late.
const flushPeriod = 250 // milliseconds

// pluginContext is one plugin configuration. Its config is swapped whole on a
// reconfigure; streams keep the config they started with.
type pluginContext struct {
	defaultPlugin
	config *config
	// retired are replaced configs still in use by a stream, or with counts
	// not yet flushed.
	retired  []*config
	rejected metricCounter
	random   uint64
	free     []*httpContext // finished streams, reused to avoid allocation
}

func (p *pluginContext) OnPluginStart(int) onPluginStatus {
	releaseHeap()
	data, err := getPluginConfiguration()
	if err != nil && err != errNotFound {
		logCritical(invalidPolicyPrefix + "reading the plugin configuration: " + err.Error())
		return pluginStartFailed
	}
	if p.rejected == 0 {
		p.rejected = defineCounterMetric(policy.MetricPrefix + "config_rejected")
	}
	pol, err := policy.Parse(data)
	if err != nil {
		logCritical(invalidPolicyPrefix + err.Error())
		p.rejected.Increment(1)
		return pluginStartFailed
	}
	if p.config != nil {
		p.retired = append(p.retired, p.config)
	}
	p.config = newConfig(pol, pluginName())
	if p.random == 0 {
		p.random = uint64(time.Now().UnixNano()) | 1
	}
	if err := setTickPeriod(flushPeriod); err != nil {
		logCritical("wasmgate: setting the tick period: " + err.Error())
		return pluginStartFailed
	}
	logInfo("wasmgate: policy loaded: " + strconv.Itoa(len(pol.Routes())) + " routes")
	return pluginStartOK
}

// OnTick flushes the counts of every config.
func (p *pluginContext) OnTick() { p.flush() }

func (p *pluginContext) flush() {
	if p.config != nil {
		p.config.counters.flush()
	}
	kept := p.retired[:0]
	for _, c := range p.retired {
		c.counters.flush()
		if c.streams > 0 {
			kept = append(kept, c)
		}
	}
	clear(p.retired[len(kept):])
	p.retired = kept
}

func (p *pluginContext) NewHttpContext(contextID uint32) httpContextIface {
	var h *httpContext
	if n := len(p.free); n > 0 {
		h = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		h = &httpContext{plugin: p}
	}
	h.config, h.contextID = p.config, contextID
	if h.config != nil {
		h.config.streams++
	}
	return h
}

// nextRandom is xorshift64*: cheap, allocation-free, good enough to split
// traffic; it never decides anything security-relevant.
func (p *pluginContext) nextRandom() uint64 {
	x := p.random
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	p.random = x
	return x * 2685821657736338717
}

// pluginName names this plugin in shared-data keys: every plugin of a proxy
// shares one shared-data namespace when vm_id is empty, as in Istio.
func pluginName() string {
	for _, prop := range [][]string{{"plugin_name"}, {"plugin_root_id"}} {
		if v, err := getProperty(prop); err == nil && len(v) > 0 {
			return string(v)
		}
	}
	return "wasmgate"
}
