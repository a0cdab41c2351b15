package envoyproc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// shipped is the connection manager of the repository's envoy.yaml.
func shipped(t *testing.T) Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromEnvoyConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFromEnvoyConfig(t *testing.T) {
	if got, want := shipped(t), Shipped; got != want {
		t.Fatalf("envoy.yaml: %+v, want %+v", got, want)
	}
}

func TestFromEnvoyConfig_Errors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no listener", "static_resources: {}", "static_resources.listeners[0].filter_chains[0]: missing"},
		{"no hcm", "static_resources: {listeners: [{filter_chains: [{filters: [{name: x}]}]}]}",
			"static_resources.listeners[0].filter_chains[0]: no envoy.filters.network.http_connection_manager"},
		{"bad action", "static_resources: {listeners: [{filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {path_with_escaped_slashes_action: X}}]}]}]}",
			`static_resources.listeners[0].filter_chains[0].filters[0].typed_config.path_with_escaped_slashes_action: "X" is not one of KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnvoyConfig([]byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// TestFromIstio mirrors pilot's listener builder: which connection manager
// settings each meshConfig.pathNormalization mode sets.
func TestFromIstio(t *testing.T) {
	tests := []struct {
		mode             string
		normalize, merge bool
		escaped          EscapedSlashes
	}{
		{"NONE", false, false, KeepUnchanged},
		{"BASE", true, false, KeepUnchanged},
		{"DEFAULT", true, false, KeepUnchanged},
		{"MERGE_SLASHES", true, true, KeepUnchanged},
		{"DECODE_AND_MERGE_SLASHES", true, true, UnescapeAndForward},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			c, err := FromIstio(tc.mode, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.NormalizePath != tc.normalize || c.MergeSlashes != tc.merge || c.EscapedSlashes != tc.escaped || !c.UseRemoteAddress {
				t.Fatalf("%+v", c)
			}
		})
	}
	if _, err := FromIstio("merge", 0); err == nil {
		t.Fatal("lower-case mode accepted")
	}
}

// TestConfig_Process_Path: normalize_path, merge_slashes and
// path_with_escaped_slashes_action, each row as Envoy 1.40 answered it.
func TestConfig_Process_Path(t *testing.T) {
	base := Config{NormalizePath: true, MergeSlashes: true, EscapedSlashes: KeepUnchanged}
	with := func(a EscapedSlashes) Config { c := base; c.EscapedSlashes = a; return c }
	tests := []struct {
		name, setting string
		c             Config
		in, want      string
		reject        *Reject
	}{
		{"dot-dot", "normalize_path", base, "/a/../b", "/b", nil},
		{"escaped dot-dot", "normalize_path", base, "/a/%2e%2E/b", "/b", nil},
		{"half escaped", "normalize_path", base, "/a/.%2e/b", "/b", nil},
		{"dot", "normalize_path", base, "/a/./b/.", "/a/b/", nil},
		{"trailing dot-dot", "normalize_path", base, "/a/b/..", "/a/", nil},
		{"above root", "normalize_path", base, "/../../a", "/a", nil},
		{"three dots", "normalize_path", base, "/a/.../b/..../c", "/a/.../b/..../c", nil},
		{"four escaped dots", "normalize_path", base, "/.%2E%2e./b", "/..../b", nil},
		{"unreserved decoded", "normalize_path", base, "/%41%5A%61%7e%2D%2E%5F%30", "/AZa~-._0", nil},
		{"reserved kept", "normalize_path", base, "/%21%2F%3f%25%20%C3%A9%2f", "/%21%2F%3f%25%20%C3%A9%2f", nil},
		{"escaped slash dot-dot", "normalize_path", base, "/a/%2e%2e%2fb", "/a/..%2fb", nil},
		{"backslash", "normalize_path", base, `/a\b/..\c`, "/a/c", nil},
		{"encoded", "normalize_path", base, "/a\"<>^`{|}", "/a%22%3C%3E%5E%60%7B%7C%7D", nil},
		{"malformed escape kept", "normalize_path", base, "/a%zz%2", "/a%zz%2", nil},
		{"params", "normalize_path", base, "/a;b=c/../d", "/d", nil},
		{"query untouched", "normalize_path", base, "/a/..?x=/../%2e//y", "/?x=/../%2e//y", nil},
		{"escaped NUL", "normalize_path", base, "/a%00b", "", &Reject{400, DetailPathNormalization, ""}},
		{"off", "normalize_path", Config{EscapedSlashes: KeepUnchanged}, "/a/../b//c%2e%00", "/a/../b//c%2e%00", nil},
		{"merge", "merge_slashes", base, "//a///b/", "/a/b/", nil},
		{"merge after dot-dot", "merge_slashes", base, "/a//../b", "/a/b", nil},
		{"only slashes stay two", "merge_slashes", base, "//.", "//", nil},
		{"dot-dot to the root", "merge_slashes", base, "//..", "/", nil},
		{"fragment", "(always)", base, "/a?b#c", "", &Reject{400, DetailPathNormalization, ""}},
		{"fragment without normalize", "(always)", Config{}, "/a#f", "", &Reject{400, DetailPathNormalization, ""}},
		{"keep", "path_with_escaped_slashes_action", base, "/a%2Fb%5cc", "/a%2Fb%5cc", nil},
		{"reject", "path_with_escaped_slashes_action", with(RejectRequest), "/a%2fb", "", &Reject{400, DetailPathNormalization, ""}},
		{"forward", "path_with_escaped_slashes_action", with(UnescapeAndForward), "/a%2Fb%5cc%2f..%2fd", "/a/b/d", nil},
		{"redirect", "path_with_escaped_slashes_action", with(UnescapeAndRedirect), "/a%2Fb%5cc%2f..%2fd?q", "", &Reject{307, DetailPathNormalization, "/a/b/d?q"}},
		{"redirect not needed", "path_with_escaped_slashes_action", with(UnescapeAndRedirect), "/a/b", "/a/b", nil},
	}
	for _, tc := range tests {
		t.Run(tc.setting+"/"+tc.name, func(t *testing.T) {
			got := tc.c.Process(Request{Method: "GET", Target: tc.in, Headers: [][2]string{{"Host", "x"}}, Client: "10.0.0.1:1"}, "id")
			if !reflect.DeepEqual(got.Reject, tc.reject) {
				t.Fatalf("reject %+v, want %+v", got.Reject, tc.reject)
			}
			if got.Path != tc.want {
				t.Fatalf("path %q, want %q", got.Path, tc.want)
			}
		})
	}
}

