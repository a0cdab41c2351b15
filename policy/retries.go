package policy

import (
	"slices"
	"strings"
)

// retryConditions are the conditions "retryOn" may list besides status
// codes: Envoy's for HTTP and for gRPC, as Istio passes them on.
var retryConditions = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// retryOnItem is one entry of "retryOn": a condition or a status code.
var retryOnItem = "(" + strings.Join(retryConditions, "|") + "|[1-5][0-9][0-9])"

var schemaRetries = &Schema{Kind: KindObject, Def: "retries",
	Doc: "How the proxy retries a failed request (done by the route table).",
	Fields: []*Field{
		required("attempts", intDecl("How many retries at most; 0 turns retries off.", 0, 100)),
		optional("perTryTimeout", durationDecl("How long each attempt may take.")),
		optional("retryOn", &Schema{Kind: KindString, Pattern: "^" + retryOnItem + "(," + retryOnItem + ")*$",
			Doc: "The conditions to retry on, comma-separated: Envoy's (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, ...) and status codes such as 503; default: connect-failure,refused-stream,unavailable,cancelled and 503, as Istio."}),
	}}

func init() {
	register(&feature{order: 82, fields: []*Field{optional("retries", schemaRetries)}, compile: compileRetries})
}

// compileRetries compiles "retries" into Route.Table.
func compileRetries(p *parser, route *object, r *Route) unit {
	v, ok := route.value("retries")
	if !ok {
		return nil
	}
	o, ok := p.object(route.at("retries"), v, schemaRetries)
	if !ok {
		return nil
	}
	rt := &Retries{}
	before := len(p.errs)
	if _, ok := o.value("attempts"); ok {
		n, _ := o.integer("attempts")
		rt.Attempts = uint32(n)
	}
	if tv, ok := o.value("perTryTimeout"); ok {
		rt.PerTryTimeout, _ = p.duration(o.at("perTryTimeout"), tv)
	}
	if s, ok := o.str("retryOn"); ok {
		for _, c := range strings.Split(s, ",") {
			if !slices.Contains(retryConditions, c) && !isStatusCode(c) {
				p.fail(o.at("retryOn"), "%q is neither a retry condition nor a status code; known conditions: %s", c, strings.Join(retryConditions, ", "))
			}
		}
		rt.RetryOn = s
	}
	if len(p.errs) != before {
		return nil
	}
	table(r).Retries = rt
	return nil
}

// isStatusCode reports whether s is a 3-digit HTTP status code, 100 to 599.
func isStatusCode(s string) bool {
	return len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}
