package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyconfig"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyproc"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/lint"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/policyfile"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/ratelimitsvc"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/simulate"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/status"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/verify"
)

// defaultWasm is the module simulate and diff run unless -wasm names one:
// the TinyGo build, the one shipped in images.
const defaultWasm = "out/wasmgate-tinygo.wasm"

// Exit statuses of lint and diff, for CI gates.
const (
	exitFailed  = 1 // lint: the policy is invalid; any command: it could not run
	exitChanged = 2 // diff: verdicts differ; lint -strict: warnings
)

func newFlagSet(name, usage, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: wasmgate %s\n\n%s\n", usage, about)
		if hasFlags(fs) {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// positional parses flags and returns the one positional argument.
func positional(fs *flag.FlagSet, args []string, what string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", fmt.Errorf("%s: want one %s, got %d arguments", fs.Name(), what, fs.NArg())
	}
	return fs.Arg(0), nil
}

func lintCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("lint", "lint [-strict] POLICY",
		`Checks a policy (JSON or YAML). Prints each error or warning on its own line
as "path: reason" or "path: warning: reason".
Exit status: 0 valid, 1 invalid, 2 valid with warnings under -strict.`)
	strict := fs.Bool("strict", false, "exit 2 when there are warnings")
	file, err := positional(fs, args, "policy file")
	if err != nil {
		return err
	}
	pol, err := policyfile.Read(file)
	if err != nil {
		return err
	}
	findings := lint.Lint(pol)
	failed, warned := false, false
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
		failed = failed || !f.Warning
		warned = warned || f.Warning
	}
	switch {
	case failed:
		return exitCode(exitFailed)
	case warned && *strict:
		return exitCode(exitChanged)
	}
	if len(findings) == 0 {
		fmt.Fprintf(stdout, "%s: valid\n", file)
	}
	return nil
}

// simFlags are the flags simulate and diff share.
type simFlags struct {
	wasm        string
	seed        uint64
	json        bool
	envoyConfig string
	istio       string
	istioHops   int
	rlsConfig   string
}

func (f *simFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.wasm, "wasm", defaultWasm, "the plugin `module` to run (either build; make build makes both)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the module's random source (weighted splits) and of generated x-request-id values")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
	fs.StringVar(&f.envoyConfig, "envoy-config", "", "the Envoy `file` whose first listener's connection manager requests pass before the plugin (default: the shipped envoy.yaml's settings)")
	fs.StringVar(&f.istio, "istio", "", "instead of -envoy-config, an Istio ingress gateway with meshConfig.pathNormalization `MODE`: NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES")
	fs.IntVar(&f.istioHops, "istio-trusted-proxies", 0, "with -istio: meshConfig.defaultConfig.gatewayTopology.numTrustedProxies")
	fs.StringVar(&f.rlsConfig, "ratelimit-config", "", "the envoyproxy/ratelimit configuration `file` (YAML) whose service the policy's globalRateLimit asks; simulate emulates it")
}

// proxy is the Envoy request processing the flags name.
func (f *simFlags) proxy() (envoyproc.Config, error) {
	switch {
	case f.istio != "" && f.envoyConfig != "":
		return envoyproc.Config{}, errors.New("-istio and -envoy-config: give one")
	case f.istio != "":
		return envoyproc.FromIstio(f.istio, f.istioHops)
	case f.envoyConfig != "":
		data, err := os.ReadFile(f.envoyConfig)
		if err != nil {
			return envoyproc.Config{}, err
		}
		c, err := envoyproc.FromEnvoyConfig(data)
		if err != nil {
			return envoyproc.Config{}, fmt.Errorf("%s: %w", f.envoyConfig, err)
		}
		return c, nil
	}
	return envoyproc.Shipped, nil
}

// run replays the requests through the module with one policy.
func (f *simFlags) run(policyFile string, reqs []simulate.Request) ([]simulate.Result, error) {
	wasm, err := os.ReadFile(f.wasm)
	if errors.Is(err, os.ErrNotExist) && f.wasm == defaultWasm {
		return nil, fmt.Errorf("%s not found: build it with `make build`, or name a module with -wasm", f.wasm)
	}
	if err != nil {
		return nil, err
	}
	pol, err := policyfile.Read(policyFile)
	if err != nil {
		return nil, err
	}
	o := simulate.Options{Seed: f.seed}
	if o.Proxy, err = f.proxy(); err != nil {
		return nil, err
	}
	if f.rlsConfig != "" {
		data, err := os.ReadFile(f.rlsConfig)
		if err != nil {
			return nil, err
		}
		if o.RateLimit, err = ratelimitsvc.Parse(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.rlsConfig, err)
		}
	}
	res, err := simulate.RunAll(wasm, pol, o, reqs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", policyFile, err)
	}
	return res, nil
}

