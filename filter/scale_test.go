package filter

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scaleCase is one point of a growth curve: a policy and the request
// variants sent to it.
type scaleCase struct {
	name     string
	policy   string
	requests [][][2]string
}

// scaleRequests are 256 variants of GET /products/7 with the 4 pseudo
// headers, x-user-id (5 headers) and extra, with high-entropy user ids and
// query strings.
func scaleRequests(extra ...[2]string) [][][2]string {
	requests := make([][][2]string, 256)
	for i := range requests {
		requests[i] = append(request(fmt.Sprintf("/products/7?x=%d", i*7919),
			[2]string{"x-user-id", fmt.Sprintf("user-%08x", i*2654435761)}), extra...)
	}
	return requests
}

// extraHeaders are n headers of 40-byte values.
func extraHeaders(n int) [][2]string {
	hs := make([][2]string, n)
	for i := range hs {
		hs[i] = [2]string{"x-extra-" + strconv.Itoa(i), strings.Repeat(strconv.Itoa(i%10), 40)}
	}
	return hs
}

// routesBefore puts n routes that the requests do not match ahead of the
// seed route, whose uri condition becomes uri.
func routesBefore(n int, op, uri string) string {
	var b strings.Builder
	for i := range n {
		name := "svc-" + strconv.Itoa(i)
		b.WriteString(`{"name": "` + name + `", "match": [{"uri": {"` + op + `": "/` + name + `/items"}}],
		  "route": [{"destination": {"host": "` + name + `", "port": 8080}}]},`)
	}
	seed := strings.Replace(seedPolicy, `"match": [{"uri": {"prefix": "/products"}}]`, `"match": [{"uri": `+uri+`}]`, 1)
	return strings.Replace(seed, `{"routes": [`, `{"routes": [`+b.String(), 1)
}

func scaleCases() []scaleCase {
	base := scaleRequests()
	return []scaleCase{
		{"1 route, 5 headers", seedPolicy, base},
		{"1 000 prefix routes", routesBefore(999, "prefix", `{"prefix": "/products"}`), base},
		{"1 000 exact routes", routesBefore(999, "exact", `{"exact": "/products/7"}`), base},
		{"20 headers", seedPolicy, scaleRequests(extraHeaders(15)...)},
		{"50 headers", seedPolicy, scaleRequests(extraHeaders(45)...)},
		{"4 KB cookie", seedPolicy, scaleRequests([2]string{"cookie", "s=" + strings.Repeat("c", 4094)})},
	}
}

// BenchmarkWasm_Scale is the growth curves of docs/BENCHMARKS.md: each
// case's time per request relative to the first case's, measured in the
// same run in interleaved rounds of b.N requests per case. It prints a
// table per module: the ratio of the fastest rounds (the least disturbed by
// other work on the machine), the median of the per-round ratios with
// min–max, and host calls per request (exact):
//
//	go test ./filter -run '^$' -bench 'Wasm_Scale$' -benchtime 2000x
//
// WASMGATE_SCALE_CASE names one case to run alone: under valgrind
// --tool=callgrind, two runs of different lengths give its instructions per
// request, which other work on the machine does not change
// (build/scale-instructions.sh).
func BenchmarkWasm_Scale(b *testing.B) {
	cases := scaleCases()
	if only := os.Getenv("WASMGATE_SCALE_CASE"); only != "" {
		cases = slices.DeleteFunc(cases, func(c scaleCase) bool { return c.name != only })
	}
	for _, l := range wasmLegs() {
		b.Run(l.name, func(b *testing.B) {
			if b.N == 1 {
				return // the framework's probe
			}
			w := newWorkerHost(b, l)
			runs := make([]func(int), len(cases))
			hosts := make([]*workerHost, len(cases))
			names := make([]string, len(cases))
			for i, c := range cases {
				vm := w.worker(b, c.policy)
				runs[i] = func(j int) { serve(b, vm, c.requests[j%len(c.requests)]) }
				hosts[i], names[i] = w, c.name
			}
			ns, calls := interleave(b, hosts, runs)
			b.Log("\n" + l.name + ", " + ratioTable(b.N, names, ns, calls))
		})
	}
}

