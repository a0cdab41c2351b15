package envoyconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestRender(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"routes": [{"route": [{"destination": {"host": "a"}, "weight": 1}, {"destination": {"host": "a"}, "weight": 1, "hint": "a2"}], "split": {"hintHeader": "x-h"}},
	  {"route": [{"destination": {"host": "b"}}]}]}`
	out, err := Render(tmpl, Options{Policy: []byte(policy), Wasm: "/m.wasm", GatewayPort: 1, AdminPort: 2,
		Upstreams: map[string]string{"a": "127.0.0.1:11", "a2": "127.0.0.1:12", "b": "127.0.0.1:13", DefaultCluster: "127.0.0.1:14"}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Admin struct {
			Address struct {
				SocketAddress struct {
					PortValue int `yaml:"port_value"`
				} `yaml:"socket_address"`
			}
		}
		StaticResources struct {
			Clusters []struct{ Name string } `yaml:"clusters"`
		} `yaml:"static_resources"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfg.StaticResources.Clusters {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "a,a2,b,default-backend" {
		t.Errorf("clusters = %s, want a,a2,b,default-backend", got)
	}
	if cfg.Admin.Address.SocketAddress.PortValue != 2 {
		t.Errorf("admin port = %d, want 2", cfg.Admin.Address.SocketAddress.PortValue)
	}
	for _, want := range []string{"cluster_header: x-h", "cluster_header: x-wasmgate-destination", "filename: /m.wasm", "key: x-wasmgate-route", `"hint": "a2"`, "port_value: 1\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the configuration lacks %q:\n%s", want, out)
		}
	}
}

func TestRender_Errors(t *testing.T) {
	tests := []struct {
		name, tmpl, policy, want string
		upstreams                map[string]string
	}{
		{name: "bad policy", tmpl: "admin: {}", policy: `{"routes": []}`, want: "policy: routes: must not be empty"},
		{name: "template without admin", tmpl: "static_resources: {}", policy: `{"routes": [{}]}`,
			upstreams: map[string]string{DefaultCluster: "127.0.0.1:1"}, want: `template: no map holding "address"`},
		{name: "missing upstream", tmpl: "x: 1", policy: `{"routes": [{"route": [{"destination": {"host": "a"}}]}]}`,
			upstreams: map[string]string{DefaultCluster: "127.0.0.1:1"}, want: `no upstream address for cluster "a"`},
		{name: "bad upstream", tmpl: "x: 1", policy: `{"routes": [{}]}`,
			upstreams: map[string]string{DefaultCluster: "localhost"}, want: `upstream "default-backend": "localhost" is not host:port`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render([]byte(tc.tmpl), Options{Policy: []byte(tc.policy), Upstreams: tc.upstreams})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %s", err, tc.want)
			}
		})
	}
}
