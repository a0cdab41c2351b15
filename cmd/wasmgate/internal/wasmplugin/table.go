package wasmplugin

import (
	"strconv"
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// ruleTable is what a policy route asks of the route table, as the fields
// of Istio's HTTPRoute.
type ruleTable struct {
	Timeout          string          `json:"timeout,omitempty"`
	Retries          *httpRetry      `json:"retries,omitempty"`
	CorsPolicy       *corsPolicy     `json:"corsPolicy,omitempty"`
	Mirror           *destination    `json:"mirror,omitempty"`
	MirrorPercentage *percent        `json:"mirrorPercentage,omitempty"`
	Mirrors          []mirrorPolicy  `json:"mirrors,omitempty"`
	Fault            *faultInjection `json:"fault,omitempty"`
}

type (
	httpRetry struct {
		Attempts      uint32 `json:"attempts"`
		PerTryTimeout string `json:"perTryTimeout,omitempty"`
		RetryOn       string `json:"retryOn,omitempty"`
	}
	corsPolicy struct {
		AllowOrigins     []originMatch `json:"allowOrigins,omitempty"`
		AllowMethods     []string      `json:"allowMethods,omitempty"`
		AllowHeaders     []string      `json:"allowHeaders,omitempty"`
		ExposeHeaders    []string      `json:"exposeHeaders,omitempty"`
		MaxAge           string        `json:"maxAge,omitempty"`
		AllowCredentials *bool         `json:"allowCredentials,omitempty"`
	}
	originMatch struct {
		Exact  string `json:"exact,omitempty"`
		Prefix string `json:"prefix,omitempty"`
		Regex  string `json:"regex,omitempty"`
	}
	percent struct {
		Value float64 `json:"value"`
	}
	mirrorPolicy struct {
		Destination destination `json:"destination"`
		Percentage  *percent    `json:"percentage,omitempty"`
	}
	faultInjection struct {
		Delay *faultDelay `json:"delay,omitempty"`
	}
	faultDelay struct {
		FixedDelay string   `json:"fixedDelay"`
		Percentage *percent `json:"percentage,omitempty"`
	}
)

// tableRules returns, for every policy route with a Table and every
// destination it may pick, a rule matching the hint and the route header
// (policy.RouteHeader) exactly, with the route's table fields; a route
// without destinations gets one rule matching the route header, as
// fallback goes. They go before
// the plain per-destination rules, which would take the same requests
// without the route's fields.
func tableRules(pol *policy.Policy, fallback httpRoute) []httpRoute {
	var out []httpRoute
	for _, r := range pol.Routes() {
		if r.Table == nil {
			continue
		}
		t := ruleTableOf(r.Table)
		if r.Split == nil {
			rule := fallback
			rule.Name = r.Name + "-route"
			rule.Match = []httpMatch{{Headers: map[string]stringMatch{policy.RouteHeader: {Exact: r.Name}}}}
			rule.ruleTable = t
			out = append(out, rule)
			continue
		}
		for _, d := range r.Split.Destinations {
			out = append(out, httpRoute{
				Name: r.Name + "-" + strconv.Itoa(d.Index) + "-route",
				Match: []httpMatch{{Headers: map[string]stringMatch{
					r.Split.HintHeader: {Exact: d.Hint}, policy.RouteHeader: {Exact: r.Name}}}},
				Route:     []routeDest{{Destination: destinationOf(d)}},
				ruleTable: t,
			})
		}
	}
	return out
}

func ruleTableOf(t *policy.Table) *ruleTable {
	rt := &ruleTable{}
	if t.Timeout > 0 {
		rt.Timeout = seconds(t.Timeout)
	}
	if r := t.Retries; r != nil {
		rt.Retries = &httpRetry{Attempts: r.Attempts, RetryOn: r.RetryOn}
		if r.PerTryTimeout > 0 {
			rt.Retries.PerTryTimeout = seconds(r.PerTryTimeout)
		}
	}
	if c := t.CORS; c != nil {
		rt.CorsPolicy = &corsPolicy{AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, AllowCredentials: c.AllowCredentials}
		for _, o := range c.AllowOrigins {
			rt.CorsPolicy.AllowOrigins = append(rt.CorsPolicy.AllowOrigins, originMatch(o))
		}
		if c.MaxAge > 0 {
			rt.CorsPolicy.MaxAge = seconds(c.MaxAge)
		}
	}
	for _, m := range t.Mirrors {
		rt.Mirrors = append(rt.Mirrors, mirrorPolicy{Destination: destinationOf(m.Destination), Percentage: percentOf(m.PerMillion)})
	}
	if d := t.Delay; d != nil {
		rt.Fault = &faultInjection{Delay: &faultDelay{FixedDelay: seconds(d.FixedDelay), Percentage: &percent{Value: float64(d.PerMillion) / 10000}}}
	}
	return rt
}

// percentOf is a share in parts per million as Istio's Percent, nil for
// every request.
func percentOf(ppm uint64) *percent {
	if ppm >= 1_000_000 {
		return nil
	}
	return &percent{Value: float64(ppm) / 10000}
}

// seconds is d as a protobuf Duration's JSON form, which Istio reads.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