// BenchmarkWasm_Modules compares modules of this tree built with
// different flags, on the seed request: WASMGATE_MODULES is a list of
// module paths (relative to the repository root), the first the reference.
// Run in one process, interleaved like BenchmarkWasm_Scale; with one module
// under valgrind --tool=callgrind it gives instructions per request:
//
//	WASMGATE_MODULES="out/a.wasm out/b.wasm" go test ./filter -run '^$' -bench Wasm_Modules -benchtime 2000x
func BenchmarkWasm_Modules(b *testing.B) {
	paths := strings.Fields(os.Getenv("WASMGATE_MODULES"))
	if len(paths) == 0 {
		b.Skip("WASMGATE_MODULES names no module")
	}
	requests := scaleRequests()
	runs := make([]func(int), len(paths))
	var hosts []*workerHost
	for i, path := range paths {
		w := newWorkerHost(b, leg{name: path, wasm: filepath.Join("..", path)})
		vm := w.worker(b, seedPolicy)
		runs[i] = func(j int) { serve(b, vm, requests[j%len(requests)]) }
		hosts = append(hosts, w)
	}
	b.Run("seed", func(b *testing.B) {
		if b.N == 1 {
			return // the framework's probe
		}
		ns, calls := interleave(b, hosts, runs)
		b.Log("\n" + ratioTable(b.N, paths, ns, calls))
	})
}

const scaleRounds = 15

// interleave runs each of runs 2 000 times to warm up, then b.N times per
// round for scaleRounds rounds, and returns the ns per call by run and
// round, and the host calls per call of each run (counted by its host).
func interleave(b *testing.B, hosts []*workerHost, runs []func(int)) ([][]float64, []float64) {
	for _, run := range runs {
		for j := range 2000 {
			run(j)
		}
	}
	ns := make([][]float64, len(runs))
	calls := make([]float64, len(runs))
	b.ResetTimer()
	for range scaleRounds {
		for i, run := range runs {
			var one float64
			one, calls[i] = interleaveOnce(b, hosts[i], run)
			ns[i] = append(ns[i], one)
		}
	}
	return ns, calls
}

// interleaveOnce runs run b.N times: ns and host calls per call.
func interleaveOnce(b *testing.B, w *workerHost, run func(int)) (float64, float64) {
	start, before := time.Now(), w.HostCalls()
	for j := range b.N {
		run(j)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(b.N), float64(w.HostCalls()-before) / float64(b.N)
}

// ratioTable is a Markdown table of each run's time relative to the
// first's: the ratio of the fastest rounds (the least disturbed by other
// work on the machine), the median of the per-round ratios with min–max,
// the fastest ns per call and the host calls per call (exact).
func ratioTable(n int, names []string, ns [][]float64, calls []float64) string {
	var t strings.Builder
	fmt.Fprintf(&t, "%d calls per case and round, %d rounds:\n", n, scaleRounds)
	t.WriteString("| case | × first, fastest rounds | × first, median (min–max) | fastest ns/request | host calls/request |\n|---|--:|--:|--:|--:|\n")
	for i, name := range names {
		ratios := make([]float64, len(ns[i]))
		for r := range ratios {
			ratios[r] = ns[i][r] / ns[0][r]
		}
		slices.Sort(ratios)
		fmt.Fprintf(&t, "| %s | %.2f | %.2f (%.2f–%.2f) | %.0f | %.1f |\n", name, slices.Min(ns[i])/slices.Min(ns[0]),
			ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1], slices.Min(ns[i]), calls[i])
	}
	return t.String()
}

// BenchmarkWasm_ScaleKeys sends each request with a new key of a keyed
// limit (1 000 000 distinct keys with -benchtime 1000000x) and fails when
// the guest's linear memory or the host's shared data grows by more than
// 5 % over a run of at least 1 000 000 requests:
//
//	go test ./filter -run '^$' -bench 'Wasm_ScaleKeys' -benchtime 1000000x
func BenchmarkWasm_ScaleKeys(b *testing.B) {
	for _, l := range wasmLegs() {
		b.Run(l.name, func(b *testing.B) {
			w := newWorkerHost(b, l)
			vm := w.worker(b, keyedLimitPolicy)
			req := request("/products/7?x=1", [2]string{"x-user-id", ""})
			user := len(req) - 1
			key := func(i int) string { return "user-" + strconv.Itoa(i) }
			for i := range soakWarmUp / 10 {
				req[user][1] = key(-i - 1)
				serve(b, vm, req)
			}
			mem := vm.MemorySize()
			keys, _ := w.SharedDataSince(0)
			b.ResetTimer()
			for i := range b.N {
				req[user][1] = key(i)
				serve(b, vm, req)
			}
			b.StopTimer()
			endMem := vm.MemorySize()
			endKeys, _ := w.SharedDataSince(0)
			b.ReportMetric(float64(mem), "mem-start-B")
			b.ReportMetric(float64(endMem), "mem-end-B")
			b.ReportMetric(float64(len(endKeys)), "shared-keys")
			b.Logf("%s: %d distinct keys after %d warm-up, linear memory %d -> %d bytes, shared-data keys %d -> %d",
				l.name, b.N, soakWarmUp/10, mem, endMem, len(keys), len(endKeys))
			if b.N >= soakRequests && (float64(endMem) > 1.05*float64(mem) || float64(len(endKeys)) > 1.05*float64(len(keys))) {
				b.Errorf("memory grew over %d distinct keys, want at most 5%%", b.N)
			}
		})
	}
}
