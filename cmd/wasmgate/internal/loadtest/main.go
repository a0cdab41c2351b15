// Command loadtest drives HTTP/1.1 load through a running gateway and
// records throughput, latency and the proxy's memory and CPU use. It is the
// load generator of build/loadtest.sh, which starts Envoy and the upstreams.
//
// Usage:
//
//	loadtest run -url http://127.0.0.1:10000 -pid ENVOY_PID -label split -module go -results FILE
//	loadtest report -results FILE
//
// run keeps -c connections busy (closed loop, keep-alive, one request in
// flight per connection) for -warmup, then measures for -duration or until
// -requests complete, whichever comes first, and appends one JSON record to
// -results. report prints the records as markdown tables.
//
// # Notes
//
// The generator is deliberately thin (raw connections, no connection pool)
// because it shares the machine's cores with the proxy it measures; its own
// CPU time per request is recorded so a reader can see that share.
// Latencies are those of a closed loop: a stalled response delays the
// requests queued behind it instead of being counted as many slow ones, so
// high percentiles are lower bounds.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("loadtest: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: loadtest run|report [flags]")
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCommand(os.Args[2:])
	case "report":
		err = reportCommand(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q; want run or report", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// Record is the result of one measured run: one JSON line of -results.
type Record struct {
	Label  string `json:"label"`
	Module string `json:"module"`
	// Conns is the number of connections (requests in flight).
	Conns int `json:"conns"`
	// Requests counts completed requests; Failed those that got no
	// response (connection errors); Non2xx responses with another status.
	Requests int64   `json:"requests"`
	Failed   int64   `json:"failed"`
	Non2xx   int64   `json:"non2xx"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	// Latencies in microseconds.
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
	Max float64 `json:"max_us"`
	// ServedBy counts responses by their x-served-by header (the plugin's
	// %DESTINATION%); empty without the plugin.
	ServedBy map[string]int64 `json:"served_by,omitempty"`
	// CPU time per request in microseconds (user+system): the proxy
	// process, the upstream processes and this generator.
	ProxyCPU    float64 `json:"proxy_cpu_us"`
	UpstreamCPU float64 `json:"upstream_cpu_us"`
	GenCPU      float64 `json:"gen_cpu_us"`
	// MachineBusy is the share of all CPUs' time not idle during the run;
	// OtherBusy the part of it spent outside the proxy, the upstreams and
	// this generator (other work on the machine: noise).
	MachineBusy float64 `json:"machine_busy"`
	OtherBusy   float64 `json:"other_busy"`
	// QuietWait is how long the run waited for the machine to fall idle
	// before starting; Quiet whether it did.
	QuietWait float64 `json:"quiet_wait_s"`
	Quiet     bool    `json:"quiet"`
	// Proxy RSS in KiB: when the run started (before warm-up), after
	// warm-up, at each checkpoint, and at the end.
	RSSIdle     int64        `json:"rss_idle_kib"`
	RSSWarm     int64        `json:"rss_warm_kib"`
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	RSSEnd      int64        `json:"rss_end_kib"`
}

// Checkpoint is the proxy's RSS once Requests had completed after warm-up.
type Checkpoint struct {
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RSS      int64   `json:"rss_kib"`
}

// config is the run command's flags.
type config struct {
	target      *url.URL
	path        string
	userIDs     bool
	conns       int
	warmup      time.Duration
	duration    time.Duration
	requests    int64
	checkpoint  int64
	pid         int
	quietWait   time.Duration
	upstreams   []int
	label       string
	module      string
	resultsPath string
}

func runCommand(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c config
	rawURL := fs.String("url", "", "gateway base URL, http://host:port (required)")
	fs.StringVar(&c.path, "path", "/products/%d?x=1", "request target; %d becomes the request's sequence number")
	fs.BoolVar(&c.userIDs, "user-ids", false, "send a distinct x-user-id header on every request (high-entropy input)")
	fs.IntVar(&c.conns, "c", 32, "connections, each with one request in flight")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "unmeasured load before the run")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measured run length (an upper bound with -requests)")
	fs.Int64Var(&c.requests, "requests", 0, "stop after this many measured requests (0: no limit)")
	fs.Int64Var(&c.checkpoint, "checkpoint", 0, "record the proxy's RSS every this many requests (0: never)")
	fs.IntVar(&c.pid, "pid", 0, "the proxy's process id, for RSS and CPU time (required)")
	fs.DurationVar(&c.quietWait, "quiet-wait", 30*time.Second, "wait up to this long for the machine to be idle before starting")
	upstreamList := fs.String("upstream-pids", "", "comma-separated process ids of the upstreams, for their CPU time")
	fs.StringVar(&c.label, "label", "", "scenario name for the report (required)")
	fs.StringVar(&c.module, "module", "none", "plugin module name for the report")
	fs.StringVar(&c.resultsPath, "results", "", "append the record to this file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *rawURL == "" || c.pid == 0 || c.label == "" || c.resultsPath == "":
		return errors.New("run: -url, -pid, -label and -results are required")
	case c.conns < 1:
		return fmt.Errorf("run: -c: must be at least 1, got %d", c.conns)
	}
	for _, f := range strings.FieldsFunc(*upstreamList, func(r rune) bool { return r == ',' }) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("run: -upstream-pids: %q is not a process id", f)
		}
		c.upstreams = append(c.upstreams, pid)
	}
	var err error
	if c.target, err = url.Parse(*rawURL); err != nil || c.target.Host == "" {
		return fmt.Errorf("run: -url: want http://host:port, got %q", *rawURL)
	}
	rec, err := run(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.resultsPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(rec); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Numbers from a gateway that fails requests measure the failure path:
	// the record is kept for inspection, the run is not a result.
	if rec.Failed+rec.Non2xx > 0 {
		return fmt.Errorf("%s/%s: %d requests failed, %d got a non-2xx status", c.label, c.module, rec.Failed, rec.Non2xx)
	}
	return nil
}

// phase is one stretch of load: workers stop when the deadline passes or
// the request budget is spent.
type phase struct {
	deadline time.Time
	budget   int64 // 0: unbounded
	issued   atomic.Int64
	done     atomic.Int64
}

// take reports whether a worker may send one more request.
func (p *phase) take() bool {
	if time.Now().After(p.deadline) {
		return false
	}
	return p.budget == 0 || p.issued.Add(1) <= p.budget
}

// worker is one connection's request loop and its private statistics.
type worker struct {
	cfg      *config
	seq      *atomic.Int64
	conn     net.Conn
	br       *bufio.Reader
	buf      []byte
	hist     histogram
	failed   int64
	non2xx   int64
	servedBy map[string]int64
}

func run(c config) (*Record, error) {
	rec := &Record{Label: c.label, Module: c.module, Conns: c.conns}
	waitStart := time.Now()
	quiet, err := waitQuiet(c.quietWait)
	if err != nil {
		return nil, err
	}
	rec.QuietWait, rec.Quiet = time.Since(waitStart).Seconds(), quiet
	if !quiet {
		log.Printf("%s/%s: the machine stayed busy for %v; measuring anyway (see the other-load column)", c.label, c.module, c.quietWait)
	}
	if rec.RSSIdle, err = rssKiB(c.pid); err != nil {
		return nil, err
	}
	var seq atomic.Int64
	workers := make([]*worker, c.conns)
	for i := range workers {
		workers[i] = &worker{cfg: &c, seq: &seq}
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()

	if c.warmup > 0 {
		drive(workers, &phase{deadline: time.Now().Add(c.warmup)})
		for _, w := range workers {
			w.reset()
		}
	}
	if rec.RSSWarm, err = rssKiB(c.pid); err != nil {
		return nil, err
	}

	proxyStart, err := cpuTime(c.pid)
	if err != nil {
		return nil, err
	}
	upStart, err := cpuTimes(c.upstreams)
	if err != nil {
		return nil, err
	}
	busyStart, totalStart, err := machineCPU()
	if err != nil {
		return nil, err
	}
	genStart := selfCPUTime()
	start := time.Now()
	p := &phase{deadline: start.Add(c.duration), budget: c.requests}
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		rec.Checkpoints = watch(&c, p, start, stopWatch)
	}()
	drive(workers, p)
	elapsed := time.Since(start)
	close(stopWatch)
	<-watchDone
	proxyEnd, err := cpuTime(c.pid)
	if err != nil {
		return nil, err
	}
	upEnd, err := cpuTimes(c.upstreams)
	if err != nil {
		return nil, err
	}
	busyEnd, totalEnd, err := machineCPU()
	if err != nil {
		return nil, err
	}
	genCPU := selfCPUTime() - genStart
	if totalEnd > totalStart {
		rec.MachineBusy = float64(busyEnd-busyStart) / float64(totalEnd-totalStart)
		ours := float64(proxyEnd-proxyStart+upEnd-upStart+genCPU) / float64(time.Second/userHz)
		rec.OtherBusy = max(0, float64(busyEnd-busyStart)-ours) / float64(totalEnd-totalStart)
	}
	if rec.RSSEnd, err = rssKiB(c.pid); err != nil {
		return nil, err
	}
	if n := p.done.Load(); c.checkpoint > 0 && (len(rec.Checkpoints) == 0 || rec.Checkpoints[len(rec.Checkpoints)-1].Requests < n) {
		rec.Checkpoints = append(rec.Checkpoints, Checkpoint{Requests: n, Seconds: elapsed.Seconds(), RSS: rec.RSSEnd})
	}

	var all histogram
	for _, w := range workers {
		all.merge(&w.hist)
		rec.Failed += w.failed
		rec.Non2xx += w.non2xx
		for k, v := range w.servedBy {
			if rec.ServedBy == nil {
				rec.ServedBy = map[string]int64{}
			}
			rec.ServedBy[k] += v
		}
	}
	rec.Requests = all.count
	rec.Seconds = elapsed.Seconds()
	rec.RPS = float64(all.count) / elapsed.Seconds()
	rec.P50, rec.P90, rec.P99 = all.quantile(0.50), all.quantile(0.90), all.quantile(0.99)
	rec.Max = float64(all.max) / 1e3
	if all.count == 0 {
		return nil, fmt.Errorf("%s/%s: no request completed (%d failed)", c.label, c.module, rec.Failed)
	}
	perRequest := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(all.count) }
	rec.ProxyCPU, rec.UpstreamCPU, rec.GenCPU = perRequest(proxyEnd-proxyStart), perRequest(upEnd-upStart), perRequest(genCPU)
	log.Printf("%s/%s: %d requests in %.1fs: %.0f req/s, p50 %.0fµs, p99 %.0fµs, %d failed, %d non-2xx, RSS %d→%d KiB",
		c.label, c.module, rec.Requests, rec.Seconds, rec.RPS, rec.P50, rec.P99, rec.Failed, rec.Non2xx, rec.RSSWarm, rec.RSSEnd)
	return rec, nil
}

// watch samples the proxy's RSS each time another c.checkpoint requests
// completed, until stop is closed.
func watch(c *config, p *phase, start time.Time, stop <-chan struct{}) []Checkpoint {
	if c.checkpoint <= 0 {
		return nil
	}
	var cps []Checkpoint
	next := c.checkpoint
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return cps
		case <-tick.C:
		}
		if n := p.done.Load(); n >= next {
			rss, err := rssKiB(c.pid)
			if err != nil {
				log.Printf("checkpoint at %d requests: %v", n, err)
				return cps
			}
			cps = append(cps, Checkpoint{Requests: n, Seconds: time.Since(start).Seconds(), RSS: rss})
			log.Printf("%s/%s: %d requests, %.0fs: RSS %d KiB", c.label, c.module, n, time.Since(start).Seconds(), rss)
			for next <= n {
				next += c.checkpoint
			}
		}
	}
}

// drive runs every worker until the phase ends.
func drive(workers []*worker, p *phase) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.take() {
				w.do()
				p.done.Add(1)
			}
		}()
	}
	wg.Wait()
}

// do sends one request and reads its response, redialing after a failure.
func (w *worker) do() {
	start := time.Now()
	if err := w.roundTrip(); err != nil {
		w.failed++
		w.close()
		// A refused connection must not spin the loop at full speed.
		time.Sleep(10 * time.Millisecond)
		return
	}
	w.hist.record(time.Since(start))
}

func (w *worker) roundTrip() error {
	if w.conn == nil {
		conn, err := net.DialTimeout("tcp", w.cfg.target.Host, 5*time.Second)
		if err != nil {
			return err
		}
		w.conn, w.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	n := w.seq.Add(1)
	w.buf = append(w.buf[:0], "GET "...)
	w.buf = fmt.Appendf(w.buf, w.cfg.path, n)
	w.buf = append(w.buf, " HTTP/1.1\r\nHost: "...)
	w.buf = append(w.buf, w.cfg.target.Host...)
	if w.cfg.userIDs {
		// A multiplicative hash spreads sequence numbers over the whole
		// 64-bit space: every request carries a fresh, random-looking id.
		w.buf = fmt.Appendf(w.buf, "\r\nx-user-id: user-%016x", uint64(n)*0x9e3779b97f4a7c15)
	}
	w.buf = append(w.buf, "\r\n\r\n"...)
	if err := w.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := w.conn.Write(w.buf); err != nil {
		return err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		w.non2xx++
	}
	if s := resp.Header.Get("x-served-by"); s != "" {
		if w.servedBy == nil {
			w.servedBy = map[string]int64{}
		}
		w.servedBy[s]++
	}
	if resp.Close {
		w.close()
	}
	return nil
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.br = nil, nil
	}
}

// reset drops the statistics of the warm-up; the connection stays open.
func (w *worker) reset() {
	w.hist = histogram{}
	w.failed, w.non2xx, w.servedBy = 0, 0, nil
}

// histogram counts durations in log-linear buckets: exact below 256 ns,
// then 128 buckets per power of two (under 1% relative error).
type histogram struct {
	counts [64 * 128]int64
	count  int64
	max    int64
}

const subBits = 7

func bucketOf(ns int64) int {
	if ns < 1<<(subBits+1) {
		return int(max(ns, 0))
	}
	exp := bits.Len64(uint64(ns)) - subBits - 1
	return (exp+1)<<subBits + int(ns>>exp) - 1<<subBits
}

// bucketMid is the middle of bucket i's range, in nanoseconds.
func bucketMid(i int) float64 {
	if i < 1<<(subBits+1) {
		return float64(i)
	}
	exp := i>>subBits - 1
	low := int64(i&(1<<subBits-1)+1<<subBits) << exp
	return float64(low) + float64(int64(1)<<exp)/2
}

func (h *histogram) record(d time.Duration) {
	ns := int64(d)
	h.counts[bucketOf(ns)]++
	h.count++
	h.max = max(h.max, ns)
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile in microseconds.
func (h *histogram) quantile(q float64) float64 {
	rank := int64(math.Ceil(q * float64(h.count)))
	var seen int64
	for i, n := range h.counts {
		seen += n
		if n > 0 && seen >= rank {
			return bucketMid(i) / 1e3
		}
	}
	return 0
}

// rssKiB reads VmRSS of process pid.
func rssKiB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("proxy RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("proxy RSS: /proc/%d/status has no VmRSS", pid)
}

// userHz is the unit of /proc/PID/stat times; Linux fixes it at 100 for
// user space whatever the kernel's tick rate.
const userHz = 100

// cpuTime reads the user+system time of process pid, all threads.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proxy CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces: count fields after it.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("proxy CPU time: /proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proxy CPU time: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / userHz, nil
}

// cpuTimes is the summed cpuTime of pids.
func cpuTimes(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		t, err := cpuTime(pid)
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// machineCPU reads the busy and total time of all CPUs from /proc/stat, in
// its units (1/userHz s); idle and iowait count as not busy.
func machineCPU() (busy, total int64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine CPU time: unexpected /proc/stat line %q", line)
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("machine CPU time: /proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// waitQuiet waits up to limit for a second in which the machine's CPUs are
// less than a quarter busy, and reports whether one came.
func waitQuiet(limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		busy0, total0, err := machineCPU()
		if err != nil {
			return false, err
		}
		time.Sleep(time.Second)
		busy1, total1, err := machineCPU()
		if err != nil {
			return false, err
		}
		if total1 > total0 && 4*(busy1-busy0) < total1-total0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}

// selfCPUTime is this process's user+system time.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCommand(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	resultsPath := fs.String("results", "", "the records of run (required)")
	baseline := fs.String("baseline", "baseline", "label of the run others are compared with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *resultsPath == "" {
		return errors.New("report: -results is required")
	}
	data, err := os.ReadFile(*resultsPath)
	if err != nil {
		return err
	}
	var recs []Record
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s:%d: %v", *resultsPath, i+1, err)
		}
		recs = append(recs, r)
	}
	report(os.Stdout, recs, *baseline)
	return nil
}

// report prints one latency table per connection count for the runs
// without checkpoints, and the memory table of those with checkpoints
// (soaks). Differences are taken against the mean of the runs labelled
// baselineLabel at the same connection count: running it first and last
// shows, and evens out, the drift of a shared machine.
func report(w io.Writer, recs []Record, baselineLabel string) {
	var conns []int
	for _, r := range recs {
		if len(r.Checkpoints) == 0 && !slices.Contains(conns, r.Conns) {
			conns = append(conns, r.Conns)
		}
	}
	for i, n := range conns {
		if i > 0 {
			fmt.Fprintln(w)
		}
		latencyTable(w, recs, n, baselineLabel)
	}
	var soaks []Record
	cols := 0
	for _, r := range recs {
		if len(r.Checkpoints) > 0 {
			soaks = append(soaks, r)
			cols = max(cols, len(r.Checkpoints))
		}
	}
	if len(soaks) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| Module | req/s | other load | v2 share | failed / non-2xx | RSS before warm-up | after warm-up |")
	for i := range cols {
		fmt.Fprintf(w, " checkpoint %d |", i+1)
	}
	fmt.Fprintln(w, " first → last checkpoint |")
	fmt.Fprint(w, "|---|--:|--:|--:|--:|--:|--:|")
	fmt.Fprint(w, strings.Repeat("--:|", cols+1))
	fmt.Fprintln(w)
	for _, r := range soaks {
		fmt.Fprintf(w, "| %s | %.0f | %.0f %% | %s | %d / %d | %.1f MiB | %.1f MiB |", r.Module, r.RPS, 100*r.OtherBusy, share(r.ServedBy, "product-service-v2"), r.Failed, r.Non2xx, mib(r.RSSIdle), mib(r.RSSWarm))
		for i := range cols {
			if i < len(r.Checkpoints) {
				cp := r.Checkpoints[i]
				fmt.Fprintf(w, " %.1f MiB @ %dk (%.0f s) |", mib(cp.RSS), cp.Requests/1000, cp.Seconds)
			} else {
				fmt.Fprint(w, " |")
			}
		}
		first, last := r.Checkpoints[0].RSS, r.Checkpoints[len(r.Checkpoints)-1].RSS
		fmt.Fprintf(w, " %+.1f MiB |\n", mib(last-first))
	}
}

// latencyTable prints the runs at conns connections without checkpoints.
func latencyTable(w io.Writer, recs []Record, conns int, baselineLabel string) {
	var base struct{ p50, p99, cpu float64 }
	var bases float64
	for _, r := range recs {
		if r.Label == baselineLabel && r.Conns == conns && len(r.Checkpoints) == 0 {
			base.p50 += r.P50
			base.p99 += r.P99
			base.cpu += r.ProxyCPU
			bases++
		}
	}
	delta := func(v, sum float64, unit string) string {
		if bases == 0 {
			return "–"
		}
		return fmt.Sprintf("%+.1f %s", v-sum/bases, unit)
	}
	fmt.Fprintf(w, "%d connection(s):\n\n", conns)
	fmt.Fprintln(w, "| Scenario | Module | req/s | p50 | p90 | p99 | max | p50 vs baseline | p99 vs baseline | Envoy CPU/req | vs baseline | upstream CPU/req | generator CPU/req | machine busy | other load | v2 share | failed / non-2xx | Envoy RSS after |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range recs {
		if r.Conns != conns || len(r.Checkpoints) > 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f µs | %.0f µs | %.0f µs | %.1f ms | %s | %s | %.1f µs | %s | %.1f µs | %.1f µs | %.0f %% | %.0f %% | %s | %d / %d | %.1f MiB |\n",
			r.Label, r.Module, r.RPS, r.P50, r.P90, r.P99, r.Max/1e3,
			delta(r.P50, base.p50, "µs"), delta(r.P99, base.p99, "µs"),
			r.ProxyCPU, delta(r.ProxyCPU, base.cpu, "µs"), r.UpstreamCPU, r.GenCPU, 100*r.MachineBusy, 100*r.OtherBusy,
			share(r.ServedBy, "product-service-v2"), r.Failed, r.Non2xx, mib(r.RSSEnd))
	}
}

// share formats the fraction of responses served by dest.
func share(servedBy map[string]int64, dest string) string {
	var total int64
	for _, n := range servedBy {
		total += n
	}
	if total == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(servedBy[dest])/float64(total))
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
