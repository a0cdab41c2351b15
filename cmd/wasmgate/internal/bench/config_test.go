package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyconfig"
)

// The shipped configurations the benchmark derives from.
var (
	envoyYAML  = filepath.Join("..", "..", "..", "..", "envoy.yaml")
	nativeYAML = filepath.Join("..", "..", "..", "..", "deploy", "envoy-native.yaml")
)

// options are the scenarios' common options: every port on the benchmark's
// upstreams or kernel-picked, as build/bench.sh sets them.
func options(wasm string, noPlugin bool) envoyconfig.Options {
	return envoyconfig.Options{Wasm: wasm, NoPlugin: noPlugin, Upstreams: map[string]string{
		"product-service": "127.0.0.1:4001", "product-service-v2": "127.0.0.1:4002", "default-backend": "127.0.0.1:4001"}}
}

func TestDeriveConfig(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		o      envoyconfig.Options
		e      limits
		want   []string // substrings of the result
		absent []string
	}{
		{
			name:   "plugin without its limit",
			in:     envoyYAML,
			o:      options("/m/empty.wasm", false),
			e:      limits{noLimit: true},
			want:   []string{`filename: "/m/empty.wasm"`, "port_value: 4001", "port_value: 4002", `"x-route-to"`},
			absent: []string{"rateLimit", "port_value: 18081", "port_value: 9901"},
		},
		{
			name:   "plugin with a keyed limit that never denies",
			in:     envoyYAML,
			o:      options("", false),
			e:      limits{tokens: 1000000000, limitKey: "x-user-id"},
			want:   []string{`"maxTokens": 1000000000`, `"tokensPerFill": 1000000000`, `"key": {`, `"header": "x-user-id"`},
			absent: []string{`"maxTokens": 100,`},
		},
		{
			name:   "bare router",
			in:     envoyYAML,
			o:      options("", true),
			want:   []string{"envoy.filters.http.router"},
			absent: []string{"vm_config", "StringValue"},
		},
		{
			name:   "native without its limit",
			in:     nativeYAML,
			o:      options("", false),
			e:      limits{noLimit: true},
			want:   []string{"regex_rewrite", "use_hash_policy: true", "port_value: 4002"},
			absent: []string{"LocalRateLimit", "token_bucket"},
		},
		{
			name: "native with a bucket that never denies",
			in:   nativeYAML,
			o:    options("", false),
			e:    limits{tokens: 1000000000},
			want: []string{"max_tokens: 1000000000", "tokens_per_fill: 1000000000", "local_ratelimit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := os.ReadFile(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := deriveConfig(src, tt.o, tt.e)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(out), s) {
					t.Errorf("result lacks %q", s)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(string(out), s) {
					t.Errorf("result still has %q", s)
				}
			}
		})
	}
}

func TestDeriveConfig_Errors(t *testing.T) {
	const listener = "static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config:\n          http_filters:\n"
	tests := []struct {
		name string
		src  string
		e    limits
		want string
	}{
		{
			name: "nothing to change",
			src:  listener + "          - name: envoy.filters.http.router\n  clusters:\n  - name: default-backend\n",
			e:    limits{noLimit: true},
			want: "no rate limit to change",
		},
		{
			name: "policy is not JSON",
			src: listener + "          - name: envoy.filters.http.wasm\n            typed_config:\n              config:\n                configuration:\n" +
				"                  \"@type\": type.googleapis.com/google.protobuf.StringValue\n                  value: \"{routes\"\n",
			e:    limits{tokens: 5},
			want: "policy: invalid character 'r' looking for beginning of object key string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deriveConfig([]byte(tt.src), envoyconfig.Options{GatewayPort: envoyconfig.Keep, AdminPort: envoyconfig.Keep}, tt.e)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}