// TestConfig_Process_Codec: what the HTTP/1.1 codec refuses and how it reads
// headers.
func TestConfig_Process_Codec(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		target    string
		headers   [][2]string
		authority string
		want      [][2]string
		reject    *Reject
	}{
		{"lower-case method", "get", "/a", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"mixed-case method", "Get", "/a", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"unknown method", "FOO", "/a", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"extension method", "PURGE", "/a", nil, "x", nil, nil},
		{"non-ASCII path", "GET", "/café", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"space in path", "GET", "/a b", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"relative", "GET", "a", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"asterisk", "GET", "*", nil, "", nil, &Reject{400, DetailInvalidURL, ""}},
		{"absolute form", "GET", "http://abs.example/p", nil, "abs.example", nil, nil},
		{"https on plain HTTP", "GET", "https://abs.example/p", nil, "", nil, &Reject{403, DetailHTTPSOnPlaintext, ""}},
		{"M-SEARCH", "M-SEARCH", "/a", nil, "", nil, &Reject{400, DetailCodecError, ""}},
		{"bad value before bad method", "get", "/a", [][2]string{{"Host", "x"}, {"X-U", "a\x01b"}}, "", nil, &Reject{400, DetailInvalidCharacters, ""}},
		{"no host", "GET", "/a", [][2]string{}, "", nil, &Reject{400, DetailMissingHost, ""}},
		{"empty host", "GET", "/a", [][2]string{{"Host", ""}}, "", nil, nil},
		{"host trimmed, case kept", "GET", "/a", [][2]string{{"Host", "  UP.Example:8080  "}}, "UP.Example:8080", nil, nil},
		{"two hosts joined", "GET", "/a", [][2]string{{"Host", "x"}, {"host", "y"}}, "x,y", nil, nil},
		{"values trimmed, repeats kept in order", "GET", "/a",
			[][2]string{{"Host", "x"}, {"X-A", "  v1  "}, {"x-a", "\tv2\t "}, {"X-Empty", ""}, {"X-U", "café"}}, "x",
			[][2]string{{"x-a", "v1"}, {"x-a", "v2"}, {"x-empty", ""}, {"x-u", "café"}}, nil},
		{"space in name", "GET", "/a", [][2]string{{"Host", "x"}, {"X-Sp ", "v"}}, "", nil, &Reject{400, DetailCodecError, ""}},
		{"control in value", "GET", "/a", [][2]string{{"Host", "x"}, {"X-U", "a\x01b"}}, "", nil, &Reject{400, DetailInvalidCharacters, ""}},
	}
	c := Config{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.headers
			if h == nil {
				h = [][2]string{{"Host", tc.authority}}
			}
			got := c.Process(Request{Method: tc.method, Target: tc.target, Headers: h, Client: "10.0.0.1:1"}, "id")
			if !reflect.DeepEqual(got.Reject, tc.reject) {
				t.Fatalf("reject %+v, want %+v", got.Reject, tc.reject)
			}
			if got.Reject != nil {
				return
			}
			if got.Authority != tc.authority {
				t.Fatalf("authority %q, want %q", got.Authority, tc.authority)
			}
			if tc.want != nil && !reflect.DeepEqual(got.Headers[:len(tc.want)], tc.want) {
				t.Fatalf("headers %q, want %q first", got.Headers, tc.want)
			}
		})
	}
}

