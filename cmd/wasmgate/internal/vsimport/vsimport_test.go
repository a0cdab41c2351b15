package vsimport

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/lint"
	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/policyfile"
	"github.com/wasmgate/wasmgate/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestFields checks the table against istio.io/api's descriptors: every
// field has a fate, no fate names a field the API lacks, every refusal says
// why and every rendered field has its mapping.
func TestFields(t *testing.T) {
	api := apiFields()
	if len(api) < 100 {
		t.Fatalf("found only %d fields in the VirtualService API", len(api))
	}
	for _, k := range api {
		if _, ok := fields[k]; !ok {
			t.Errorf("%s: a field of the VirtualService API has no entry in fields", k)
		}
	}
	for k, r := range fields {
		switch {
		case !slices.Contains(api, k):
			t.Errorf("%s: in fields, but not a field of the VirtualService API", k)
		case r.disp == refused && r.why == "":
			t.Errorf("%s: refused without a reason", k)
		case r.disp == rendered && r.mapTo == nil:
			t.Errorf("%s: rendered without a mapping", k)
		}
	}
}

// TestFields_Doc keeps docs/import-fields.md the table's rendering.
func TestFields_Doc(t *testing.T) {
	golden(t, filepath.Join("..", "..", "..", "..", "docs", "import-fields.md"), FieldsMarkdown())
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it); got:\n%s", file, t.Name(), got)
	}
}

func importFiles(t *testing.T, o Options, names ...string) (*Result, error) {
	t.Helper()
	var srcs []Source
	for _, name := range names {
		file := filepath.Join("testdata", name)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Name: file, Data: data})
	}
	return Import(srcs, o)
}

// TestImport imports the seed articles' VirtualServices and one with every
// carried field: the policy (golden), its route table and warnings, and what
// lint says of the policy, also as the YAML import writes. With -path-prefix
// the seeds lint clean.
func TestImport(t *testing.T) {
	const (
		seedWhere    = "testdata/seed-rewrite.yaml: VirtualService product-virtualservice: "
		noNS         = "spec.gateways[0]: warning: read as default/%s: the VirtualService names no namespace (import -namespace sets it)"
		skipped      = "testdata/seed-rewrite.yaml: Gateway product-gateway: warning: skipped: import reads VirtualServices only"
		slashes      = seedWhere + `spec.http[0].rewrite.uri: warning: after match[0]'s prefix "/products" Istio sends /products/123 as //123, wasmgate as /123`
		asPath       = `spec.http[0].match[0].uri.prefix: warning: carried as pathPrefix "/products" (import -path-prefix): /products/1 still matches, /productsX no longer does`
		lintProducts = `routes[0].match[0].uri.prefix: warning: "/products" also matches "/productsX"; use "pathPrefix" for whole path segments, or end the prefix with "/"`
	)
	split := "testdata/seed-split.yaml: VirtualService product-virtualservice: "
	httpbin := "testdata/seed-httpbin.yaml: VirtualService httpbin: "
	product := RouteTable{Gateway: "default/product-gateway", Hosts: []string{"*"}}
	tests := []struct {
		name, file string
		opts       Options
		table      RouteTable
		warnings   []string
		lint       []string
	}{
		{"seed-rewrite", "seed-rewrite.yaml", Options{}, product,
			[]string{skipped, slashes, seedWhere + fmt.Sprintf(noNS, "product-gateway")}, []string{lintProducts}},
		{"seed-rewrite-path-prefix", "seed-rewrite.yaml", Options{PathPrefix: true}, product,
			[]string{skipped, seedWhere + asPath, slashes, seedWhere + fmt.Sprintf(noNS, "product-gateway")}, nil},
		{"seed-split", "seed-split.yaml", Options{}, product,
			[]string{split + fmt.Sprintf(noNS, "product-gateway")}, []string{lintProducts}},
		{"seed-split-path-prefix", "seed-split.yaml", Options{PathPrefix: true}, product,
			[]string{split + asPath, split + fmt.Sprintf(noNS, "product-gateway")}, nil},
		{"seed-httpbin-path-prefix", "seed-httpbin.yaml", Options{PathPrefix: true}, RouteTable{Gateway: "default/httpbin-gateway", Hosts: []string{"*"}},
			[]string{
				httpbin + strings.ReplaceAll(asPath, "/products", "/status"),
				httpbin + `spec.http[0].route[0].destination.host: warning: short name "httpbin" carried as "httpbin.default.svc.cluster.local", as Istio reads it in the VirtualService's namespace`,
				httpbin + fmt.Sprintf(noNS, "httpbin-gateway"),
			}, nil},
		{"carried", "carried.yaml", Options{}, RouteTable{Gateway: "edge/public", Hosts: []string{"shop.example.com"}}, []string{
			`testdata/carried.yaml: VirtualService shop: spec.http[0].match[0].authority: warning: matched without the request's port and ignoring case`,
			`testdata/carried.yaml: VirtualService shop: spec.http[0].match[0].ignoreUriCase: warning: Istio ignores it for a regex uri; left out, so the regex stays case-sensitive as in Istio`,
			`testdata/carried.yaml: VirtualService shop: spec.http[1].mirror.host: warning: short name "shadow" carried as "shadow.edge.svc.cluster.local", as Istio reads it in the VirtualService's namespace`,
		}, []string{`routes[0].route[1]: warning: weight 0 and no "split.overrideHeader": no request reaches "reviews.prod.svc.cluster.local"`}},
		{"request-features", "request-features.yaml", Options{}, RouteTable{Gateway: "edge/public", Hosts: []string{"*"}}, []string{
			`testdata/request-features.yaml: VirtualService store: spec.http[4].route[1].headers: warning: applied after the route's headers, so a header both set ends with the destination's value (Istio's weighted clusters end with the route's)`,
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := importFiles(t, tc.opts, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var warnings []string
			for _, w := range res.Warnings {
				warnings = append(warnings, w.String())
			}
			if !slices.Equal(warnings, tc.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(tc.warnings, "\n"))
			}
			if res.RouteTable.Gateway != tc.table.Gateway || !slices.Equal(res.RouteTable.Hosts, tc.table.Hosts) {
				t.Errorf("route table = %+v, want %+v", res.RouteTable, tc.table)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.name+".policy.yaml"), out)
			fromYAML, err := policyfile.ToJSON(out)
			if err != nil {
				t.Fatal(err)
			}
			for format, pol := range map[string][]byte{"json": res.JSON(), "yaml": fromYAML} {
				var findings []string
				for _, f := range lint.Lint(pol) {
					findings = append(findings, f.String())
				}
				if !slices.Equal(findings, tc.lint) {
					t.Errorf("%s: lint:\n%s\nwant:\n%s", format, strings.Join(findings, "\n"), strings.Join(tc.lint, "\n"))
				}
			}
		})
	}
}

