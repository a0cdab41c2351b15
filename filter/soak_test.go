package filter

import (
	"fmt"
	"strings"
	"testing"
)

const (
	soakWarmUp   = 200_000
	soakRequests = 1_000_000 // a run this long is a soak: growth fails it
)

// BenchmarkWasm_Request drives whole requests of the seed scenario (stream
// create, request headers, response headers, done) through each module on
// proxyhost, and reports the guest's linear memory after warm-up and at the
// end. With -benchtime=1000000x it is the soak run of docs/BENCHMARKS.md:
//
//	go test ./filter -run '^$' -bench Wasm_Request -benchtime 1000000x
func BenchmarkWasm_Request(b *testing.B) { benchRequests(b, seedPolicy) }

// keyedLimitPolicy is the seed policy plus a rate limit per user (256 users
// over the default 1024 slots), generous enough never to deny.
var keyedLimitPolicy = strings.Replace(seedPolicy, `"overrideHeader": "x-canary"}`,
	`"overrideHeader": "x-canary"},
  "rateLimit": {"tokenBucket": {"maxTokens": 1000000000, "fillInterval": "1s"}, "key": {"header": "x-user-id"}}`, 1)

// BenchmarkWasm_KeyedLimit is BenchmarkWasm_Request with a keyed rate limit:
// the difference is the cost of the shared-data bucket.
func BenchmarkWasm_KeyedLimit(b *testing.B) { benchRequests(b, keyedLimitPolicy) }

func benchRequests(b *testing.B, policy string) {
	for _, l := range wasmLegs() {
		b.Run(l.name, func(b *testing.B) {
			w := newWorkerHost(b, l)
			vm := w.worker(b, policy)
			// High-entropy header values, as real traffic has, are what makes
			// a conservative collector grow; a small ring keeps the host side
			// from allocating them per request.
			var requests [256][][2]string
			for i := range requests {
				requests[i] = request(fmt.Sprintf("/products/%d?x=%d", i*7919, i),
					[2]string{"x-user-id", fmt.Sprintf("user-%08x", i*2654435761)},
					[2]string{"x-request-id", fmt.Sprintf("%016x-%08x", i*1099511628211, i)})
			}
			// Warm-up: Go's collector (GOGC=100) lets the heap grow to twice
			// the live set over its first cycles; growth after that is a leak.
			for i := range soakWarmUp {
				serve(b, vm, requests[i%len(requests)])
			}
			start, calls := vm.MemorySize(), w.HostCalls()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				serve(b, vm, requests[i%len(requests)])
			}
			b.StopTimer()
			end := vm.MemorySize()
			b.ReportMetric(float64(w.HostCalls()-calls)/float64(b.N), "hostcalls/op")
			b.ReportMetric(float64(start), "mem-start-B")
			b.ReportMetric(float64(end), "mem-end-B")
			growth := 100 * (float64(end)/float64(start) - 1)
			b.Logf("%s: %d requests after %d warm-up, linear memory %d -> %d bytes (%+.1f%%)",
				l.name, b.N, soakWarmUp, start, end, growth)
			if b.N >= soakRequests && growth > 5 {
				b.Errorf("linear memory grew %.1f%% over %d requests, want at most 5%%", growth, b.N)
			}
		})
	}
}

func TestKeyedLimitPolicy(t *testing.T) {
	if !strings.Contains(keyedLimitPolicy, `"rateLimit"`) {
		t.Fatal("keyedLimitPolicy has no rate limit: the seed policy changed under it")
	}
}
