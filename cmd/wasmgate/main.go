// Command wasmgate is the tool of wasmgate's users. For policy authors it
// lints a policy (JSON or YAML), prints its JSON Schema, and replays recorded
// requests through the real plugin module to show what a policy does and
// what changes between two; for delivery it packages the plugin as an OCI
// image Istio accepts, pushes and checks it, and renders and validates the
// Istio objects that load it and route on its decisions (WasmPlugin,
// VirtualService, optionally Gateway).
//
//	wasmgate lint         [-strict] POLICY
//	wasmgate schema
//	wasmgate import       [-o yaml|json] [-namespace NS] [-path-prefix] [-route-table FILE] VIRTUALSERVICES...
//	wasmgate simulate     -policy POLICY [-wasm MODULE] [-envoy-config FILE | -istio MODE] [-verify] [-json] REQUESTS
//	wasmgate diff         -old POLICY -new POLICY [-wasm MODULE] [-json] REQUESTS
//	wasmgate envoy-config [-template FILE] [-policy POLICY] [-wasm MODULE] [-upstream CLUSTER=HOST:PORT]... [flags]
//	wasmgate envoy-config -policy POLICY -clusters
//	wasmgate envoy-config -check FILE [-policy POLICY]
//	wasmgate status       -admin HOST:PORT -policy POLICY
//	wasmgate image push   -wasm out/wasmgate-tinygo.wasm -ref HOST/REPO:TAG [-variant compat|oci]
//	wasmgate image digest -wasm out/wasmgate-tinygo.wasm [-variant compat|oci]
//	wasmgate image check  -ref HOST/REPO:TAG|HOST/REPO@sha256:… [-wasm FILE]
//	wasmgate render       -policy POLICY (-image oci://HOST/REPO@sha256:… | -ref HOST/REPO:TAG (-digest sha256:… | -wasm FILE))
//	                      [-gateway [NS/]NAME | -route-table FILE] [-new-gateway [-https-credential SECRET]] [-hosts H,…]
//	                      [-fallback HOST[:PORT]] [-o yaml|json]
//	wasmgate validate     -f istio.yaml [-digest sha256:…] [-wasm FILE]
//
// Exit status: 0 on success, 1 on an error (lint: an invalid policy; import:
// a refused field), 2 when diff finds a changed verdict, lint -strict a
// warning, envoy-config -check a route a client steers, simulate -verify a
// disagreement with Envoy, or status something that needs a look.
//
// push and digest print the manifest digest (sha256:…), whose hex part
// WasmPlugin.spec.sha256 pins. Images are reproducible, so digest gives it
// without a registry.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/oci"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/policyfile"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/vsimport"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/wasmplugin"
	"github.com/wasmgate/wasmgate/policy"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout)
	var exit exitCode
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "wasmgate:", err)
		os.Exit(1)
	}
}

// exitCode ends the command with that status and no message: the command
// printed what it found already.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

type command func(context.Context, []string, io.Writer) error

const (
	usage      = "usage: wasmgate lint|schema|import|simulate|diff|envoy-config|status|image|render|validate [flags] (-h for each)"
	imageUsage = "usage: wasmgate image push|digest|check [flags] (-h for each)"
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	return dispatch(ctx, args, stdout, usage, map[string]command{
		"image": image, "render": render, "validate": validate,
		"schema": schema, "lint": lintCmd, "simulate": simulateCmd, "diff": diffCmd,
		"envoy-config": envoyConfigCmd, "import": importCmd, "status": statusCmd,
	})
}

// schema prints the policy's JSON Schema.
func schema(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("schema", "schema > policy.schema.json",
		"Prints the policy's JSON Schema (draft-07) for editors (yaml-language-server, VS Code).")
	if err := parse(fs, args); err != nil {
		return err
	}
	out, err := json.MarshalIndent(policy.JSONSchema(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func image(ctx context.Context, args []string, stdout io.Writer) error {
	return dispatch(ctx, args, stdout, imageUsage, map[string]command{
		"push": push, "digest": digest, "check": check,
	})
}

// dispatch runs the subcommand that args name.
func dispatch(ctx context.Context, args []string, stdout io.Writer, usage string, cmds map[string]command) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		_, err := fmt.Fprintln(stdout, usage)
		return err
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
	return cmd(ctx, args[1:], stdout)
}

// imageFlags are the flags that package a module.
type imageFlags struct {
	wasm, variant string
}

func (f *imageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.wasm, "wasm", "", "the plugin `module` (.wasm)")
	fs.StringVar(&f.variant, "variant", string(oci.Compat), "image layout: compat or oci")
}

// image reads the module and packages it.
func (f *imageFlags) image() (v1.Image, error) {
	v, err := oci.ParseVariant(f.variant)
	if err != nil {
		return nil, err
	}
	wasm, err := os.ReadFile(f.wasm)
	if err != nil {
		return nil, err
	}
	img, err := oci.Image(wasm, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.wasm, err)
	}
	return img, nil
}

