package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/vsimport"
)

// stderr receives import's warnings and refusals; tests replace it.
var stderr io.Writer = os.Stderr

func importCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("import", "import [-o yaml|json] [-namespace NS] [-path-prefix] [-route-table FILE] VIRTUALSERVICES...",
		`Converts Istio VirtualServices (networking.istio.io v1alpha3, v1beta1, v1; YAML
streams or Lists; several files in order) into one policy, printed on standard
output, and the route table render writes around it (-route-table). Every field
is carried or refused with its path and reason, on standard error with the
warnings where wasmgate's meaning differs from Istio's; the policy is checked
by the plugin's parser. Exit status: 0 imported, 1 refused.
The fields and their fate: docs/import-fields.md.`)
	format := fs.String("o", "yaml", "output format: yaml or json")
	var o vsimport.Options
	fs.StringVar(&o.Namespace, "namespace", "", "the `namespace` of VirtualServices whose metadata names none (default \"default\", with a warning)")
	fs.BoolVar(&o.PathPrefix, "path-prefix", false, "carry a uri prefix not ending in / as a pathPrefix (whole path segments: /products no longer matches /productsX, as it does in Istio)")
	tableFile := fs.String("route-table", "", "write the rendered VirtualService's gateway and hosts to this `file` (for render -route-table)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "yaml" && *format != "json" {
		return fmt.Errorf("import: -o %q: want yaml or json", *format)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import: want one or more VirtualService files")
	}
	var srcs []vsimport.Source
	for _, file := range fs.Args() {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		srcs = append(srcs, vsimport.Source{Name: file, Data: data})
	}
	res, err := vsimport.Import(srcs, o)
	var refused vsimport.Errors
	if errors.As(err, &refused) {
		for _, f := range refused {
			fmt.Fprintln(stderr, f)
		}
		return exitCode(exitFailed)
	}
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if *tableFile != "" {
		if err := os.WriteFile(*tableFile, res.RouteTable.YAML(res.Sources), 0o644); err != nil {
			return err
		}
	}
	out := res.JSON()
	if *format == "yaml" {
		if out, err = res.YAML(); err != nil {
			return err
		}
	}
	_, err = stdout.Write(out)
	return err
}
