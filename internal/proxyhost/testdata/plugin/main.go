// Command plugin is the proxy-wasm plugin the proxyhost tests run: it touches
// every host call family the wasmgate filter uses, driven by the request path.
//
// One source builds with either SDK; sdk_go.go and sdk_tinygo.go pick it.
//
//   - plugin configuration "reject" fails the plugin start with a Critical log;
//     any other configuration is echoed in the x-config request header.
//   - every request: counter "testplugin.requests" +1, x-added added,
//     x-remove-me removed, x-now set from the guest clock, x-source and
//     x-plugin from the source.address and plugin_name properties, and
//     :path replaced by x-rewrite when present.
//   - /deny: local response 429 with retry-after and body "denied".
//   - /count: compare-and-swap increment of shared key "testplugin.count";
//     the new value goes to x-count, the retries to x-cas-retries.
//   - /clear: calls the clear_route_cache foreign function.
//   - /panic: panics, which traps the VM.
//   - response: x-served-by added.
package main

import (
	"encoding/binary"
	"strconv"
	"time"
)

const countKey = "testplugin.count"

func main() {}

func init() { setVMContext(&vm{}) }

type vm struct{ defaultVMContext }

func (*vm) NewPluginContext(uint32) pluginContext { return &plugin{} }

type plugin struct {
	defaultPlugin
	config   string
	requests counter
}

func (p *plugin) OnPluginStart(int) pluginStartStatus {
	cfg, err := getPluginConfiguration()
	if err != nil && err != errNotFound {
		logCritical("read configuration: " + err.Error())
		return false
	}
	if string(cfg) == "reject" {
		logCritical("configuration rejected: reject")
		return false
	}
	p.config = string(cfg)
	p.requests = defineCounter("testplugin.requests")
	logInfo("configured: " + p.config)
	return true
}

func (p *plugin) NewHttpContext(id uint32) httpContext { return &stream{id: id, plugin: p} }

type stream struct {
	defaultHTTPContext
	id     uint32
	plugin *plugin
}

func (s *stream) OnHttpRequestHeaders(int, bool) action {
	s.plugin.requests.Increment(1)
	path, _ := getRequestHeader(":path")
	switch path {
	case "/deny":
		_ = sendHTTPResponse(429, [][2]string{{"retry-after", "1"}}, []byte("denied"), -1)
		return actionPause
	case "/panic":
		panic("boom")
	case "/count":
		n, retries := casIncrement()
		_ = replaceRequestHeader("x-count", strconv.FormatUint(n, 10))
		_ = replaceRequestHeader("x-cas-retries", strconv.Itoa(retries))
	case "/clear":
		if _, err := callForeignFunction("clear_route_cache", nil); err != nil {
			_ = replaceRequestHeader("x-clear-error", err.Error())
		}
	}
	if to, err := getRequestHeader("x-rewrite"); err == nil {
		_ = replaceRequestHeader(":path", to)
	}
	_ = replaceRequestHeader("x-config", s.plugin.config)
	_ = addRequestHeader("x-added", "1")
	_ = removeRequestHeader("x-remove-me")
	_ = replaceRequestHeader("x-now", strconv.FormatInt(time.Now().UnixNano(), 10))
	if v, err := getProperty([]string{"source", "address"}); err == nil {
		_ = replaceRequestHeader("x-source", string(v))
	}
	if v, err := getProperty([]string{"plugin_name"}); err == nil {
		_ = replaceRequestHeader("x-plugin", string(v))
	}
	hs, _ := getRequestHeaders()
	_ = replaceRequestHeader("x-header-count", strconv.Itoa(len(hs)))
	return actionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) action {
	_ = addResponseHeader("x-served-by", "testplugin")
	return actionContinue
}

func (s *stream) OnHttpStreamDone() {
	logDebugf("stream %d done", s.id)
}

// casIncrement adds one to the shared counter, retrying on CAS mismatch as
// the filter's token bucket does, and returns the new value and the retries.
func casIncrement() (uint64, int) {
	for retries := 0; retries < 1000; retries++ {
		value, cas, err := getSharedData(countKey)
		var n uint64
		switch {
		case err == nil && len(value) == 8:
			n = binary.LittleEndian.Uint64(value)
		case err != nil && err != errNotFound:
			return 0, retries
		}
		buf := make([]byte, 8)
		binary.LittleEndian.PutUint64(buf, n+1)
		switch err := setSharedData(countKey, buf, cas); err {
		case nil:
			return n + 1, retries
		case errCasMismatch:
			continue
		default:
			return 0, retries
		}
	}
	return 0, 1000
}