// requestsArg parses the flags, checks that the required ones are set, and
// reads the requests file the one argument names.
func requestsArg(fs *flag.FlagSet, args []string, required ...string) ([]simulate.Request, error) {
	file, err := positional(fs, args, "requests file")
	if err != nil {
		return nil, err
	}
	if err := requireFlags(fs, required...); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return simulate.ReadRequests(filepath.Base(file), data)
}

const requestsHelp = `REQUESTS is a file of JSON lines, one request each:
  {"method": "GET", "path": "/a?b=1", "authority": "shop.example",
   "headers": {"x-user-id": "7", "x-tag": ["a", "b"]}, "client": "10.0.0.1:5555", "at": "1.5s"}
(only "path" is required; "at" is the time since the first request and drives
the module's clock, so rate limits replay exactly; "headers" may also be a list
of [name, value] pairs; a repeated key is an error), or a HAR file as browsers
and proxies export it. Each request first goes through what Envoy does before
the plugin (codec refusals, path normalization, header sanitizing), as the
Envoy configuration says.`

func simulateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("simulate", "simulate -policy POLICY [-wasm MODULE] [-envoy-config FILE | -istio MODE] [-verify] [-json] REQUESTS",
		"Replays requests through the real plugin module (on wazero) with a policy and\nprints what it did to each, then a summary per route.\n\n"+requestsHelp)
	var f simFlags
	f.register(fs)
	policyFile := fs.String("policy", "", "the policy `file` (JSON or YAML)")
	verifyToo := fs.Bool("verify", false, "also send the requests through a real Envoy started from the same configuration (-envoy-config, else envoy.yaml here) with echo upstreams, in real time, and report every verdict that differs (exit status 2)")
	reqs, err := requestsArg(fs, args, "policy")
	if err != nil {
		return err
	}
	if *verifyToo {
		return f.verify(ctx, *policyFile, reqs, stdout)
	}
	res, err := f.run(*policyFile, reqs)
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(stdout, struct {
			Requests []simulate.Result       `json:"requests"`
			Routes   []simulate.RouteSummary `json:"routes"`
		}{res, simulate.Summarize(res)})
	}
	return simulate.WriteText(stdout, res)
}

// verify simulates the requests as Envoy on this machine sees them (from a
// loopback address) and replays them through a real Envoy.
func (f *simFlags) verify(ctx context.Context, policyFile string, reqs []simulate.Request, stdout io.Writer) error {
	if f.istio != "" {
		return errors.New("simulate -verify: starts a plain Envoy, not an Istio gateway: give -envoy-config instead of -istio")
	}
	binary, err := verify.FindEnvoy()
	if err != nil {
		return fmt.Errorf("simulate -verify: %w", err)
	}
	template := f.envoyConfig
	if template == "" {
		template = "envoy.yaml"
	}
	tmpl, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("simulate -verify: the Envoy configuration to start: %w", err)
	}
	if f.envoyConfig == "" {
		f.envoyConfig = template // simulate what will run
	}
	moved := 0
	for i := range reqs {
		if reqs[i].Client != simulate.DefaultClient {
			reqs[i].Client = simulate.DefaultClient
			moved++
		}
	}
	if moved > 0 && !f.json {
		fmt.Fprintf(stdout, "verify: %d requests name a client address; all are sent from %s, and simulated so\n", moved, simulate.DefaultClient)
	}
	res, err := f.run(policyFile, reqs)
	if err != nil {
		return err
	}
	pol, err := policyfile.Read(policyFile)
	if err != nil {
		return err
	}
	rep, err := verify.Run(ctx, verify.Options{Envoy: binary, Template: tmpl, Policy: pol, Wasm: f.wasm}, reqs, res)
	if err != nil {
		return fmt.Errorf("simulate -verify: %w", err)
	}
	if f.json {
		err = writeJSON(stdout, rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if len(rep.Disagreements) > 0 {
		return exitCode(exitChanged)
	}
	return nil
}

func statusCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("status", "status -admin HOST:PORT -policy POLICY",
		`Reads a running gateway's Envoy admin interface and says whether the policy
is live and doing anything: configurations the plugin refused, routes never
matched, limits that never fired, 503s for want of a hinted cluster, the
observed split beside the configured weights. Exit status 2 when something
needs a look.`)
	admin := fs.String("admin", "", "the admin interface, `HOST:PORT`")
	policyFile := fs.String("policy", "", "the policy `file` the gateway should run (JSON or YAML)")
	if err := parse(fs, args, "admin", "policy"); err != nil {
		return err
	}
	pol, err := policyfile.Read(*policyFile)
	if err != nil {
		return err
	}
	stats, err := status.Fetch(*admin)
	if err != nil {
		return err
	}
	findings, err := status.Check(stats, pol)
	if err != nil {
		return fmt.Errorf("%s: %w", *policyFile, err)
	}
	problems := 0
	for _, f := range findings {
		mark := "  "
		if f.Problem {
			mark, problems = "! ", problems+1
		}
		fmt.Fprintln(stdout, mark+f.Text)
	}
	if problems > 0 {
		return exitCode(exitChanged)
	}
	return nil
}

func diffCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("diff", "diff -old POLICY -new POLICY [-wasm MODULE] [-json] REQUESTS",
		"Replays the same requests with two policies through the real plugin module and\ncounts what changes: route, destination, rate limiting, rewrites, header edits.\nExit status: 0 no change, 1 error, 2 some verdict changed (for CI gates).\n\n"+requestsHelp)
	var f simFlags
	f.register(fs)
	oldFile := fs.String("old", "", "the current policy `file` (JSON or YAML)")
	newFile := fs.String("new", "", "the proposed policy `file` (JSON or YAML)")
	reqs, err := requestsArg(fs, args, "old", "new")
	if err != nil {
		return err
	}
	oldRes, err := f.run(*oldFile, reqs)
	if err != nil {
		return err
	}
	newRes, err := f.run(*newFile, reqs)
	if err != nil {
		return err
	}
	d := simulate.Compare(oldRes, newRes)
	if f.json {
		err = writeJSON(stdout, d)
	} else {
		err = d.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if d.Changed > 0 {
		return exitCode(exitChanged)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func envoyConfigCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("envoy-config", "envoy-config [-template FILE] [-policy POLICY] [-wasm MODULE] [-upstream CLUSTER=HOST:PORT]... [flags]\n"+
		"       wasmgate envoy-config -policy POLICY -clusters\n"+
		"       wasmgate envoy-config -check FILE [-policy POLICY]",
		`Prints an Envoy configuration derived from a shipped one (envoy.yaml by
default): the policy as the plugin configuration (default: the template's),
the module, ports and upstreams changed, and a route table that reaches only
the destinations the policy names: one route per destination hint, an exact
match of the hint header, to the cluster of that name; then the default route
to default-backend. Clusters the template's policy named and the policy no
longer needs go; a cluster the policy needs that the template lacks needs
-upstream. make run, the benchmark and the end-to-end tests use it.

-clusters lists the clusters the policy's destinations need ("HINT HOST" per
line), the default backend last.

-check reads an Envoy configuration (YAML or JSON) and warns, naming the
route and the header, about every route a client steers with a header the
policy does not control: any cluster_header, and any header match on a header
the plugin neither writes nor removes from every request (its hint headers).
Exit status 2 when it warns.`)
	template := fs.String("template", "envoy.yaml", "the Envoy configuration to derive from")
	policyFile := fs.String("policy", "", "the policy `file` (JSON or YAML)")
	clustersOnly := fs.Bool("clusters", false, "list the clusters the policy needs and stop")
	checkFile := fs.String("check", "", "check this Envoy configuration `file` instead")
	var o envoyconfig.Options
	o.Register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var pol []byte
	if *policyFile != "" {
		var err error
		if pol, err = policyfile.Read(*policyFile); err != nil {
			return err
		}
	}
	switch {
	case *checkFile != "":
		return envoyCheck(stdout, *checkFile, pol)
	case *clustersOnly:
		if pol == nil {
			return errors.New("envoy-config: -clusters needs -policy")
		}
		clusters, _, err := envoyconfig.Needs(pol)
		if err != nil {
			return fmt.Errorf("%s: %w", *policyFile, err)
		}
		for _, c := range clusters {
			fmt.Fprintln(stdout, c.Name, c.Host)
		}
		_, err = fmt.Fprintln(stdout, envoyconfig.DefaultCluster, envoyconfig.DefaultCluster)
		return err
	}
	o.Policy = pol
	tmpl, err := os.ReadFile(*template)
	if err != nil {
		return err
	}
	out, err := envoyconfig.Derive(tmpl, o)
	if err != nil {
		return fmt.Errorf("%s: %w", *template, err)
	}
	_, err = stdout.Write(out)
	return err
}

// envoyCheck prints the routes of an Envoy configuration a client steers.
func envoyCheck(stdout io.Writer, file string, pol []byte) error {
	config, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	findings, err := envoyconfig.Check(config, pol)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, f := range findings {
		fmt.Fprintf(stdout, "%s: %s\n", file, f)
	}
	if len(findings) > 0 {
		return exitCode(exitChanged)
	}
	_, err = fmt.Fprintf(stdout, "%s: every route is on headers the policy controls\n", file)
	return err
}
