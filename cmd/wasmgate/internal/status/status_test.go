package status

import (
	"reflect"
	"testing"
)

const policyJSON = `{"routes": [
 {"name": "products", "match": [{"uri": {"pathPrefix": "/products"}}],
  "route": [{"destination": {"host": "v1"}, "weight": 90}, {"destination": {"host": "v2", "subset": "canary"}, "weight": 10}],
  "split": {"hintHeader": "x-route-to"},
  "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"}}},
 {"name": "admin", "match": [{"uri": {"pathPrefix": "/admin"}}]},
 {"name": "search", "match": [{"uri": {"pathPrefix": "/search"}}], "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"}}}
]}`

func TestCheck(t *testing.T) {
	stats := ParseStats(`wasmcustom.wasmgate.config_rejected: 1
wasmcustom.wasmgate.route.products.matched: 100
wasmcustom.wasmgate.route.products.rate_limited: 3
wasmcustom.wasmgate.route.products.shadow_limited: 0
wasmcustom.wasmgate.route.products.destination.v1.picked: 88
wasmcustom.wasmgate.route.products.destination.v2_canary.picked: 9
wasmcustom.wasmgate.route.admin.matched: 0
wasmcustom.wasmgate.route.search.matched: 7
http.gateway.no_cluster: 2
http.admin.no_cluster: 0
cluster.x.upstream_rq: 5`)
	got, err := Check(stats, []byte(policyJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{true, "the plugin refused 1 configurations (wasmgate.config_rejected): the gateway runs an older policy, or none"},
		{false, "products: 100 matched, 3 limited, 0 over a shadow limit"},
		{false, "products: split v1 90.7% (configured 90), v2|canary 9.3% (configured 10) over 97 picks"},
		{true, "admin: never matched"},
		{false, "search: 7 matched, 0 limited, 0 over a shadow limit"},
		{true, "search: its rateLimit never fired"},
		{true, "503 NC (no cluster for the hinted destination): http.gateway.no_cluster 2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings\n%+v\nwant\n%+v", got, want)
	}
}

func TestCheck_NotThisPolicy(t *testing.T) {
	got, err := Check(ParseStats("wasmcustom.wasmgate.route.other.matched: 4\n"), []byte(policyJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "no counter of this policy's routes exists: the gateway does not run this policy" {
		t.Fatalf("%+v", got)
	}
}
