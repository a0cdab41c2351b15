package envoyconfig

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the derivation")

// TestDerive_RouteTable derives envoy.yaml for a policy with every
// route-table feature, two routes sharing a destination and one route
// without destinations, and compares the HTTP filters and the routes with
// testdata/route-table.yaml.
func TestDerive_RouteTable(t *testing.T) {
	pol := read(t, filepath.Join("policy", "testdata", "valid", "route-table.json"))
	up := map[string]string{}
	for _, c := range []string{"api", "api|canary", "api-shadow", "audit"} {
		up[c] = "127.0.0.1:1"
	}
	out, err := Derive(read(t, "envoy.yaml"), Options{Policy: pol, AdminPort: Keep, GatewayPort: Keep, Upstreams: up})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							HTTPFilters []struct {
								Name string `yaml:"name"`
							} `yaml:"http_filters"`
							RouteConfig struct {
								VirtualHosts []struct {
									Routes []any `yaml:"routes"`
								} `yaml:"virtual_hosts"`
							} `yaml:"route_config"`
						} `yaml:"typed_config"`
					}
				} `yaml:"filter_chains"`
			}
		} `yaml:"static_resources"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	hcm := doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig
	var filters []string
	for _, f := range hcm.HTTPFilters {
		filters = append(filters, f.Name)
	}
	got, err := yaml.Marshal(map[string]any{"http_filters": filters, "routes": hcm.RouteConfig.VirtualHosts[0].Routes})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "route-table.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it); got:\n%s", golden, t.Name(), got)
	}
}
