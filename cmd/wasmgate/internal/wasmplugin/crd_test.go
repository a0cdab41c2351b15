package wasmplugin

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite crds.gen.yaml from istio.io/api")

// TestCRDs_Current checks that crds.gen.yaml holds exactly the CRDs of the
// kinds rendered here from the istio.io/api version in go.mod; -update
// rewrites it.
func TestCRDs_Current(t *testing.T) {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("go list -m istio.io/api: %v", err)
	}
	all, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := SplitDocuments(all)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.WriteString("# The CRDs of WasmPlugin, VirtualService and Gateway, copied from\n# istio.io/api's kubernetes/customresourcedefinitions.gen.yaml by\n# `go test -run TestCRDs_Current -update`. Do not edit.\n")
	for _, name := range crdKinds {
		found := false
		for _, doc := range docs {
			var head struct {
				Metadata struct{ Name string } `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatal(err)
			}
			if head.Metadata.Name == name {
				want.WriteString("---\n")
				want.Write(bytes.TrimPrefix(doc, []byte("---\n")))
				found = true
			}
		}
		if !found {
			t.Fatalf("istio.io/api has no CRD %s", name)
		}
	}
	if *update {
		if err := os.WriteFile("crds.gen.yaml", want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(crdYAML, want.Bytes()) {
		t.Fatal("crds.gen.yaml is not istio.io/api's: run `go test -run TestCRDs_Current -update`")
	}
}
