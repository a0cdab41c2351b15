package envoyconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

var repo = filepath.Join("..", "..", "..", "..")

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type connectionManager struct {
	AccessLog   []any `yaml:"access_log"`
	RouteConfig struct {
		VirtualHosts []struct {
			Routes []any `yaml:"routes"`
		} `yaml:"virtual_hosts"`
	} `yaml:"route_config"`
	HTTPFilters []struct {
		Name        string
		TypedConfig struct {
			Config struct {
				Configuration struct{ Value string }
			}
		} `yaml:"typed_config"`
	} `yaml:"http_filters"`
}

// bootstrap is the part of an Envoy bootstrap the tests look at.
type bootstrap struct {
	Admin struct {
		Address struct {
			SocketAddress struct {
				PortValue int `yaml:"port_value"`
			} `yaml:"socket_address"`
		}
	}
	StaticResources struct {
		Listeners []struct {
			FilterChains []struct {
				Filters []struct {
					TypedConfig connectionManager `yaml:"typed_config"`
				}
			} `yaml:"filter_chains"`
		}
		Clusters []struct {
			Name           string
			LoadAssignment struct {
				Endpoints []struct {
					LbEndpoints []struct {
						Endpoint struct {
							Address struct {
								SocketAddress struct {
									Address   string
									PortValue int `yaml:"port_value"`
								} `yaml:"socket_address"`
							}
						}
					} `yaml:"lb_endpoints"`
				}
			} `yaml:"load_assignment"`
		}
	} `yaml:"static_resources"`
}

func decode(t *testing.T, data []byte) bootstrap {
	t.Helper()
	var b bootstrap
	if err := yaml.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b bootstrap) hcm() *connectionManager {
	return &b.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig
}

// clusters maps each cluster to its one endpoint, host:port.
func (b bootstrap) clusters() (names []string, addr map[string]string) {
	addr = map[string]string{}
	for _, c := range b.StaticResources.Clusters {
		names = append(names, c.Name)
		a := c.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress
		addr[c.Name] = a.Address + ":" + strconv.Itoa(a.PortValue)
	}
	return names, addr
}

func yamlText(v any) string {
	out, _ := yaml.Marshal(v)
	return string(out)
}

