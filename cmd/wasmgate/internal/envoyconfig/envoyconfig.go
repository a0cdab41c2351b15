// Package envoyconfig derives every Envoy configuration the project runs
// from a shipped one (envoy.yaml, deploy/envoy-remote.yaml,
// deploy/envoy-native.yaml): the policy as the plugin configuration, the
// module, the ports, the clusters, the access log, and a route table that
// reaches only the destinations the policy names. `wasmgate envoy-config`,
// `make run`, the benchmark and the end-to-end tests all go through Derive.
//
// The route table has one route per destination hint, an exact match of the
// hint header on that hint, then the default route. No route takes its
// cluster from a header (cluster_header), so a client that writes a header
// the plugin does not control reaches no cluster the policy does not name.
// Check says when a configuration breaks that rule.
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

// RouteHeader is the response header Options.RouteHeader adds with the
// policy route that matched the request (the plugin's filter state
// wasm.wasmgate_route), "-" when none did.
const RouteHeader = "x-wasmgate-route"

// Keep, as a port of Options, keeps the template's port.
const Keep = -1

const wasmFilter = "envoy.filters.http.wasm"

// Cluster is one upstream a policy's destinations need.
type Cluster struct {
	// Name is the destination's hint: the value the plugin writes to the
	// hint header, and the name of the cluster its route sends to.
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
	clusters = needs(pol)
	return clusters, pol.HintHeaders(), nil
}

func needs(pol *policy.Policy) []Cluster {
	var clusters []Cluster
	for _, r := range pol.Routes() {
		if r.Split == nil {
			continue
		}
		for _, d := range r.Split.Destinations {
			if !slices.ContainsFunc(clusters, func(c Cluster) bool { return c.Name == d.Hint }) {
				clusters = append(clusters, Cluster{Name: d.Hint, Host: d.Host})
			}
		}
	}
	return append(clusters, mirrorClusters(pol, clusters)...)
}

// Route is one entry of an Envoy virtual host's routes, as the route table
// of a policy writes it.
type Route struct {
	Name  string      `yaml:"name"`
	Match RouteMatch  `yaml:"match"`
	Route RouteAction `yaml:"route"`
	// TypedPerFilterConfig configures the cors and fault filters for the
	// route (see tableRoutes).
	TypedPerFilterConfig map[string]any `yaml:"typed_per_filter_config,omitempty"`
}

// RouteMatch matches every path, and the hint header when Headers is set.
type RouteMatch struct {
	Prefix  string        `yaml:"prefix"`
	Headers []HeaderMatch `yaml:"headers,omitempty"`
}

// HeaderMatch is an exact match of one request header.
type HeaderMatch struct {
	Name        string      `yaml:"name"`
	StringMatch StringMatch `yaml:"string_match"`
}

// StringMatch is Envoy's type.matcher.v3.StringMatcher, exact only.
type StringMatch struct {
	Exact string `yaml:"exact"`
}

// RouteAction sends to one named cluster, with what a policy route asks of
// the route table (see tableRoutes).
type RouteAction struct {
	Cluster               string         `yaml:"cluster"`
	Timeout               string         `yaml:"timeout,omitempty"`
	RetryPolicy           map[string]any `yaml:"retry_policy,omitempty"`
	RequestMirrorPolicies []any          `yaml:"request_mirror_policies,omitempty"`
}

// Routes returns the route table of a policy: first the routes of what
// policy routes ask of the route table (tableRoutes); then for every route's
// hint header and every hint its destinations write there, in policy order, a route
// matching exactly that value and sending to the cluster of that name; then
// the default route to DefaultCluster.
func Routes(pol *policy.Policy) []Route {
	out := tableRoutes(pol)
	for _, r := range pol.Routes() {
		if r.Split == nil {
			continue
		}
		h := r.Split.HintHeader
		for _, d := range r.Split.Destinations {
			name := h + "=" + d.Hint
			if slices.ContainsFunc(out, func(r Route) bool { return r.Name == name }) {
				continue
			}
			out = append(out, Route{Name: name,
				Match: RouteMatch{Prefix: "/", Headers: []HeaderMatch{{Name: h, StringMatch: StringMatch{Exact: d.Hint}}}},
				Route: RouteAction{Cluster: d.Hint}})
		}
	}
	return append(out, Route{Name: "default", Match: RouteMatch{Prefix: "/"}, Route: RouteAction{Cluster: DefaultCluster}})
}

