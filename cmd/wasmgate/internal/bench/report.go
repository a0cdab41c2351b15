package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// record is one JSON line of build/bench.sh's results: a run of a load
// tool with the /proc samples of the Envoy it loaded.
type record struct {
	Kind     string      `json:"kind"` // sat (wrk, closed loop), rate (vegeta, fixed rate) or soak (wrk, one segment)
	Scenario string      `json:"scenario"`
	Round    int         `json:"round"`
	CPUTicks int64       `json:"cpu_ticks"` // Envoy's utime+stime over the run, in 1/100 s
	RSSKiB   int64       `json:"rss_kib"`   // Envoy's VmRSS at the end of the run
	Load1    float64     `json:"load1"`     // the machine's 1-minute load average before the run
	Total    int64       `json:"total"`     // soak: requests since the soak's warm-up, this segment included
	Wrk      *wrkSummary `json:"wrk"`
	Vegeta   *struct {
		Requests  int64   `json:"requests"`
		Rate      float64 `json:"rate"`
		Success   float64 `json:"success"`
		Latencies struct {
			P50 float64 `json:"50th"` // nanoseconds
			P99 float64 `json:"99th"`
		} `json:"latencies"`
		Errors []string `json:"errors"`
	} `json:"vegeta"`
}

// wrkSummary is the line build/bench.lua's done() prints.
type wrkSummary struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Errors     int64 `json:"errors"` // connect, read, write and timeout errors
	Status     int64 `json:"status"` // responses with a status ≥ 400
}

// userHz is the unit of /proc/PID/stat times: Linux fixes it at 100 for
// user space whatever the kernel's tick rate.
const userHz = 100

func (r *record) requests() int64 {
	switch {
	case r.Wrk != nil:
		return r.Wrk.Requests
	case r.Vegeta != nil:
		return r.Vegeta.Requests
	}
	return 0
}

// cpuPerRequest is Envoy's CPU time per request in microseconds.
func (r *record) cpuPerRequest() float64 {
	return float64(r.CPUTicks) * 1e6 / userHz / float64(max(r.requests(), 1))
}

// failure describes the requests of r that failed, or is empty.
func (r *record) failure() string {
	switch {
	case r.requests() == 0:
		return "no request completed"
	case r.Wrk != nil && r.Wrk.Errors+r.Wrk.Status > 0:
		return fmt.Sprintf("%d socket errors, %d responses with status ≥ 400", r.Wrk.Errors, r.Wrk.Status)
	case r.Vegeta != nil && r.Vegeta.Success < 1:
		errs := r.Vegeta.Errors
		if len(errs) > 3 {
			errs = append(errs[:3:3], fmt.Sprintf("%d more", len(r.Vegeta.Errors)-3))
		}
		return fmt.Sprintf("success ratio %.4f: %s", r.Vegeta.Success, strings.Join(errs, "; "))
	}
	return ""
}

func reportCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	results := fs.String("results", "", "the JSON lines of build/bench.sh (required)")
	maxGrowth := fs.Float64("max-growth", 2, "soak: the most Envoy's RSS may grow from the first checkpoint to the last, in MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *results == "" {
		return errors.New("report: -results is required")
	}
	recs, err := readRecords(*results)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return report(stdout, recs, *maxGrowth)
}

func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	dec := json.NewDecoder(f)
	for dec.More() {
		var r record
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", path, len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// report prints the comparison table, the goals and the soak table of the
// records that have them. It fails when a run had failed requests or a
// soak's memory grew more than maxGrowth MiB.
func report(w io.Writer, recs []record, maxGrowth float64) error {
	var failures []string
	for _, r := range recs {
		if f := r.failure(); f != "" {
			failures = append(failures, fmt.Sprintf("%s %s round %d: %s", r.Scenario, r.Kind, r.Round, f))
		}
	}
	s := summarize(recs)
	if len(s.order) > 0 {
		s.comparison(w)
		s.goals(w)
	}
	if err := soakTable(w, recs, maxGrowth); err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return fmt.Errorf("report: %s", strings.Join(failures, "; "))
	}
	return nil
}

// metric names one number of a scenario's round.
type metric int

const (
	rps metric = iota
	cpu
	p50
	p99
	rss
	metrics
)

// summary holds each scenario's metrics by round.
type summary struct {
	order  []string
	rounds map[string]map[int]*[metrics]float64
}

