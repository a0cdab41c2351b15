package policy

import (
	"math"
	"math/rand/v2"
	"testing"
)

// seededEnv is a testEnv whose random numbers come from a seeded generator.
type seededEnv struct {
	*testEnv
	rng *rand.Rand
}

func newSeededEnv(seed uint64) *seededEnv {
	return &seededEnv{testEnv: newTestEnv(), rng: rand.New(rand.NewPCG(seed, seed))}
}

func (e *seededEnv) Random() uint64 { return e.rng.Uint64() }

func abortPolicy(abort string) string {
	return `{"routes": [{"name": "flaky", "fault": {"abort": ` + abort + `},
	  "route": [{"destination": {"host": "backend"}}]}]}`
}

// TestFault_Abort_Share asserts the share of aborted requests over N seeded
// requests, within 3.5 standard deviations of the binomial.
func TestFault_Abort_Share(t *testing.T) {
	const n = 20000
	tests := []struct {
		name  string
		abort string
		want  float64 // the expected share
	}{
		{name: "quarter", abort: `{"percentage": {"value": 25}, "httpStatus": 503}`, want: 0.25},
		{name: "fraction", abort: `{"percentage": {"value": 2.5}, "httpStatus": 500}`, want: 0.025},
		{name: "all", abort: `{"percentage": {"value": 100}, "httpStatus": 503}`, want: 1},
		{name: "none", abort: `{"percentage": {"value": 0}, "httpStatus": 503}`, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, abortPolicy(tc.abort))
			env := newSeededEnv(7)
			var plan Plan
			aborted := 0
			for range n {
				p.Decide(&Request{Path: "/x"}, env, &plan)
				if plan.Reply != nil {
					aborted++
				}
			}
			tolerance := 3.5 * math.Sqrt(tc.want*(1-tc.want)/n)
			if got := float64(aborted) / n; math.Abs(got-tc.want) > tolerance {
				t.Fatalf("aborted %d of %d (%.4f), want %.4f ± %.4f", aborted, n, got, tc.want, tolerance)
			}
		})
	}
}

func TestFault_Abort_Plan(t *testing.T) {
	p := mustParse(t, abortPolicy(`{"percentage": {"value": 30}, "httpStatus": 503}`))
	env := newTestEnv()
	var plan Plan
	// The share is exact in random: below 30 % of the range aborts.
	for _, tc := range []struct {
		name   string
		random uint64
		abort  bool
	}{
		{name: "lowest", random: 0, abort: true},
		{name: "just below", random: math.MaxUint64 / 10 * 3, abort: true},
		{name: "just above", random: math.MaxUint64/10*3 + 1<<44, abort: false},
		{name: "highest", random: math.MaxUint64, abort: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.random = tc.random
			p.Decide(&Request{Path: "/x"}, env, &plan)
			if !tc.abort {
				if plan.Reply != nil {
					t.Fatalf("aborted; want forwarded")
				}
				if got := counterNames(p, &plan); len(got) != 2 || got[1] != "route.flaky.destination.backend.picked" {
					t.Fatalf("counters = %v", got)
				}
				return
			}
			r := plan.Reply
			if r == nil || r.Status != 503 || r.Details != FaultAbortDetails || r.Body != "fault filter abort" || len(r.Headers) != 0 {
				t.Fatalf("reply = %+v; want 503 %s", r, FaultAbortDetails)
			}
			if got := counterNames(p, &plan); len(got) != 2 || got[1] != "route.flaky.fault_aborted" {
				t.Fatalf("counters = %v; want matched, fault_aborted", got)
			}
			if line := plan.Describe(&Request{Path: "/x"}); line != `request "/x" route=flaky destination="backend" fault=abort(503)` {
				t.Fatalf("Describe = %s", line)
			}
		})
	}
}

func TestFault_Abort_Allocs(t *testing.T) {
	p := mustParse(t, abortPolicy(`{"percentage": {"value": 50}, "httpStatus": 503}`))
	env := newSeededEnv(1)
	req := &Request{Path: "/x"}
	var plan Plan
	if allocs := testing.AllocsPerRun(1000, func() { p.Decide(req, env, &plan) }); allocs != 0 {
		t.Fatalf("allocs per request = %v, want 0", allocs)
	}
}
