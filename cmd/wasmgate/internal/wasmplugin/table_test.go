package wasmplugin

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRender_RouteTable renders a policy with every route-table feature,
// two routes sharing a destination and one route without destinations
// (validated by the CRDs, as every Render): the table rules match the hint
// and the route header and come before the plain ones.
func TestRender_RouteTable(t *testing.T) {
	_, digest := testImage(t)
	pol, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "policy", "testdata", "valid", "route-table.json"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(pol, Options{Image: "registry.example/wasmgate:v1", Digest: digest, Fallback: "web.prod.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Objects{objs[1]}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "virtualservice-route-table.yaml"), got)
}
