package istio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/e2e/harness"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pkg/test"
)

const fallbackHost = "fallback.default.svc.cluster.local"

// spellingPolicy rewrites /products and limits it with one bucket whose
// remaining tokens every answer shows; /probe is startEnvoy's readiness.
const spellingPolicy = `{"routes": [{
  "name": "products",
  "match": [{"uri": {"prefix": "/products"}}],
  "rewrite": {"uri": "/"},
  "route": [{"destination": {"host": "product-service.default.svc.cluster.local", "port": {"number": 8080}}}],
  "split": {"hintHeader": "x-route-to"},
  "rateLimit": {"tokenBucket": {"maxTokens": 100, "fillInterval": "1h"}, "fieldsOnAllowed": true}
}, {
  "name": "probe",
  "match": [{"uri": {"prefix": "/probe"}}],
  "route": [{"destination": {"host": "product-service.default.svc.cluster.local", "port": {"number": 8080}}}],
  "split": {"hintHeader": "x-route-to"}
}]}`

// TestIstio_PathSpellings sends spellings of /products/1 through the gateway
// istiod generates under Istio's default mesh config, whose path
// normalization (BASE) resolves dot segments and decodes unreserved escapes
// but merges no slashes, with a VirtualService whose fallback rule sends
// everything the plugin does not route to a backend that answers. Each
// spelling must get /products/1's route, rewrite and bucket, or be refused.
func TestIstio_PathSpellings(t *testing.T) {
	harness.EnvoyBinary(t)
	test.SetForTest(t, &features.MetadataExchange, false)
	test.SetForTest(t, &features.ALPNFilter, false)
	registry := harness.StartRegistry(t)
	v1, v2, fallback := startUpstream(t, v1Host), startUpstream(t, v2Host), startUpstream(t, fallbackHost)
	fh, fp, _ := net.SplitHostPort(fallback.addr)
	configs := upstreamConfigs(t, v1, v2) + fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: fallback, namespace: default}
spec:
  hosts: [%s]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: %q, ports: {http: %s}}]
`, fallbackHost, fh, fp)
	for _, b := range harness.Builds("") {
		t.Run(b.Name, func(t *testing.T) {
			harness.RequireModule(t, b)
			mg := startMeshGateway(t, b, registry, []byte(spellingPolicy), configs, "-fallback", fallbackHost+":8080")
			testSpellings(t, mg.gw)
		})
	}
}

// ratelimitRemaining reads r= of the RateLimit field.
var ratelimitRemaining = regexp.MustCompile(`^"products";r=(\d+);`)

func testSpellings(t *testing.T, gw *gatewayProcess) {
	// The premise: what istiod's default (BASE) gave the gateway.
	status, dump, err := harness.AdminGet(gw.client, gw.admin, "/config_dump?resource=dynamic_listeners")
	if err != nil || status != http.StatusOK {
		t.Fatalf("admin /config_dump: %d %v", status, err)
	}
	normalize := regexp.MustCompile(`"normalize_path": true`).MatchString(dump)
	merge := regexp.MustCompile(`"merge_slashes": true`).MatchString(dump)
	escaped := regexp.MustCompile(`"path_with_escaped_slashes_action": "(\w+)"`).FindStringSubmatch(dump)
	t.Logf("istiod's HTTP connection manager: normalize_path %v, merge_slashes %v, path_with_escaped_slashes_action %v",
		normalize, merge, escaped)
	if !normalize || merge {
		t.Fatalf("istiod's default mesh config set normalize_path %v, merge_slashes %v; this test expects BASE's true, false", normalize, merge)
	}

	if r := rawGet(t, gw, "/elsewhere"); r.status != http.StatusOK || r.reply.Service != fallbackHost {
		t.Fatalf("/elsewhere: status %d from %q, want the fallback to answer", r.status, r.reply.Service)
	}
	spellings := []string{"/products/1", "//products/1", "/products//1", "/products/./1", "/%70roducts/1",
		"/x/../products/1", "/%2e%2e/products/1", "///products///1"}
	remaining := -1
	for _, path := range spellings {
		r := rawGet(t, gw, path)
		switch {
		case r.status >= 400 && r.status < 500 && r.reply.Service == "":
			t.Logf("%-20s refused: %d", path, r.status)
			continue
		case r.status != http.StatusOK:
			t.Errorf("%-20s status %d, want 200 or a refusal", path, r.status)
			continue
		}
		m := ratelimitRemaining.FindStringSubmatch(r.header.Get("ratelimit"))
		t.Logf("%-20s → %s %s, ratelimit %q", path, r.reply.Service, r.reply.Path, r.header.Get("ratelimit"))
		if r.reply.Service != v1Host {
			t.Errorf("%s: answered by %s, want product-service (the policy route)", path, r.reply.Service)
		}
		if r.reply.Path != "/1" {
			t.Errorf("%s: upstream path %q, want /1", path, r.reply.Path)
		}
		if m == nil {
			t.Errorf("%s: no products bucket in RateLimit %q", path, r.header.Get("ratelimit"))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if remaining >= 0 && n != remaining-1 {
			t.Errorf("%s: %d tokens left after %d: not the same bucket", path, n, remaining)
		}
		remaining = n
	}
}

// spelled is one answer to rawGet.
type spelled struct {
	status int
	header http.Header
	reply  reply
}

// rawGet sends GET path on a new connection exactly as written (an HTTP
// client would clean or re-escape some spellings).
func rawGet(t *testing.T, gw *gatewayProcess, path string) spelled {
	t.Helper()
	host := strings.TrimPrefix(gw.url, "http://")
	conn, err := net.DialTimeout("tcp", host, requestTimout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	s := spelled{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &s.reply); err != nil {
			t.Fatalf("GET %s: body %q: %v", path, body, err)
		}
	}
	return s
}