// Options say what Derive changes in the template. The zero value changes
// nothing but the ports (to 0): set them to Keep to keep the template's.
type Options struct {
	// Policy is the plugin configuration (JSON); nil keeps the template's.
	Policy []byte
	// Unchecked puts a Policy the plugin refuses in all the same, the route
	// table then being the template policy's: to see how Envoy refuses it.
	Unchecked bool
	// Wasm is the module's path; "" keeps the template's.
	Wasm string
	// GatewayPort and AdminPort are the first listener's and the admin
	// interface's ports (0: the kernel picks; Keep: the template's).
	GatewayPort, AdminPort int
	// Upstreams maps clusters to an address "host:port": a template cluster
	// of that name gets it as its one endpoint; any other becomes a new
	// cluster, a copy of Like's template cluster (default DefaultCluster).
	// Every cluster the policy needs that the template lacks must be here.
	Upstreams map[string]string
	// Like maps a new cluster to the template cluster whose settings it
	// copies (e.g. an HTTP/2 one for a gRPC service).
	Like map[string]string
	// NoAccessLog removes the HTTP connection manager's access_log.
	NoAccessLog bool
	// NoPlugin removes the Wasm filter (the router alone); the route table
	// stays the policy's.
	NoPlugin bool
	// RouteHeader adds RouteHeader to every response.
	RouteHeader bool
	// Edit, if set, changes the derived document last.
	Edit func(doc *yaml.Node) error
}