func summarize(recs []record) *summary {
	s := &summary{rounds: map[string]map[int]*[metrics]float64{}}
	for _, r := range recs {
		if r.Kind != "sat" && r.Kind != "rate" {
			continue
		}
		byRound := s.rounds[r.Scenario]
		if byRound == nil {
			byRound = map[int]*[metrics]float64{}
			s.rounds[r.Scenario] = byRound
			s.order = append(s.order, r.Scenario)
		}
		m := byRound[r.Round]
		if m == nil {
			m = &[metrics]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()}
			byRound[r.Round] = m
		}
		switch {
		case r.Kind == "sat" && r.Wrk != nil:
			m[rps] = float64(r.Wrk.Requests) / (float64(r.Wrk.DurationUS) / 1e6)
			m[cpu] = r.cpuPerRequest()
			m[rss] = float64(r.RSSKiB) / 1024
		case r.Kind == "rate" && r.Vegeta != nil:
			m[p50] = r.Vegeta.Latencies.P50 / 1e3
			m[p99] = r.Vegeta.Latencies.P99 / 1e3
		}
	}
	return s
}

// values returns metric m of scenario over its rounds.
func (s *summary) values(scenario string, m metric) []float64 {
	var v []float64
	for _, r := range s.rounds[scenario] {
		if !math.IsNaN(r[m]) {
			v = append(v, r[m])
		}
	}
	return v
}

// paired returns f(a's metric, b's metric) for each round both have.
func (s *summary) paired(a, b string, m metric, f func(x, y float64) float64) []float64 {
	var v []float64
	for round, ra := range s.rounds[a] {
		if rb, ok := s.rounds[b][round]; ok && !math.IsNaN(ra[m]) && !math.IsNaN(rb[m]) {
			v = append(v, f(ra[m], rb[m]))
		}
	}
	return v
}

func ratio(x, y float64) float64 { return x / y }
func diff(x, y float64) float64  { return x - y }

