package envoyconfig

import (
	"fmt"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

// Finding is one route of an Envoy configuration that a client steers with
// a header the policy does not control.
type Finding struct {
	// Path locates the route: listener, virtual host and route, each by
	// name when it has one.
	Path   string
	Reason string
}

func (f Finding) String() string { return f.Path + ": warning: " + f.Reason }

// Check returns the routes of an Envoy bootstrap (YAML or JSON, static
// listeners) that a client can steer: every cluster_header, and every
// header match on a header the plugin neither writes nor removes from every
// request (its hint headers). The policy is the plugin configuration in the
// same listener, or pol when not nil (for a configuration whose plugin
// arrives by ECDS).
func Check(config []byte, pol []byte) ([]Finding, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("not a YAML document")
	}
	var out []Finding
	listeners := Value(Value(doc.Content[0], "static_resources"), "listeners")
	for li, l := range content(listeners) {
		lpath := "listeners[" + label(l, li) + "]"
		for _, chain := range content(Value(l, "filter_chains")) {
			for _, f := range content(Value(chain, "filters")) {
				hcm := Value(f, "typed_config")
				controlled, err := hintHeaders(hcm, pol)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", lpath, err)
				}
				for vi, vh := range content(Value(Value(hcm, "route_config"), "virtual_hosts")) {
					for ri, r := range content(Value(vh, "routes")) {
						path := lpath + ".virtual_hosts[" + label(vh, vi) + "].routes[" + label(r, ri) + "]"
						out = append(out, checkRoute(path, r, controlled)...)
					}
				}
			}
		}
	}
	return out, nil
}

func checkRoute(path string, r *yaml.Node, controlled []string) []Finding {
	var out []Finding
	action := Value(r, "route")
	if h := scalar(action, "cluster_header"); h != "" {
		out = append(out, Finding{path, fmt.Sprintf("cluster_header %q: the request reaches whatever cluster it names there, "+
			"an internal one too; route each destination hint to its cluster by an exact header match (wasmgate envoy-config)", h)})
	}
	for _, c := range content(Value(Value(action, "weighted_clusters"), "clusters")) {
		if h := scalar(c, "cluster_header"); h != "" {
			out = append(out, Finding{path, fmt.Sprintf("weighted cluster_header %q: the request reaches whatever cluster it names there", h)})
		}
	}
	for _, m := range content(Value(Value(r, "match"), "headers")) {
		if h := scalar(m, "name"); !slices.Contains(controlled, h) {
			out = append(out, Finding{path, fmt.Sprintf("matches request header %q, which the plugin neither writes nor removes: "+
				"a client picks this route by sending it", h)})
		}
	}
	return out
}

// hintHeaders returns the hint headers of the policy that the connection
// manager hcm's Wasm filter runs (or of pol): the headers the plugin removes
// from every request and then writes itself.
func hintHeaders(hcm *yaml.Node, pol []byte) ([]string, error) {
	if pol == nil {
		v := pluginPolicy(hcm)
		if v == nil {
			return nil, nil
		}
		pol = []byte(v.Value)
	}
	p, err := policy.Parse(pol)
	if err != nil {
		return nil, fmt.Errorf("the plugin configuration: %w", err)
	}
	return p.HintHeaders(), nil
}

// content returns the items of a sequence node, nil for anything else.
func content(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// label is an item's name, else its index.
func label(n *yaml.Node, i int) string {
	if name := scalar(n, "name"); name != "" {
		return name
	}
	return strconv.Itoa(i)
}
