// Package envoyconfig derives an Envoy configuration that serves a policy
// from the repository's envoy.yaml: the policy as the plugin configuration,
// one route per hint header and one cluster per destination hint, so every
// destination the policy names has an upstream, and the matched policy route
// in every response (RouteHeader).
package envoyconfig

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

// DefaultCluster receives the requests no hint header routes.
const DefaultCluster = "default-backend"

// RouteHeader is the response header the configuration adds with the policy
// route that matched the request (the plugin's filter state
// wasm.wasmgate_route), "-" when none did.
const RouteHeader = "x-wasmgate-route"

// Cluster is one upstream a policy's destinations need.
type Cluster struct {
	// Name is the destination's hint: the value the plugin writes to the
	// hint header, which Envoy's route takes as the cluster name.
	Name string
	// Host is the destination's host, as the policy names it.
	Host string
}

// Needs returns the clusters a policy (JSON) routes to, in policy order, and
// its hint headers.
func Needs(policyJSON []byte) (clusters []Cluster, hintHeaders []string, err error) {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range pol.Routes() {
		if r.Split == nil {
			continue
		}
		if !slices.Contains(hintHeaders, r.Split.HintHeader) {
			hintHeaders = append(hintHeaders, r.Split.HintHeader)
		}
		for _, d := range r.Split.Destinations {
			if !slices.ContainsFunc(clusters, func(c Cluster) bool { return c.Name == d.Hint }) {
				clusters = append(clusters, Cluster{Name: d.Hint, Host: d.Host})
			}
		}
	}
	return clusters, hintHeaders, nil
}

// Options say what to change in the template.
type Options struct {
	// Policy is the plugin configuration (JSON).
	Policy []byte
	// Wasm is the module's path.
	Wasm string
	// GatewayPort and AdminPort are the listener's and the admin
	// interface's ports (0: the kernel picks).
	GatewayPort, AdminPort int
	// Upstreams maps every cluster of Needs, and DefaultCluster, to an
	// address "127.0.0.1:port".
	Upstreams map[string]string
}

// Render returns the template (envoy.yaml) changed as o says. Comments are
// not kept.
func Render(template []byte, o Options) ([]byte, error) {
	clusters, hintHeaders, err := Needs(o.Policy)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(template, &cfg); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	e := editor{}
	e.set(cfg, o.AdminPort, "admin", "address", "socket_address", "port_value")
	listener := e.get(cfg, "static_resources", "listeners", 0)
	e.set(listener, o.GatewayPort, "address", "socket_address", "port_value")
	hcm := e.get(listener, "filter_chains", 0, "filters", 0, "typed_config")
	filters, _ := e.get(hcm, "http_filters").([]any)
	wasmFilter := -1
	for i, f := range filters {
		if m, ok := f.(map[string]any); ok && m["name"] == "envoy.filters.http.wasm" {
			wasmFilter = i
		}
	}
	if wasmFilter < 0 {
		e.fail("no envoy.filters.http.wasm in the first listener's http_filters")
	}
	plugin := e.get(hcm, "http_filters", wasmFilter, "typed_config", "config")
	e.set(plugin, o.Wasm, "vm_config", "code", "local", "filename")
	e.set(plugin, string(o.Policy), "configuration", "value")

	var routes []any
	for _, h := range hintHeaders {
		routes = append(routes, map[string]any{
			"name":  "hint-" + h,
			"match": map[string]any{"prefix": "/", "headers": []any{map[string]any{"name": h, "present_match": true}}},
			"route": map[string]any{"cluster_header": h},
		})
	}
	routes = append(routes, map[string]any{"name": "default", "match": map[string]any{"prefix": "/"},
		"route": map[string]any{"cluster": DefaultCluster}})
	vhost, _ := e.get(hcm, "route_config", "virtual_hosts", 0).(map[string]any)
	if vhost != nil {
		vhost["routes"] = routes
		vhost["response_headers_to_add"] = []any{map[string]any{
			"header":        map[string]any{"key": RouteHeader, "value": "%FILTER_STATE(wasm." + policy.RouteProperty + ":PLAIN)%"},
			"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
		}}
	}

	var cs []any
	for _, name := range append(clusterNames(clusters), DefaultCluster) {
		addr, ok := o.Upstreams[name]
		if !ok {
			return nil, fmt.Errorf("no upstream address for cluster %q", name)
		}
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return nil, fmt.Errorf("upstream %q: %q is not host:port", name, addr)
		}
		cs = append(cs, map[string]any{
			"name": name, "type": "STATIC",
			"load_assignment": map[string]any{"cluster_name": name, "endpoints": []any{map[string]any{
				"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": map[string]any{
					"socket_address": map[string]any{"address": host, "port_value": n}}}}}}}},
		})
	}
	e.set(cfg, cs, "static_resources", "clusters")
	if e.err != nil {
		return nil, fmt.Errorf("template: %w", e.err)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func clusterNames(cs []Cluster) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// editor walks and edits decoded YAML, keeping the first error.
type editor struct{ err error }

func (e *editor) fail(msg string) {
	if e.err == nil {
		e.err = errors.New(msg)
	}
}

// get follows keys (string for maps, int for lists) from v.
func (e *editor) get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				e.fail(fmt.Sprintf("no map holding %q", k))
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				e.fail(fmt.Sprintf("no list with an item %d", k))
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// set sets the value at path (whose last element is a map key) under v.
func (e *editor) set(v any, value any, path ...any) {
	parent, ok := e.get(v, path[:len(path)-1]...).(map[string]any)
	key, _ := path[len(path)-1].(string)
	if !ok {
		e.fail(fmt.Sprintf("no map to set %q in", key))
		return
	}
	if _, exists := parent[key]; !exists {
		e.fail(fmt.Sprintf("no %q to replace", key))
		return
	}
	parent[key] = value
}
