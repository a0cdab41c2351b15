package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped configurations the benchmark derives from.
var (
	envoyYAML  = filepath.Join("..", "..", "..", "..", "envoy.yaml")
	nativeYAML = filepath.Join("..", "..", "..", "..", "deploy", "envoy-native.yaml")
)

func TestDeriveConfig(t *testing.T) {
	ports := map[string]string{"9901": "0", "10000": "0", "18081": "4001", "18082": "4002"}
	tests := []struct {
		name   string
		in     string
		e      edits
		want   []string // substrings of the result
		absent []string
	}{
		{
			name:   "plugin without its limit",
			in:     envoyYAML,
			e:      edits{ports: ports, wasm: "/m/empty.wasm", noLimit: true},
			want:   []string{`filename: "/m/empty.wasm"`, "port_value: 4001", "port_value: 4002", `"x-route-to"`},
			absent: []string{"rateLimit", "port_value: 18081", "port_value: 9901"},
		},
		{
			name:   "plugin with a keyed limit that never denies",
			in:     envoyYAML,
			e:      edits{ports: ports, tokens: 1000000000, limitKey: "x-user-id"},
			want:   []string{`"maxTokens": 1000000000`, `"tokensPerFill": 1000000000`, `"key": {`, `"header": "x-user-id"`},
			absent: []string{`"maxTokens": 100,`},
		},
		{
			name:   "bare router",
			in:     envoyYAML,
			e:      edits{ports: ports, dropFilters: []string{"envoy.filters.http.wasm"}},
			want:   []string{"envoy.filters.http.router"},
			absent: []string{"vm_config", "StringValue"},
		},
		{
			name:   "native without its limit",
			in:     nativeYAML,
			e:      edits{ports: ports, noLimit: true},
			want:   []string{"regex_rewrite", "use_hash_policy: true"},
			absent: []string{"LocalRateLimit", "token_bucket"},
		},
		{
			name: "native with a bucket that never denies",
			in:   nativeYAML,
			e:    edits{ports: ports, tokens: 1000000000},
			want: []string{"max_tokens: 1000000000", "tokens_per_fill: 1000000000", "local_ratelimit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := os.ReadFile(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := deriveConfig(src, tt.e)
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
	tests := []struct {
		name string
		src  string
		e    edits
		want string
	}{
		{
			name: "nothing to change",
			src:  "admin: {address: {socket_address: {port_value: 9901}}}\n",
			e:    edits{ports: map[string]string{"10000": "0"}, wasm: "x.wasm", dropFilters: []string{"envoy.filters.http.wasm"}, noLimit: true},
			want: "nothing to change for port 10000, wasm, drop-filter envoy.filters.http.wasm, limit",
		},
		{
			name: "policy is not JSON",
			src:  "config:\n  \"@type\": type.googleapis.com/google.protobuf.StringValue\n  value: \"{routes\"\n",
			e:    edits{tokens: 5},
			want: "line 3: policy: invalid character 'r' looking for beginning of object key string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deriveConfig([]byte(tt.src), tt.e)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}