// Derive returns the template changed as o says. Routes always follow the
// policy: the template's own route table is replaced by Routes of the
// policy in effect (when the template has the plugin). Clusters named by
// the template policy's destinations that the policy in effect does not
// need are dropped; the template's other clusters (a rate limit service,
// a module server) stay.
func Derive(template []byte, o Options) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(template, &doc); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if len(doc.Content) != 1 {
		return nil, errors.New("template: not a YAML document")
	}
	root := doc.Content[0]
	t := &tree{}
	hcm := t.at(root, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	filters := t.at(hcm, "http_filters")
	plugin := pluginFilter(filters)
	var templatePolicy, pol *policy.Policy
	var config *yaml.Node
	if plugin != nil {
		config = t.at(plugin, "typed_config", "config")
		if v := t.at(config, "configuration", "value"); v != nil {
			// A template whose policy is a placeholder (e.g. "{}") is fine
			// when the policy in effect is given.
			p, err := policy.Parse([]byte(v.Value))
			if err != nil && o.Policy == nil {
				return nil, fmt.Errorf("template: the plugin configuration: %w", err)
			}
			if err == nil {
				templatePolicy, pol = p, p
			}
		}
	} else if o.Policy != nil || o.Wasm != "" {
		t.fail("the first listener has no " + wasmFilter + " filter")
	}
	if t.err != nil {
		return nil, fmt.Errorf("template: %w", t.err)
	}
	if o.Policy != nil {
		p, err := policy.Parse(o.Policy)
		if err != nil && !o.Unchecked {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if err == nil {
			pol = p
		}
		v := t.at(config, "configuration", "value")
		v.Value, v.Style = string(o.Policy), yaml.LiteralStyle
	}
	if o.Wasm != "" {
		f := t.at(config, "vm_config", "code", "local", "filename")
		if f != nil {
			f.Value, f.Style = o.Wasm, yaml.DoubleQuotedStyle
		}
	}
	t.port(root, o.AdminPort, "admin", "address", "socket_address", "port_value")
	t.port(root, o.GatewayPort, "static_resources", "listeners", 0, "address", "socket_address", "port_value")
	var vhost *yaml.Node
	if pol != nil || o.RouteHeader {
		vhost = t.at(hcm, "route_config", "virtual_hosts", 0)
	}
	if pol != nil && vhost != nil {
		setKey(vhost, "routes", node(Routes(pol)))
		tableFilters(filters, pol)
	}
	if o.RouteHeader && vhost != nil {
		setKey(vhost, "response_headers_to_add", node([]any{map[string]any{
			"header":        map[string]any{"key": RouteHeader, "value": "%FILTER_STATE(wasm." + policy.RouteProperty + ":PLAIN)%"},
			"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
		}}))
	}
	if o.NoAccessLog && hcm != nil && !deleteKey(hcm, "access_log") {
		t.fail("no access_log to remove")
	}
	if o.NoPlugin {
		if plugin == nil {
			t.fail("no " + wasmFilter + " filter to remove")
		} else {
			filters.Content = slices.DeleteFunc(filters.Content, func(n *yaml.Node) bool { return n == plugin })
		}
	}
	if t.err != nil {
		return nil, fmt.Errorf("template: %w", t.err)
	}
	if err := clusters(t.at(root, "static_resources", "clusters"), templatePolicy, pol, o); err != nil {
		return nil, err
	}
	if t.err != nil {
		return nil, fmt.Errorf("template: %w", t.err)
	}
	if o.Edit != nil {
		if err := o.Edit(&doc); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// clusters edits the template's cluster list: see Derive and Options.
func clusters(list *yaml.Node, templatePolicy, pol *policy.Policy, o Options) error {
	var need []string
	if pol != nil {
		for _, c := range needs(pol) {
			need = append(need, c.Name)
		}
	}
	need = append(need, DefaultCluster)
	var dropped []string
	if templatePolicy != nil {
		for _, c := range needs(templatePolicy) {
			if _, given := o.Upstreams[c.Name]; !given && !slices.Contains(need, c.Name) {
				dropped = append(dropped, c.Name)
			}
		}
	}
	byName := map[string]*yaml.Node{}
	list.Content = slices.DeleteFunc(list.Content, func(c *yaml.Node) bool {
		name := scalar(c, "name")
		byName[name] = c
		return slices.Contains(dropped, name)
	})
	extra := make([]string, 0, len(o.Upstreams))
	for name := range o.Upstreams {
		if !slices.Contains(need, name) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range append(need, extra...) {
		addr, given := o.Upstreams[name]
		c, exists := byName[name]
		if !given {
			if !exists {
				return fmt.Errorf("no upstream address for cluster %q", name)
			}
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil {
			return fmt.Errorf("upstream %q: %q is not host:port", name, addr)
		}
		if !exists {
			like := o.Like[name]
			if like == "" {
				like = DefaultCluster
			}
			base, ok := byName[like]
			if !ok {
				return fmt.Errorf("cluster %q: the template has no cluster %q to copy", name, like)
			}
			c = deepCopy(base)
			setKey(c, "name", node(name))
			list.Content = append(list.Content, c)
		}
		setKey(c, "load_assignment", node(map[string]any{"cluster_name": name, "endpoints": []any{map[string]any{
			"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": map[string]any{
				"socket_address": map[string]any{"address": host, "port_value": n}}}}}}}}))
	}
	return nil
}

// TemplatePolicy returns the plugin configuration (the policy) of a
// template's first listener; nil when it runs no plugin.
func TemplatePolicy(template []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(template, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, errors.New("not a YAML document")
	}
	t := &tree{}
	hcm := t.at(doc.Content[0], "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	if t.err != nil {
		return nil, t.err
	}
	if v := pluginPolicy(hcm); v != nil {
		return []byte(v.Value), nil
	}
	return nil, nil
}

// pluginPolicy returns the policy text node of the Wasm filter of the HTTP
// connection manager hcm, or nil.
func pluginPolicy(hcm *yaml.Node) *yaml.Node {
	plugin := pluginFilter(Value(hcm, "http_filters"))
	return Value(Value(Value(Value(plugin, "typed_config"), "config"), "configuration"), "value")
}

// pluginFilter returns the Wasm filter of an http_filters list, or nil.
func pluginFilter(filters *yaml.Node) *yaml.Node {
	if filters == nil {
		return nil
	}
	for _, f := range filters.Content {
		if scalar(f, "name") == wasmFilter {
			return f
		}
	}
	return nil
}

// tree walks a YAML document, keeping the first error.
type tree struct{ err error }

func (t *tree) fail(msg string) {
	if t.err == nil {
		t.err = errors.New(msg)
	}
}

// at follows keys (string for maps, int for lists) from n; nil (and an
// error) when one is missing.
func (t *tree) at(n *yaml.Node, path ...any) *yaml.Node {
	where := ""
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch k := p.(type) {
		case string:
			n = Value(n, k)
			where += "." + k
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				n = nil
			} else {
				n = n.Content[k]
			}
			where += "[" + strconv.Itoa(k) + "]"
		}
		if n == nil {
			t.fail("no " + where[min(1, len(where)):])
		}
	}
	return n
}

func (t *tree) port(root *yaml.Node, port int, path ...any) {
	if port == Keep {
		return
	}
	if n := t.at(root, path...); n != nil {
		n.Value, n.Tag, n.Style = strconv.Itoa(port), "!!int", 0
	}
}

// Value returns the value of key in mapping n, or nil.
func Value(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Walk calls f on n and every node below it.
func Walk(n *yaml.Node, f func(*yaml.Node)) {
	f(n)
	for _, c := range n.Content {
		Walk(c, f)
	}
}

func scalar(n *yaml.Node, key string) string {
	if v := Value(n, key); v != nil {
		return v.Value
	}
	return ""
}

// setKey sets key in mapping n to v, appending it when missing.
func setKey(n *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = v
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// deleteKey removes key from mapping n, reporting whether it was there.
func deleteKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = slices.Delete(n.Content, i, i+2)
			return true
		}
	}
	return false
}

// node encodes a Go value as a YAML node; the values here always encode.
func node(v any) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		panic(err)
	}
	return &n
}

func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = deepCopy(k)
	}
	return &c
}