func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return requireFlags(fs, required...)
}

// requireFlags fails naming the first of the flags that is not set.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	for _, name := range names {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("%s: -%s is required", fs.Name(), name)
		}
	}
	return nil
}

func push(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("push", "image push -wasm MODULE -ref HOST/REPO:TAG [-variant compat|oci] [-insecure]",
		"Pushes the module as an image Istio accepts and prints its manifest digest\n(sha256:…), the one WasmPlugin.spec.sha256 pins.")
	var f imageFlags
	f.register(fs)
	ref := fs.String("ref", "", "image `reference` to push to: HOST[:PORT]/REPOSITORY:TAG")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to a registry that is not on loopback or a private network")
	if err := parse(fs, args, "wasm", "ref"); err != nil {
		return err
	}
	img, err := f.image()
	if err != nil {
		return err
	}
	d, err := oci.Client{Insecure: *insecure}.Push(ctx, *ref, img)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, d)
	return err
}

func digest(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("digest", "image digest -wasm MODULE [-variant compat|oci]",
		"Prints the manifest digest the module's image has, without a registry\n(images are reproducible).")
	var f imageFlags
	f.register(fs)
	if err := parse(fs, args, "wasm"); err != nil {
		return err
	}
	img, err := f.image()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, d)
	return err
}

func check(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("check", "image check -ref HOST/REPO:TAG|HOST/REPO@sha256:… [-wasm FILE] [-insecure]",
		"Pulls an image and checks that Istio accepts its layout (and that it holds\nthe -wasm module).")
	ref := fs.String("ref", "", "image `reference` to pull, by tag or digest")
	wasmFile := fs.String("wasm", "", "`module` the image must hold (optional)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to a registry that is not on loopback or a private network")
	if err := parse(fs, args, "ref"); err != nil {
		return err
	}
	img, err := oci.Client{Insecure: *insecure}.Pull(ctx, *ref)
	if err != nil {
		return err
	}
	v, wasm, err := oci.Check(img)
	if err != nil {
		return fmt.Errorf("%s: %w", *ref, err)
	}
	if *wasmFile != "" {
		want, err := os.ReadFile(*wasmFile)
		if err != nil {
			return err
		}
		if !bytes.Equal(want, wasm) {
			return fmt.Errorf("%s: the module differs from %s (%d bytes, want %d)", *ref, *wasmFile, len(wasm), len(want))
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: %s variant, manifest %s, module %d bytes\n", *ref, v, d, len(wasm))
	return err
}

// labels is a flag of comma-separated key=value pairs.
type labels map[string]string

func (l labels) String() string { return "" }

func (l labels) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q: want key=value", kv)
		}
		l[k] = v
	}
	return nil
}

