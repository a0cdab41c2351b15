package proxyhost

import (
	"testing"
)

// BenchmarkHTTPStream drives whole requests (stream create, request headers,
// response headers, done) through each build of the test plugin and reports
// the guest's linear memory after warm-up and at the end. With
// -benchtime=1000000x it is a soak run:
//
//	go test ./internal/proxyhost -run '^$' -bench HTTPStream -benchtime 1000000x
func BenchmarkHTTPStream(b *testing.B) {
	request := [][2]string{
		{":method", "GET"}, {":scheme", "https"}, {":authority", "shop.example.com"},
		{":path", "/products/123?x=1"}, {"user-agent", "bench"}, {"accept", "*/*"},
		{"x-user-id", "u-42"}, {"x-request-id", "7f3c9d1e-0000-4000-8000-000000000000"},
	}
	response := [][2]string{{":status", "200"}, {"content-type", "text/plain"}}
	for _, build := range builds {
		b.Run(build.name, func(b *testing.B) {
			_, vm := newTestVM(b, wasmFor(b, build), Options{}, "bench")
			serve := func() {
				s, err := vm.NewHTTPStream()
				if err == nil {
					_, err = s.RequestHeaders(request, true)
				}
				if err == nil {
					_, err = s.ResponseHeaders(response, true)
				}
				if err == nil {
					err = s.Done()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			// Warm-up lets the guest heap reach its working size first, so
			// growth after it means a leak.
			for range 1000 {
				serve()
			}
			start := vm.MemorySize()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				serve()
			}
			b.StopTimer()
			end := vm.MemorySize()
			b.ReportMetric(float64(start), "mem-start-B")
			b.ReportMetric(float64(end), "mem-end-B")
			b.Logf("%s: %d requests, linear memory %d -> %d bytes (%+.1f%%)",
				build.name, b.N, start, end, 100*(float64(end)/float64(start)-1))
		})
	}
}