// spread formats the median of v with its min–max.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	f := func(x float64) string { return fmt.Sprintf(format, x) }
	if len(v) == 1 {
		return f(med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(med), f(v[0]), f(v[len(v)-1]))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// reference is the native scenario a scenario is compared with: the one
// with a limit for scenarios with a limit.
func reference(scenario string) string {
	if strings.HasSuffix(scenario, "+limit") {
		return "native+limit"
	}
	return "native"
}

// floor is the empty plugin of a plugin scenario's SDK, the cost every
// proxy-wasm filter of that SDK pays; "" for other scenarios.
func floor(scenario string) string {
	switch {
	case strings.HasPrefix(scenario, "tinygo"):
		return "empty-tinygo"
	case strings.HasPrefix(scenario, "go"):
		return "empty-go"
	}
	return ""
}

func (s *summary) comparison(w io.Writer) {
	fmt.Fprintln(w, "Medians over rounds (min–max); ratios and differences are paired by round against the native scenario")
	fmt.Fprintln(w, "(native for scenarios without a limit, native+limit for those with one), and for plugin scenarios")
	fmt.Fprintln(w, "against the empty plugin of their SDK (empty-tinygo, empty-go: the floor).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | req/s | × native | Envoy CPU µs/req | × native | − native µs | × floor | − floor µs | p50 µs | p99 µs | p99 × native | RSS MiB |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, sc := range s.order {
		ref := reference(sc)
		against := func(ref string, m metric, f func(x, y float64) float64, format string) string {
			if sc == ref || ref == "" {
				return "–"
			}
			return spread(s.paired(sc, ref, m, f), format)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sc,
			spread(s.values(sc, rps), "%.0f"), against(ref, rps, ratio, "%.2f"),
			spread(s.values(sc, cpu), "%.1f"), against(ref, cpu, ratio, "%.2f"), against(ref, cpu, diff, "%+.1f"),
			against(floor(sc), cpu, ratio, "%.2f"), against(floor(sc), cpu, diff, "%+.1f"),
			spread(s.values(sc, p50), "%.0f"), spread(s.values(sc, p99), "%.0f"), against(ref, p99, ratio, "%.2f"),
			spread(s.values(sc, rss), "%.1f"))
	}
}

// goal is one target of the request path, checked on paired rounds.
type goal struct {
	name     string
	a, b     string // scenario a against scenario b
	m        metric
	f        func(x, y float64) float64
	format   string
	limit    float64
	atLeast  bool // the median must be ≥ limit (else ≤)
	describe string
}

var goals = []goal{
	{"TinyGo throughput", "tinygo", "native", rps, ratio, "%.2f×", 0.95, true, "≥ 0.95× native"},
	{"TinyGo CPU/request", "tinygo", "native", cpu, ratio, "%.2f×", 1.05, false, "≤ 1.05× native"},
	{"TinyGo p99 at the fixed rate", "tinygo", "native", p99, ratio, "%.2f×", 1.10, false, "≤ 1.10× native"},
	{"TinyGo+limit throughput", "tinygo+limit", "native+limit", rps, ratio, "%.2f×", 0.95, true, "≥ 0.95× native+limit"},
	{"TinyGo+limit CPU/request", "tinygo+limit", "native+limit", cpu, ratio, "%.2f×", 1.05, false, "≤ 1.05× native+limit"},
	{"TinyGo+limit p99 at the fixed rate", "tinygo+limit", "native+limit", p99, ratio, "%.2f×", 1.10, false, "≤ 1.10× native+limit"},
	{"Go CPU/request", "go", "native", cpu, ratio, "%.2f×", 1.20, false, "≤ 1.20× native"},
	{"Go+limit CPU/request", "go+limit", "native+limit", cpu, ratio, "%.2f×", 1.20, false, "≤ 1.20× native+limit"},
	{"TinyGo CPU/request over its floor", "tinygo", "empty-tinygo", cpu, ratio, "%.2f×", 1.05, false, "≤ 1.05× empty-tinygo"},
	{"TinyGo+limit CPU/request over its floor (reference)", "tinygo+limit", "empty-tinygo", cpu, ratio, "%.2f×", math.Inf(1), false, "–"},
	{"Go CPU/request over its floor", "go", "empty-go", cpu, ratio, "%.2f×", 1.15, false, "≤ 1.15× empty-go"},
	{"Go+limit CPU/request over its floor (reference)", "go+limit", "empty-go", cpu, ratio, "%.2f×", math.Inf(1), false, "–"},
	{"TinyGo limit cost", "tinygo+limit", "tinygo", cpu, diff, "%+.1f µs", 3, false, "≤ +3 µs/request"},
	{"Go limit cost", "go+limit", "go", cpu, diff, "%+.1f µs", 3, false, "≤ +3 µs/request"},
	{"native limit cost (reference)", "native+limit", "native", cpu, diff, "%+.1f µs", math.Inf(1), false, "–"},
	{"TinyGo SDK floor (reference)", "empty-tinygo", "bare", cpu, diff, "%+.1f µs", math.Inf(1), false, "–"},
	{"Go SDK floor (reference)", "empty-go", "bare", cpu, diff, "%+.1f µs", math.Inf(1), false, "–"},
	{"TinyGo plugin over its floor (reference)", "tinygo", "empty-tinygo", cpu, diff, "%+.1f µs", math.Inf(1), false, "–"},
	{"Go plugin over its floor (reference)", "go", "empty-go", cpu, diff, "%+.1f µs", math.Inf(1), false, "–"},
}

func (s *summary) goals(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| goal | measured | target | met |")
	fmt.Fprintln(w, "|---|--:|--:|---|")
	for _, g := range goals {
		v := s.paired(g.a, g.b, g.m, g.f)
		if len(v) == 0 {
			continue
		}
		met := "–"
		if !math.IsInf(g.limit, 0) {
			med := median(v)
			met = map[bool]string{true: "yes", false: "no"}[g.atLeast && med >= g.limit || !g.atLeast && med <= g.limit]
		}
		fmt.Fprintf(w, "| %s (%s vs %s) | %s | %s | %s |\n", g.name, g.a, g.b, spread(v, g.format), g.describe, met)
	}
}

// soakTable prints Envoy's RSS at each soak checkpoint, and fails when it
// grew more than maxGrowth MiB from the first checkpoint to the last.
func soakTable(w io.Writer, recs []record, maxGrowth float64) error {
	var order []string
	bySc := map[string][]record{}
	for _, r := range recs {
		if r.Kind == "soak" {
			if bySc[r.Scenario] == nil {
				order = append(order, r.Scenario)
			}
			bySc[r.Scenario] = append(bySc[r.Scenario], r)
		}
	}
	if len(order) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| soak | req/s | RSS at checkpoints (requests after warm-up: MiB) | first → last |")
	fmt.Fprintln(w, "|---|--:|---|--:|")
	var grew []string
	for _, sc := range order {
		cps := bySc[sc]
		var points []string
		var reqs, us int64
		for _, r := range cps {
			points = append(points, fmt.Sprintf("%dk: %.1f", r.Total/1000, float64(r.RSSKiB)/1024))
			if r.Wrk != nil {
				reqs += r.Wrk.Requests
				us += r.Wrk.DurationUS
			}
		}
		growth := float64(cps[len(cps)-1].RSSKiB-cps[0].RSSKiB) / 1024
		fmt.Fprintf(w, "| %s | %.0f | %s | %+.1f MiB |\n", sc, float64(reqs)/(float64(max(us, 1))/1e6), strings.Join(points, ", "), growth)
		if growth > maxGrowth {
			grew = append(grew, fmt.Sprintf("%s: Envoy's RSS grew %.1f MiB over the soak (more than %.1f)", sc, growth, maxGrowth))
		}
	}
	if len(grew) > 0 {
		return errors.New(strings.Join(grew, "; "))
	}
	return nil
}
