package vsimport

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// RouteTable is what render writes around an imported policy: the gateway
// the rendered VirtualService binds to and its hosts (render's -gateway and
// -hosts).
type RouteTable struct {
	Gateway string   `json:"gateway"`
	Hosts   []string `json:"hosts"`
}

// YAML returns the route table as a YAML document, with a comment naming
// what it was imported from.
func (t RouteTable) YAML(sources []string) []byte {
	out, _ := yaml.Marshal(t) // two strings and a list of strings always marshal
	head := "# The route table of the policy imported from " + strings.Join(sources, ", ") + ":\n# wasmgate render -route-table FILE binds the rendered VirtualService to this gateway and hosts.\n"
	return append([]byte(head), out...)
}

// ReadRouteTable reads a file RouteTable.YAML wrote.
func ReadRouteTable(file string) (RouteTable, error) {
	var t RouteTable
	data, err := os.ReadFile(file)
	if err != nil {
		return t, err
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		err = dec.Decode(&t)
	}
	switch {
	case err != nil:
		return t, fmt.Errorf("%s: %w", file, err)
	case t.Gateway == "" || len(t.Hosts) == 0:
		return t, fmt.Errorf("%s: want a gateway and hosts", file)
	}
	return t, nil
}

// routeTable checks that the VirtualServices can share one rendered
// VirtualService and returns it: one gateway, and the hosts of all. Their
// rules are confined to their own hosts (scope), so they can differ, except
// that "*" cannot be mixed with named hosts: Istio gives a named host's
// requests to its own VirtualServices only, and the rules of a "*" one
// would take them here.
func (im *importer) routeTable() RouteTable {
	var t RouteTable
	var first, wildcard, named *document
	for _, d := range im.docs {
		im.doc = d
		gw := im.gateway(d)
		if len(d.hosts) == 0 {
			im.bad("spec.hosts", "missing: import needs the hosts the rules serve")
			continue
		}
		if slices.Contains(d.hosts, "*") {
			wildcard = cmp.Or(wildcard, d)
		} else {
			named = cmp.Or(named, d)
		}
		if wildcard != nil && named != nil {
			other := map[*document]*document{wildcard: named, named: wildcard}[d]
			im.refuse("spec.hosts", fmt.Sprintf("%s with %s's %s: import VirtualServices for \"*\" and for named hosts on their own", strings.Join(d.hosts, ", "), other.where, strings.Join(other.hosts, ", ")))
			continue
		}
		for _, h := range d.hosts {
			if !slices.Contains(t.Hosts, h) {
				t.Hosts = append(t.Hosts, h)
			}
		}
		switch {
		case gw == "":
		case first == nil:
			first, t.Gateway = d, gw
		case gw != t.Gateway:
			im.refuse("spec.gateways", fmt.Sprintf("binds to %s, %s to %s: the policy is one gateway's; import each gateway's VirtualServices on their own", gw, first.where, t.Gateway))
		}
	}
	return t
}

// gateway returns the one gateway d binds to, "namespace/name".
func (im *importer) gateway(d *document) string {
	switch {
	case len(d.gateways) == 0:
		im.refuse("spec.gateways", "missing, so the rules apply to sidecars (mesh) only; the plugin runs at a gateway")
		return ""
	case len(d.gateways) > 1:
		im.refuse("spec.gateways", "more than one gateway: the policy is one gateway's; import each gateway's rules on their own")
		return ""
	}
	gw := d.gateways[0]
	if gw == "mesh" {
		im.refuse("spec.gateways[0]", meshOnly)
		return ""
	}
	if strings.Contains(gw, "/") {
		return gw
	}
	if d.namespaceDefaulted {
		im.warn("spec.gateways[0]", "read as %s/%s: the VirtualService names no namespace (import -namespace sets it)", d.namespace, gw)
	}
	return d.namespace + "/" + gw
}
