package e2e

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/e2e/harness"
)

// generatedRequests is how many requests TestEnvoy_Generated sends per build.
const generatedRequests = 2000

// TestEnvoy_Generated sends requests from a grammar of tricky paths (dot
// segments, %-encodings, repeated slashes, backslashes, fragments, non-ASCII,
// long), headers (repeated, differing in case, padded, empty, the ones Envoy
// sanitizes) and methods through `wasmgate simulate -verify`: the simulator
// and a real Envoy must agree on every check of every request. The grammar
// is seeded, so every run sends the same requests.
func TestEnvoy_Generated(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 15))
	var b bytes.Buffer
	for range generatedRequests {
		line, err := json.Marshal(generateRequest(r))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	requestsFile := filepath.Join(t.TempDir(), "generated.jsonl")
	if err := os.WriteFile(requestsFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(harness.Root, "e2e", "testdata", "generated", "policy.yaml")
	forEachBuild(t, func(t *testing.T, bd harness.Build) {
		rep := verify(t, bd, filepath.Join(harness.Root, "envoy.yaml"), policyFile, requestsFile)
		if rep.Requests != generatedRequests {
			t.Fatalf("%d requests compared, want %d", rep.Requests, generatedRequests)
		}
		t.Logf("%s build: %d requests, %d checks, %d disagree", bd.Name, rep.Requests, rep.Checks, len(rep.Disagreements))
	})
}

// generatedRequest is one line of the requests file.
type generatedRequest struct {
	Method  string      `json:"method,omitempty"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
}

// pick returns one of choices.
func pick[T any](r *rand.Rand, choices ...T) T { return choices[r.IntN(len(choices))] }

// chance is true with probability percent/100.
func chance(r *rand.Rand, percent int) bool { return r.IntN(100) < percent }

func generateRequest(r *rand.Rand) generatedRequest {
	g := generatedRequest{Path: generatePath(r)}
	if chance(r, 20) {
		g.Method = pick(r, "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PURGE", "PROPFIND", "M-SEARCH",
			"get", "Get", "FOO", "HEAD")
	}
	switch {
	case chance(r, 3): // no Host line
	case chance(r, 4):
		g.Headers = append(g.Headers, [2]string{"Host", "shop.example"}, [2]string{pick(r, "Host", "host"), pick(r, "shop.example", "other.example")})
	default:
		g.Headers = append(g.Headers, [2]string{pick(r, "Host", "host", "HOST"),
			pick(r, "shop.example", "shop.example", "  shop.example  ", "\tshop.example", "SHOP.example", "other.example", "")})
	}
	for range r.IntN(5) {
		g.Headers = append(g.Headers, generateHeader(r)...)
	}
	r.Shuffle(len(g.Headers), func(i, j int) { g.Headers[i], g.Headers[j] = g.Headers[j], g.Headers[i] })
	return g
}

// segments of generated paths: route prefixes, dot segments in every
// spelling, escapes of unreserved and reserved characters, characters Envoy
// re-encodes, and a few it refuses.
var segments = []string{
	"api", "api", "admin", "admin", "tags", "tagsX", "products", "v1", "x", "",
	".", "..", "%2e", "%2E", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "...", "....",
	"%61pi", "%41dmin", "%7e", "%7E", "%2D%5F", "%30", "a%2Fb", "a%2fb", "a%5cb", "%5C",
	"a%20b", "%25", "%3F", "%23", "a;b=c", "<x>", "{y}", "|", "^", "`", "\"q\"", "~u",
	"[v6]", "'", "!$&()*+,=:@", "%C3%A9", "%zz", "%2",
}

func generatePath(r *rand.Rand) string {
	if chance(r, 1) {
		return pick(r, "*", "http://abs.example/api/../admin/x", "https://shop.example/api//x")
	}
	var b strings.Builder
	for i, n := 0, 1+r.IntN(5); i < n; i++ {
		switch {
		case chance(r, 8):
			b.WriteString("//")
		case chance(r, 6):
			b.WriteString(`\`)
		default:
			b.WriteString("/")
		}
		b.WriteString(pick(r, segments...))
	}
	switch {
	case chance(r, 2):
		b.WriteString("/caf\u00e9") // raw non-ASCII
	case chance(r, 1):
		b.WriteString("/%00")
	case chance(r, 1):
		b.WriteString("/" + strings.Repeat("long-segment/", 150))
	}
	if chance(r, 20) {
		b.WriteString(pick(r, "?q=1", "?q=/../x", "?a=%2e%2e//b&c", "?", "?x=caf%C3%A9"))
	}
	if chance(r, 3) {
		b.WriteString(pick(r, "#frag", "#"))
	}
	return b.String()
}

func generateHeader(r *rand.Rand) [][2]string {
	switch r.IntN(12) {
	case 0, 1:
		name := pick(r, "x-tag", "X-Tag", "X-TAG")
		if chance(r, 50) {
			return [][2]string{{name, pick(r, "a", "b", " b ", "\tb")}, {pick(r, "x-tag", "X-Tag"), pick(r, "a", "b")}}
		}
		return [][2]string{{name, pick(r, "b", "  b  ", "a", "", "b,b")}}
	case 2:
		return [][2]string{{pick(r, "x-tenant", "X-Tenant"), pick(r, "t1", "  t1  ", "", "caf\u00e9", "a b")}}
	case 3:
		return [][2]string{{"x-debug", "1"}, {"X-Debug", "2"}}
	case 4:
		return [][2]string{{"x-envoy-original-path", "/evil"}}
	case 5:
		return [][2]string{{pick(r, "x-request-id", "X-Request-ID"), "client-chosen"}}
	case 6:
		return [][2]string{{"x-forwarded-for", pick(r, "6.6.6.6", "6.6.6.6, 7.7.7.7", "not-an-ip")}}
	case 7:
		return [][2]string{{pick(r, "x-envoy-internal", "x-envoy-max-retries", "x-envoy-foo", "x-envoy-decorator-operation", "x-forwarded-proto"), "1"}}
	case 8:
		return [][2]string{{"connection", pick(r, "x-hop", "close, x-hop")}, {"x-hop", "1"}}
	case 9:
		return [][2]string{{"te", pick(r, "trailers", "gzip")}}
	case 10:
		return [][2]string{{"x-route-to", pick(r, "tag-service", "default-backend")}}
	}
	// Refused by the codec: a control byte in a value, a space in a name.
	return [][2]string{pick(r, [2]string{"x-bad", "a\x01b"}, [2]string{"x bad", "v"}, [2]string{"x-ok", "v"})}
}
