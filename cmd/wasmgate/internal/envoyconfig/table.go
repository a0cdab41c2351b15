package envoyconfig

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

// The HTTP filters that act on a policy route's Table, and their per-route
// configuration types.
const (
	corsFilter  = "envoy.filters.http.cors"
	faultFilter = "envoy.filters.http.fault"
	corsType    = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
	faultType   = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
)

// tableRoutes returns, for every policy route with a Table and every
// destination it may pick, a route matching the hint and the route header
// (policy.RouteHeader) exactly, with the route's timeout, retries, mirrors
// and per-filter configuration (CORS, delay); a route without destinations
// gets one route matching the route header, to DefaultCluster. They go
// before the plain per-destination routes, which would take the same
// requests without the route's features.
func tableRoutes(pol *policy.Policy) []Route {
	var out []Route
	for _, r := range pol.Routes() {
		if r.Table == nil {
			continue
		}
		routeHeader := HeaderMatch{Name: policy.RouteHeader, StringMatch: StringMatch{Exact: r.Name}}
		if r.Split == nil {
			out = append(out, tableRoute(r.Table, r.Name, DefaultCluster, []HeaderMatch{routeHeader}))
			continue
		}
		for _, d := range r.Split.Destinations {
			out = append(out, tableRoute(r.Table, r.Name+"/"+d.Hint, d.Hint, []HeaderMatch{
				{Name: r.Split.HintHeader, StringMatch: StringMatch{Exact: d.Hint}}, routeHeader}))
		}
	}
	return out
}

func tableRoute(t *policy.Table, name, cluster string, headers []HeaderMatch) Route {
	rt := Route{Name: name, Match: RouteMatch{Prefix: "/", Headers: headers}, Route: RouteAction{Cluster: cluster}}
	if t.Timeout > 0 {
		rt.Route.Timeout = seconds(t.Timeout)
	}
	if t.Retries != nil && t.Retries.Attempts > 0 {
		rt.Route.RetryPolicy = retryPolicy(t.Retries)
	}
	for _, m := range t.Mirrors {
		mp := map[string]any{"cluster": m.Destination.Hint}
		if m.PerMillion < perMillion {
			mp["runtime_fraction"] = map[string]any{"default_value": fraction(m.PerMillion)}
		}
		rt.Route.RequestMirrorPolicies = append(rt.Route.RequestMirrorPolicies, mp)
	}
	if t.CORS != nil || t.Delay != nil {
		rt.TypedPerFilterConfig = map[string]any{}
	}
	if t.CORS != nil {
		rt.TypedPerFilterConfig[corsFilter] = corsPolicy(t.CORS)
	}
	if t.Delay != nil {
		delay := map[string]any{"fixed_delay": seconds(t.Delay.FixedDelay), "percentage": fraction(t.Delay.PerMillion)}
		rt.TypedPerFilterConfig[faultFilter] = map[string]any{"@type": faultType, "delay": delay}
	}
	return rt
}

// istioRetryOn is what Istio retries on when a route's retries do not say.
const istioRetryOn = "connect-failure,refused-stream,unavailable,cancelled,503"

// retryPolicy is Envoy's RetryPolicy for r, as Istio translates HTTPRetry:
// status codes in retryOn become retriable_status_codes.
func retryPolicy(r *policy.Retries) map[string]any {
	var on []string
	var codes []int
	for _, c := range strings.Split(cmp.Or(r.RetryOn, istioRetryOn), ",") {
		if n, err := strconv.Atoi(c); err == nil {
			codes = append(codes, n)
		} else {
			on = append(on, c)
		}
	}
	if len(codes) > 0 && !slices.Contains(on, "retriable-status-codes") {
		on = append(on, "retriable-status-codes")
	}
	rp := map[string]any{"retry_on": strings.Join(on, ","), "num_retries": r.Attempts}
	if len(codes) > 0 {
		rp["retriable_status_codes"] = codes
	}
	if r.PerTryTimeout > 0 {
		rp["per_try_timeout"] = seconds(r.PerTryTimeout)
	}
	return rp
}

func corsPolicy(c *policy.CORSPolicy) map[string]any {
	cp := map[string]any{"@type": corsType}
	if len(c.AllowOrigins) > 0 {
		var origins []any
		for _, o := range c.AllowOrigins {
			switch {
			case o.Exact != "":
				origins = append(origins, map[string]any{"exact": o.Exact})
			case o.Prefix != "":
				origins = append(origins, map[string]any{"prefix": o.Prefix})
			default:
				origins = append(origins, map[string]any{"safe_regex": map[string]any{"regex": o.Regex}})
			}
		}
		cp["allow_origin_string_match"] = origins
	}
	for key, list := range map[string][]string{"allow_methods": c.AllowMethods, "allow_headers": c.AllowHeaders, "expose_headers": c.ExposeHeaders} {
		if len(list) > 0 {
			cp[key] = strings.Join(list, ",")
		}
	}
	if c.MaxAge > 0 {
		cp["max_age"] = strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
	if c.AllowCredentials != nil {
		cp["allow_credentials"] = *c.AllowCredentials
	}
	return cp
}

// tableFilters adds the cors and fault filters to the HTTP filters, after
// the plugin and before the router (the order Istio's gateways use: fault,
// then cors), when a route of pol needs them and the list lacks them. The
// plugin runs first, so the route these filters read their per-route
// configuration from is the one selected on the plugin's headers.
func tableFilters(filters *yaml.Node, pol *policy.Policy) {
	if filters == nil {
		return
	}
	var cors, fault bool
	for _, r := range pol.Routes() {
		if r.Table != nil {
			cors = cors || r.Table.CORS != nil
			fault = fault || r.Table.Delay != nil
		}
	}
	add := func(name, typ string) {
		if slices.ContainsFunc(filters.Content, func(f *yaml.Node) bool { return scalar(f, "name") == name }) {
			return
		}
		router := slices.IndexFunc(filters.Content, func(f *yaml.Node) bool { return scalar(f, "name") == "envoy.filters.http.router" })
		if router < 0 {
			router = len(filters.Content)
		}
		filters.Content = slices.Insert(filters.Content, router, node(map[string]any{"name": name, "typed_config": map[string]any{"@type": typ}}))
	}
	if fault {
		add(faultFilter, "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault")
	}
	if cors {
		add(corsFilter, "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors")
	}
}

// mirrorClusters returns the clusters the mirrors of pol's routes copy
// requests to that are not in have.
func mirrorClusters(pol *policy.Policy, have []Cluster) []Cluster {
	var out []Cluster
	for _, r := range pol.Routes() {
		if r.Table == nil {
			continue
		}
		for _, m := range r.Table.Mirrors {
			name := m.Destination.Hint
			if !slices.ContainsFunc(have, func(c Cluster) bool { return c.Name == name }) &&
				!slices.ContainsFunc(out, func(c Cluster) bool { return c.Name == name }) {
				out = append(out, Cluster{Name: name, Host: m.Destination.Host})
			}
		}
	}
	return out
}

// seconds is d as a protobuf Duration's JSON form.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

const perMillion = 1_000_000

// fraction is a share in parts per million as Envoy's FractionalPercent.
func fraction(ppm uint64) map[string]any {
	return map[string]any{"numerator": ppm, "denominator": "MILLION"}
}