func render(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("render", "render -policy POLICY (-image oci://HOST/REPO@sha256:… | -ref HOST/REPO:TAG (-digest sha256:… | -wasm FILE)) [flags]",
		"Renders the Istio objects that load the plugin with the policy: the WasmPlugin,\nthe VirtualService that routes on its hint header, with -new-gateway a Gateway;\neach checked against its CRD's schema and rules.")
	var (
		o        wasmplugin.Options
		f        imageFlags
		selector = labels{}
		targets  targetRefs
		hosts    list
	)
	f.register(fs)
	policyFile := fs.String("policy", "", "policy `file` (JSON or YAML), validated by the plugin's parser")
	fs.StringVar(&o.Image, "image", "", "image `reference`, oci:// optional, by digest or with -digest or -wasm")
	fs.StringVar(&o.Image, "ref", "", "same as -image")
	fs.StringVar(&o.Digest, "digest", "", "manifest `digest` sha256:… (from push)")
	fs.StringVar(&o.Name, "name", "", "metadata.name (default wasmgate)")
	fs.StringVar(&o.Namespace, "namespace", "", "metadata.namespace (default istio-system)")
	fs.Var(selector, "selector", "workload selector `labels` k=v,… (default istio=ingressgateway)")
	fs.StringVar(&o.Phase, "phase", "", "AUTHN, AUTHZ, STATS or UNSPECIFIED_PHASE (default STATS)")
	priority := fs.Int("priority", 0, "priority within the phase")
	fs.StringVar(&o.FailStrategy, "fail-strategy", "", "FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD (default FAIL_CLOSE)")
	fs.StringVar(&o.ImagePullPolicy, "pull-policy", "", "IfNotPresent or Always (default IfNotPresent)")
	fs.StringVar(&o.ImagePullSecret, "pull-secret", "", "imagePullSecret: the `secret` with the registry's credentials")
	fs.Var(&targets, "target-ref", "attach to a Gateway API `[GROUP/]KIND/NAME` instead of -selector (repeatable; GROUP defaults to gateway.networking.k8s.io)")
	fs.StringVar(&o.Gateway, "gateway", "", "the Istio Gateway the VirtualService binds to, `[NS/]NAME` (default -name in -namespace)")
	fs.BoolVar(&o.NewGateway, "new-gateway", false, "render that Gateway too (plain HTTP on -gateway-port, on the -selector workloads)")
	gatewayPort := fs.Uint("gateway-port", 80, "the rendered Gateway's `port`")
	fs.StringVar(&o.HTTPSCredential, "https-credential", "", "with -new-gateway: also serve HTTPS on port 443 with the TLS `secret` of this name (credentialName), and redirect plain HTTP to it")
	fs.Var(&hosts, "hosts", "the VirtualService's and Gateway's `hosts`, comma-separated (default *)")
	tableFile := fs.String("route-table", "", "take -gateway and -hosts from this `file`, written by import -route-table")
	fs.StringVar(&o.Fallback, "fallback", "", "where requests no policy route takes go, `HOST[:PORT]` (default: a 404 reply)")
	format := fs.String("o", "yaml", "output format: yaml or json")
	if err := parse(fs, args, "policy"); err != nil {
		return err
	}
	if *format != "yaml" && *format != "json" {
		return fmt.Errorf("render: -o %q: want yaml or json", *format)
	}
	if *gatewayPort == 0 || *gatewayPort > 65535 {
		return fmt.Errorf("render: -gateway-port %d: want 1 to 65535", *gatewayPort)
	}
	o.Selector = selector
	o.Priority = int32(*priority)
	o.TargetRefs = targets
	o.Hosts = hosts
	if *tableFile != "" {
		if o.Gateway != "" || len(hosts) > 0 {
			return errors.New("render: -route-table sets -gateway and -hosts: give one or the other")
		}
		t, err := vsimport.ReadRouteTable(*tableFile)
		if err != nil {
			return err
		}
		o.Gateway, o.Hosts = t.Gateway, t.Hosts
	}
	o.GatewayPort = uint32(*gatewayPort)
	if f.wasm != "" {
		if o.Digest != "" {
			return errors.New("render: -digest and -wasm: give one")
		}
		img, err := f.image()
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		o.Digest = d.String()
	}
	pol, err := policyfile.Read(*policyFile)
	if err != nil {
		return err
	}
	objs, err := wasmplugin.Render(pol, o)
	if err != nil {
		return fmt.Errorf("%s: %w", *policyFile, err)
	}
	out, err := objs.YAML()
	if *format == "json" {
		out, err = objs.JSON()
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func validate(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("validate", "validate -f istio.yaml [-digest sha256:…] [-wasm FILE]",
		"Checks WasmPlugin, VirtualService and Gateway objects against their CRDs'\nschemas and rules, and with -digest or -wasm the WasmPlugin's sha256.")
	file := fs.String("f", "", "`manifest` of WasmPlugin, VirtualService and Gateway objects (YAML, or one JSON object)")
	manifestDigest := fs.String("digest", "", "manifest `digest` the image has (optional)")
	wasmFile := fs.String("wasm", "", "`module` the WasmPlugin loads (optional)")
	if err := parse(fs, args, "f"); err != nil {
		return err
	}
	manifest, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	plugins, err := wasmplugin.ValidateObjects(manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	var wasm []byte
	if *wasmFile != "" {
		if wasm, err = os.ReadFile(*wasmFile); err != nil {
			return err
		}
	}
	for _, wp := range plugins {
		if err := wasmplugin.CheckDigest(wp, *manifestDigest, wasm); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	_, err = fmt.Fprintf(stdout, "%s: valid\n", *file)
	return err
}

// list is a flag of comma-separated values.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(s string) error {
	*l = append(*l, strings.Split(s, ",")...)
	return nil
}

// targetRefs is a repeatable flag of [GROUP/]KIND/NAME.
type targetRefs []wasmplugin.TargetRef

func (t *targetRefs) String() string { return "" }

func (t *targetRefs) Set(s string) error {
	parts := strings.Split(s, "/")
	ref := wasmplugin.TargetRef{Group: "gateway.networking.k8s.io"}
	switch len(parts) {
	case 2:
		ref.Kind, ref.Name = parts[0], parts[1]
	case 3:
		ref.Group, ref.Kind, ref.Name = parts[0], parts[1], parts[2]
	default:
		return fmt.Errorf("%q: want [GROUP/]KIND/NAME", s)
	}
	*t = append(*t, ref)
	return nil
}