// TestImport_Refused: every field the policy cannot express is named, with
// its path and reason, and nothing is imported.
func TestImport_Refused(t *testing.T) {
	_, err := importFiles(t, Options{}, "refused.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Import = %v, want Errors", err)
	}
	golden(t, filepath.Join("testdata", "refused.err"), []byte(err.Error()+"\n"))
}

func TestImport_Errors(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: edge}\n"
	const route = "  http:\n  - route:\n    - destination: {host: a}\n"
	tests := []struct {
		name string
		docs []string
		want string
	}{
		{"mesh", []string{head + "spec:\n  hosts: [a]\n  gateways: [mesh]\n" + route},
			"f.yaml: VirtualService vs: spec.gateways[0]: not carried: " + meshOnly},
		{"no gateways", []string{head + "spec:\n  hosts: [a]\n" + route},
			"f.yaml: VirtualService vs: spec.gateways: not carried: missing, so the rules apply to sidecars (mesh) only; the plugin runs at a gateway"},
		{"two gateways", []string{head + "spec:\n  hosts: [a]\n  gateways: [a, b]\n" + route},
			"f.yaml: VirtualService vs: spec.gateways: not carried: more than one gateway: the policy is one gateway's; import each gateway's rules on their own"},
		{"no hosts", []string{head + "spec:\n  gateways: [gw]\n" + route},
			"f.yaml: VirtualService vs: spec.hosts: missing: import needs the hosts the rules serve"},
		{"* and named hosts", []string{head + "spec:\n  hosts: [a.example]\n  gateways: [gw]\n" + route, strings.Replace(head, "vs", "vs2", 1) + "spec:\n  hosts: [\"*\"]\n  gateways: [gw]\n" + route},
			`f.yaml: VirtualService vs2: spec.hosts: not carried: * with f.yaml: VirtualService vs's a.example: import VirtualServices for "*" and for named hosts on their own`},
		{"other gateway", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n" + route, strings.Replace(head, "vs", "vs2", 1) + "spec:\n  hosts: [a]\n  gateways: [other/gw]\n" + route},
			"f.yaml: VirtualService vs2: spec.gateways: not carried: binds to other/gw, f.yaml: VirtualService vs to edge/gw: the policy is one gateway's; import each gateway's VirtualServices on their own"},
		{"an authority match besides the hosts", []string{head + "spec:\n  hosts: [a.example]\n  gateways: [gw]\n  http:\n  - match: [{authority: {exact: b.example}}]\n    route:\n    - destination: {host: a}\n"},
			`f.yaml: VirtualService vs: spec.http[0].match[0].authority: not carried: a second authority condition beside the VirtualService's hosts, which a policy match block cannot hold: match exactly one of the hosts, or import with hosts "*"`},
		{"the parser's error in a block asked per host", []string{head + "spec:\n  hosts: [a.example, b.example]\n  gateways: [gw]\n  http:\n  - match: [{uri: {prefix: /a}}, {uri: {regex: \"(\"}}]\n    route:\n    - destination: {host: a}\n"},
			"f.yaml: VirtualService vs: spec.http[0].match[1].uri.regex: invalid regex \"(\": missing closing ): `(`"},
		{"no http", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n"},
			"f.yaml: no VirtualService with http rules"},
		{"apiVersion", []string{strings.Replace(head, "networking.istio.io/v1", "networking.istio.io/v2", 1) + "spec: {}\n"},
			`f.yaml: VirtualService vs: apiVersion: "networking.istio.io/v2": want one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3`},
		{"proto name", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n  http:\n  - match: [{ignore_uri_case: true}]\n" + route[len("  http:\n"):]},
			`f.yaml: VirtualService vs: spec.http[0].match[0].ignore_uri_case: unknown field, did you mean "ignoreUriCase"?`},
		{"typo", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n  http:\n  - rewite: {uri: /}\n"},
			"f.yaml: VirtualService vs: spec.http[0].rewite: unknown field"},
		{"value type", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: a}\n      weight: ninety\n"},
			`f.yaml: VirtualService vs: spec: invalid value for int32 field weight: "ninety"`},
		{"the parser's error at its VirtualService field", []string{head + "spec:\n  hosts: [a]\n  gateways: [gw]\n  http:\n  - name: my route\n    route:\n    - destination: {host: a}\n"},
			`f.yaml: VirtualService vs: spec.http[0].name: "my route" is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import([]Source{{Name: "f.yaml", Data: []byte(strings.Join(tc.docs, "---\n"))}}, Options{})
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Import = %v, want Errors", err)
			}
			errs = slices.DeleteFunc(errs, func(f Finding) bool { return f.Warning })
			if errs.Error() != tc.want {
				t.Errorf("Import: %v\nwant %s", errs, tc.want)
			}
		})
	}
}

// TestImport_Compiled: what Import returns, the plugin's parser accepts.
func TestImport_Compiled(t *testing.T) {
	res, err := importFiles(t, Options{}, "seed-rewrite.yaml", "seed-split.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(res.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Routes()); n != 2 {
		t.Errorf("%d routes, want one per VirtualService rule (2)", n)
	}
}

// TestImport_Hosts: VirtualServices for different hosts share the rendered
// VirtualService, each rule confined to its own hosts.
func TestImport_Hosts(t *testing.T) {
	vs := func(name, hosts string) string {
		return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " + name + ", namespace: edge}\n" +
			"spec:\n  hosts: [" + hosts + "]\n  gateways: [gw]\n  http:\n  - name: " + name + "\n    route:\n    - destination: {host: " + name + ".edge.svc.cluster.local}\n"
	}
	res, err := Import([]Source{{Name: "f.yaml", Data: []byte(vs("a", "a.example") + "---\n" + vs("b", "b.example, a.example"))}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example", "b.example"}; !slices.Equal(res.RouteTable.Hosts, want) {
		t.Errorf("hosts = %v, want %v", res.RouteTable.Hosts, want)
	}
	want := `{"routes":[{"name":"a","route":[{"destination":{"host":"a.edge.svc.cluster.local"}}],"match":[{"authority":{"exact":"a.example"}}]},` +
		`{"name":"b","route":[{"destination":{"host":"b.edge.svc.cluster.local"}}],"match":[{"authority":{"exact":"b.example"}},{"authority":{"exact":"a.example"}}]}]}`
	if string(res.Policy) != want {
		t.Errorf("policy:\n%s\nwant:\n%s", res.Policy, want)
	}
}