// TestConfig_Process_Sanitize: use_remote_address, xff_num_trusted_hops,
// generate_request_id and the headers Envoy cleans from external requests.
func TestConfig_Process_Sanitize(t *testing.T) {
	edge := Config{UseRemoteAddress: true, GenerateRequestID: true}
	hops1 := Config{UseRemoteAddress: true, XFFNumTrustedHops: 1, GenerateRequestID: true}
	inner := Config{GenerateRequestID: true}
	tests := []struct {
		name, setting string
		c             Config
		client        string
		in            [][2]string
		want          [][2]string
		source        string
		generated     []string
	}{
		{"edge", "use_remote_address", edge, "10.0.0.1:5", [][2]string{
			{"x-envoy-original-path", "/evil"}, {"X-Request-Id", "abc"}, {"x-envoy-internal", "true"},
			{"x-envoy-max-retries", "3"}, {"x-envoy-decorator-operation", "o"}, {"x-envoy-foo", "1"},
			{"x-forwarded-proto", "https"}, {"connection", "x-foo"}, {"x-foo", "1"}, {"te", "trailers"},
			{"x-forwarded-client-cert", "c"}, {"x-envoy-external-address", "9.9.9.9"}},
			[][2]string{{"x-request-id", "id"}, {"x-envoy-foo", "1"}, {"x-forwarded-proto", "http"}, {"te", "trailers"},
				{"x-envoy-external-address", "10.0.0.1"}, {"x-forwarded-for", "10.0.0.1"}},
			"10.0.0.1:5", []string{"x-request-id"}},
		{"repeated XFF appended", "use_remote_address", edge, "10.0.0.1:5",
			[][2]string{{"x-forwarded-for", "1.1.1.1"}, {"X-Forwarded-For", "2.2.2.2"}},
			[][2]string{{"x-forwarded-for", "1.1.1.1,2.2.2.2,10.0.0.1"}, {"x-forwarded-proto", "http"}, {"x-envoy-external-address", "10.0.0.1"}, {"x-request-id", "id"}},
			"10.0.0.1:5", []string{"x-request-id"}},
		{"loopback peer", "use_remote_address", edge, "127.0.0.1:5", nil,
			[][2]string{{"x-forwarded-for", "127.0.0.1"}, {"x-forwarded-proto", "http"}, {"x-envoy-external-address", "127.0.0.1"}, {"x-request-id", "id"}},
			"127.0.0.1:5", []string{"x-forwarded-for", "x-request-id"}},
		{"one trusted hop", "xff_num_trusted_hops", hops1, "10.0.0.1:5", [][2]string{{"x-forwarded-for", "6.6.6.6, 7.7.7.7"}},
			[][2]string{{"x-forwarded-for", "6.6.6.6, 7.7.7.7,10.0.0.1"}, {"x-forwarded-proto", "http"}, {"x-envoy-external-address", "7.7.7.7"}, {"x-request-id", "id"}},
			"7.7.7.7:0", []string{"x-request-id"}},
		{"behind a proxy", "use_remote_address: false", inner, "10.0.0.1:5", [][2]string{{"x-forwarded-for", "6.6.6.6"}, {"x-request-id", "abc"}, {"x-envoy-decorator-operation", "o"}},
			[][2]string{{"x-forwarded-for", "6.6.6.6"}, {"x-request-id", "abc"}, {"x-envoy-decorator-operation", "o"}, {"x-forwarded-proto", "http"}},
			"6.6.6.6:0", nil},
		{"te other than trailers", "(always)", inner, "10.0.0.1:5", [][2]string{{"te", "gzip"}, {"x-request-id", "abc"}},
			[][2]string{{"x-request-id", "abc"}, {"x-forwarded-proto", "http"}}, "10.0.0.1:5", nil},
		{"te lines with trailers", "(always)", inner, "10.0.0.1:5", [][2]string{{"te", "gzip"}, {"x-request-id", "abc"}, {"TE", "trailers"}},
			[][2]string{{"te", "trailers"}, {"x-request-id", "abc"}, {"x-forwarded-proto", "http"}}, "10.0.0.1:5", nil},
		{"no request id", "generate_request_id", inner, "10.0.0.1:5", nil,
			[][2]string{{"x-forwarded-proto", "http"}, {"x-request-id", "id"}}, "10.0.0.1:5", []string{"x-request-id"}},
	}
	for _, tc := range tests {
		t.Run(tc.setting+"/"+tc.name, func(t *testing.T) {
			got := tc.c.Process(Request{Method: "GET", Target: "/", Headers: append([][2]string{{"Host", "x"}}, tc.in...), Client: tc.client}, "id")
			if got.Reject != nil {
				t.Fatal(got.Reject)
			}
			if !reflect.DeepEqual(got.Headers, tc.want) {
				t.Fatalf("headers\n%q\nwant\n%q", got.Headers, tc.want)
			}
			if got.Source != tc.source || !reflect.DeepEqual(got.Generated, tc.generated) {
				t.Fatalf("source %s generated %v, want %s %v", got.Source, got.Generated, tc.source, tc.generated)
			}
		})
	}
}