// asYAML is v as decoded YAML, to compare with a file's.
func asYAML(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := yaml.Unmarshal([]byte(yamlText(v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestShipped_RouteTable keeps the route table of every shipped
// configuration that runs the plugin what envoy-config derives from its
// own policy, and free of routes a client steers.
func TestShipped_RouteTable(t *testing.T) {
	for _, name := range []string{"envoy.yaml", "deploy/envoy-remote.yaml"} {
		t.Run(name, func(t *testing.T) {
			data := read(t, name)
			hcm := decode(t, data).hcm()
			pol, err := policy.Parse([]byte(hcm.HTTPFilters[0].TypedConfig.Config.Configuration.Value))
			if err != nil {
				t.Fatal(err)
			}
			got := asYAML(t, hcm.RouteConfig.VirtualHosts[0].Routes)
			if want := asYAML(t, Routes(pol)); !reflect.DeepEqual(got, want) {
				t.Errorf("routes:\n%s\nwant what envoy-config derives from the policy:\n%s", yamlText(got), yamlText(want))
			}
			findings, err := Check(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				t.Error(f)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"routes": [
	  {"name": "a", "route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "a", "subset": "v2"}, "weight": 1},
	    {"destination": {"host": "a"}, "weight": 1, "hint": "a3"}], "split": {"hintHeader": "x-h"}},
	  {"name": "b", "route": [{"destination": {"host": "b"}}]},
	  {"name": "c", "rewrite": {"uri": "/"}},
	  {"name": "d", "route": [{"destination": {"host": "b"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range Routes(pol) {
		h := "-"
		if len(r.Match.Headers) == 1 {
			h = r.Match.Headers[0].Name + ":" + r.Match.Headers[0].StringMatch.Exact
		}
		got = append(got, r.Name+" "+h+" → "+r.Route.Cluster)
	}
	want := []string{"x-h=a x-h:a → a", "x-h=a|v2 x-h:a|v2 → a|v2", "x-h=a3 x-h:a3 → a3",
		"x-wasmgate-destination=b x-wasmgate-destination:b → b", "default - → default-backend"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDerive(t *testing.T) {
	tmpl := read(t, "envoy.yaml")
	rewriteOnly := `{"routes": [{"name": "rw", "match": [{"uri": {"prefix": "/a"}}], "rewrite": {"uri": "/"}}]}`
	split := `{"routes": [{"route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "a"}, "weight": 1, "hint": "a2"}], "split": {"hintHeader": "x-h"}},
	  {"route": [{"destination": {"host": "b"}}]}]}`
	tests := []struct {
		name      string
		tmpl      []byte
		o         Options
		clusters  string            // names in order
		addr      map[string]string // some clusters' endpoints
		routes    int
		admin     int
		accessLog bool
		filters   string
		contains  []string
	}{
		{name: "the template's policy", tmpl: tmpl,
			o:        Options{GatewayPort: 0, AdminPort: 2, Wasm: "/m.wasm", Upstreams: map[string]string{"product-service": "127.0.0.1:11"}},
			clusters: "product-service,product-service-v2,default-backend,ratelimit", addr: map[string]string{"product-service": "127.0.0.1:11", "default-backend": "127.0.0.1:18081"},
			routes: 3, admin: 2, accessLog: true, filters: "envoy.filters.http.wasm,envoy.filters.http.router",
			contains: []string{`filename: "/m.wasm"`, "exact: product-service-v2"}},
		{name: "a split policy", tmpl: tmpl,
			o: Options{Policy: []byte(split), Wasm: "/m.wasm", GatewayPort: 1, AdminPort: Keep, RouteHeader: true,
				Upstreams: map[string]string{"a": "127.0.0.1:11", "a2": "127.0.0.1:12", "b": "127.0.0.1:13", DefaultCluster: "127.0.0.1:14"}},
			clusters: "default-backend,ratelimit,a,a2,b", addr: map[string]string{"a2": "127.0.0.1:12", "default-backend": "127.0.0.1:14"},
			routes: 4, admin: 9901, accessLog: true, filters: "envoy.filters.http.wasm,envoy.filters.http.router",
			contains: []string{"key: x-wasmgate-route", `"hint": "a2"`, "port_value: 1}", "exact: a2"}},
		{name: "rewrite only, extra clusters", tmpl: tmpl,
			o: Options{Policy: []byte(rewriteOnly), NoAccessLog: true, Like: map[string]string{"slow": "ratelimit"},
				Upstreams: map[string]string{"internal-admin": "127.0.0.1:21", "slow": "127.0.0.1:22", "ratelimit": "127.0.0.1:23"}},
			clusters: "default-backend,ratelimit,internal-admin,slow", addr: map[string]string{"slow": "127.0.0.1:22", "ratelimit": "127.0.0.1:23"},
			routes: 1, filters: "envoy.filters.http.wasm,envoy.filters.http.router",
			contains: []string{"http2_protocol_options"}},
		{name: "a refused policy, unchecked", tmpl: tmpl,
			o:        Options{Policy: []byte(`{"routes": "no"}`), Unchecked: true, GatewayPort: Keep, AdminPort: Keep},
			clusters: "product-service,product-service-v2,default-backend,ratelimit", routes: 3, admin: 9901, accessLog: true,
			filters: "envoy.filters.http.wasm,envoy.filters.http.router", contains: []string{`{"routes": "no"}`, "exact: product-service-v2"}},
		{name: "without the plugin", tmpl: tmpl,
			o:        Options{NoPlugin: true, GatewayPort: Keep, AdminPort: Keep},
			clusters: "product-service,product-service-v2,default-backend,ratelimit", routes: 3, admin: 9901, accessLog: true,
			filters: "envoy.filters.http.router"},
		{name: "the native configuration", tmpl: read(t, "deploy/envoy-native.yaml"),
			o:        Options{Upstreams: map[string]string{"product-service-v2": "127.0.0.1:31"}},
			clusters: "product-service,product-service-v2,default-backend", addr: map[string]string{"product-service-v2": "127.0.0.1:31"},
			routes: 4, filters: "envoy.filters.http.local_ratelimit,envoy.filters.http.router",
			contains: []string{"use_hash_policy: true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Derive(tc.tmpl, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			b := decode(t, out)
			names, addr := b.clusters()
			if got := strings.Join(names, ","); got != tc.clusters {
				t.Errorf("clusters = %s, want %s", got, tc.clusters)
			}
			for c, want := range tc.addr {
				if addr[c] != want {
					t.Errorf("cluster %s at %s, want %s", c, addr[c], want)
				}
			}
			hcm := b.hcm()
			if n := len(hcm.RouteConfig.VirtualHosts[0].Routes); n != tc.routes {
				t.Errorf("%d routes, want %d", n, tc.routes)
			}
			if got := b.Admin.Address.SocketAddress.PortValue; got != tc.admin {
				t.Errorf("admin port = %d, want %d", got, tc.admin)
			}
			if got := hcm.AccessLog != nil; got != tc.accessLog {
				t.Errorf("access log: %v, want %v", got, tc.accessLog)
			}
			var filters []string
			for _, f := range hcm.HTTPFilters {
				filters = append(filters, f.Name)
			}
			if got := strings.Join(filters, ","); got != tc.filters {
				t.Errorf("http_filters = %s, want %s", got, tc.filters)
			}
			if strings.Contains(string(out), "cluster_header:") {
				t.Errorf("the configuration routes by cluster_header:\n%s", out)
			}
			for _, want := range tc.contains {
				if !strings.Contains(string(out), want) {
					t.Errorf("the configuration lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestDerive_Errors(t *testing.T) {
	tmpl := read(t, "envoy.yaml")
	native := read(t, "deploy/envoy-native.yaml")
	tests := []struct {
		name string
		tmpl []byte
		o    Options
		want string
	}{
		{name: "bad policy", tmpl: tmpl, o: Options{Policy: []byte(`{"routes": []}`)}, want: "policy: routes: must not be empty"},
		{name: "template without listeners", tmpl: []byte("admin: {}"), o: Options{}, want: "template: no static_resources"},
		{name: "no plugin for a policy", tmpl: native, o: Options{Policy: []byte(`{"routes": [{}]}`)},
			want: "template: the first listener has no envoy.filters.http.wasm filter"},
		{name: "no access log", tmpl: native, o: Options{NoAccessLog: true}, want: "template: no access_log to remove"},
		{name: "missing upstream", tmpl: tmpl, o: Options{Policy: []byte(`{"routes": [{"route": [{"destination": {"host": "a"}}]}]}`)},
			want: `no upstream address for cluster "a"`},
		{name: "bad upstream", tmpl: tmpl, o: Options{Upstreams: map[string]string{DefaultCluster: "localhost"}},
			want: `upstream "default-backend": "localhost" is not host:port`},
		{name: "nothing to copy", tmpl: tmpl, o: Options{Upstreams: map[string]string{"x": "127.0.0.1:1"}, Like: map[string]string{"x": "y"}},
			want: `cluster "x": the template has no cluster "y" to copy`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Derive(tc.tmpl, tc.o)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	seed := string(read(t, "envoy.yaml"))
	const table = "              routes:\n"
	at := strings.Index(seed, table)
	end := strings.Index(seed, "          http_filters:\n")
	withRoutes := func(routes string) string { return seed[:at] + table + routes + seed[end:] }
	tests := []struct {
		name, config string
		want         []string
	}{
		{name: "cluster_header on the hint header", config: withRoutes(`
              - name: hinted
                match: {prefix: "/", headers: [{name: x-route-to, present_match: true}]}
                route: {cluster_header: x-route-to}
              - {name: default, match: {prefix: "/"}, route: {cluster: default-backend}}
`), want: []string{`listeners[gateway].virtual_hosts[all].routes[hinted]: warning: cluster_header "x-route-to": the request reaches whatever cluster it names there, an internal one too; route each destination hint to its cluster by an exact header match (wasmgate envoy-config)`}},
		{name: "a header the plugin does not control", config: withRoutes(`
              - match: {prefix: "/", headers: [{name: x-debug, string_match: {exact: "1"}}]}
                route: {weighted_clusters: {clusters: [{cluster_header: x-pick}]}}
              - {name: default, match: {prefix: "/"}, route: {cluster: default-backend}}
`), want: []string{
			`listeners[gateway].virtual_hosts[all].routes[0]: warning: weighted cluster_header "x-pick": the request reaches whatever cluster it names there`,
			`listeners[gateway].virtual_hosts[all].routes[0]: warning: matches request header "x-debug", which the plugin neither writes nor removes: a client picks this route by sending it`}},
		{name: "the native configuration", config: string(read(t, "deploy/envoy-native.yaml")), want: []string{
			`listeners[gateway].virtual_hosts[all].routes[products-override-v1]: warning: matches request header "x-canary", which the plugin neither writes nor removes: a client picks this route by sending it`,
			`listeners[gateway].virtual_hosts[all].routes[products-override-v2]: warning: matches request header "x-canary", which the plugin neither writes nor removes: a client picks this route by sending it`}},
		{name: "the seed", config: seed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			findings, err := Check([]byte(tc.config), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range findings {
				got = append(got, f.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
