package vsimport

import "fmt"

// disposition says what import does with a VirtualService field.
type disposition uint8

const (
	// carried: mapped into the policy.
	carried disposition = iota + 1
	// rendered: goes to the rendered route table (render's -hosts and
	// -gateway), not into the policy.
	rendered
	// refused: import fails, naming the field and the reason.
	refused
)

// rule is the fate of one field.
type rule struct {
	disp disposition
	// why is, for a refused field, the reason; for a carried one, how
	// wasmgate's meaning differs from Istio's (empty when it does not).
	why string
	// mapTo writes a carried or rendered value; nil copies a carried value
	// into the policy under the same name, converting its fields by this
	// table.
	mapTo mapping
}

func carry(m mapping) rule                 { return rule{disp: carried, mapTo: m} }
func carryDiff(why string, m mapping) rule { return rule{disp: carried, why: why, mapTo: m} }
func toRender(why string, m mapping) rule  { return rule{disp: rendered, why: why, mapTo: m} }
func refuse(why string) rule               { return rule{disp: refused, why: why} }

// Reasons shared by several fields.
const (
	notYet       = "the policy has no %s yet"
	meshOnly     = "applies to sidecars (the mesh); the plugin runs at the gateway: keep it in a VirtualService for the mesh"
	deprecatedBy = "deprecated in Istio; write %s instead"
	notTCP       = "wasmgate filters HTTP; TLS and TCP routes stay in a VirtualService of their own"
	notRetries   = "not among the policy's retries fields (attempts, perTryTimeout, retryOn)"
)

// fields is the fate of every field of istio.io/api's VirtualService and of
// every message it contains, keyed "Message.jsonName" (nested messages as
// "Outer.Inner.jsonName"). TestFields checks it against the API's
// descriptors: a field missing here fails the test, and import refuses a
// field it does not find here rather than drop it.
//
// A field of a message is carried wherever the message itself is: the
// fields of HTTPRedirect say how a redirect maps once HTTPRoute.redirect is
// carried. To carry a field the policy learns, flip its line to carry(nil)
// when the policy takes Istio's shape (name and value), or to carry(f) with
// a mapping f when it does not.
var fields = map[string]rule{
	"VirtualService.hosts":    toRender("the rendered VirtualService's hosts (a short name as NAME.NAMESPACE.svc.cluster.local), and unless one is * an authority condition on every rule, as Istio applies the rules to these hosts only; the VirtualServices imported together cannot mix * with named hosts", hosts),
	"VirtualService.gateways": toRender("the one gateway the rendered VirtualService binds to (not mesh); a name without namespace is read in the VirtualService's", gateways),
	"VirtualService.http":     carry(httpRoutes),
	"VirtualService.tls":      refuse(notTCP),
	"VirtualService.tcp":      refuse(notTCP),
	"VirtualService.exportTo": refuse("the rendered VirtualService is visible in every namespace; import without exportTo, and restrict the rendered one by hand"),

	"HTTPRoute.name":             carry(nil),
	"HTTPRoute.match":            carry(nil),
	"HTTPRoute.route":            carry(destinations),
	"HTTPRoute.redirect":         carry(nil),
	"HTTPRoute.directResponse":   carry(nil),
	"HTTPRoute.delegate":         refuse("delegation merges another VirtualService's rules here: import the delegate VirtualService's rules in this rule's place"),
	"HTTPRoute.rewrite":          carryDiff("a rewrite.uri after a prefix that does not end in / gives /123, not Istio's //123; with no uri match wasmgate replaces the whole path, Istio the leading /", rewrite),
	"HTTPRoute.timeout":          carry(nil),
	"HTTPRoute.retries":          carry(nil),
	"HTTPRoute.fault":            carry(nil),
	"HTTPRoute.mirror":           carry(nil),
	"HTTPRoute.mirrors":          carry(nil),
	"HTTPRoute.mirrorPercent":    refuse(fmt.Sprintf(deprecatedBy, "mirrorPercentage")),
	"HTTPRoute.mirrorPercentage": carry(nil),
	"HTTPRoute.corsPolicy":       carry(nil),
	"HTTPRoute.headers":          carry(nil),

	"HTTPMatchRequest.name":            refuse("names a match block in access logs; the policy names routes only: remove it"),
	"HTTPMatchRequest.uri":             carry(uriMatch),
	"HTTPMatchRequest.scheme":          carry(nil),
	"HTTPMatchRequest.method":          carry(nil),
	"HTTPMatchRequest.authority":       carryDiff("matched without the request's port and ignoring case", nil),
	"HTTPMatchRequest.headers":         carryDiff("an empty match ({}) is carried as present: true", stringMatches),
	"HTTPMatchRequest.port":            carry(nil),
	"HTTPMatchRequest.sourceLabels":    refuse(meshOnly),
	"HTTPMatchRequest.gateways":        refuse("the policy applies on every gateway that loads the plugin: import the rules of one gateway at a time"),
	"HTTPMatchRequest.queryParams":     carryDiff("an empty match ({}) is carried as present: true", stringMatches),
	"HTTPMatchRequest.ignoreUriCase":   carryDiff("Istio ignores it for a regex uri, so import drops it there (with a warning) rather than make the regex case-insensitive", ignoreURICase),
	"HTTPMatchRequest.withoutHeaders":  carryDiff("an empty match ({}) is carried as present: true", stringMatches),
	"HTTPMatchRequest.sourceNamespace": refuse(meshOnly),
	"HTTPMatchRequest.statPrefix":      refuse("Envoy per-route statistics; the plugin counts per policy route (wasmgate.route.<name>.*): remove it"),

	"StringMatch.exact":  carry(nil),
	"StringMatch.prefix": carry(nil),
	"StringMatch.regex":  carry(nil),

	"HTTPRouteDestination.destination": carry(nil),
	"HTTPRouteDestination.weight":      carry(nil),
	"HTTPRouteDestination.headers":     carryDiff("applied after the route's headers, so a header both set ends with the destination's value (Istio's weighted clusters end with the route's)", nil),

	"Destination.host":    carryDiff("a short name (no dot) is carried as NAME.NAMESPACE.svc.cluster.local: the rendered VirtualService lives in another namespace", destinationHost),
	"Destination.subset":  carry(nil),
	"Destination.port":    carry(nil),
	"PortSelector.number": carry(nil),

	"Headers.request":                 carry(nil),
	"Headers.response":                carry(nil),
	"Headers.HeaderOperations.set":    carry(nil),
	"Headers.HeaderOperations.add":    carry(nil),
	"Headers.HeaderOperations.remove": carry(nil),

	"HTTPRewrite.uri":             carry(nil),
	"HTTPRewrite.authority":       carry(nil),
	"HTTPRewrite.uriRegexRewrite": carry(nil),
	"RegexRewrite.match":          carry(nil),
	"RegexRewrite.rewrite":        carry(nil),

	"HTTPRedirect.uri":           carry(nil),
	"HTTPRedirect.authority":     carry(nil),
	"HTTPRedirect.port":          carry(nil),
	"HTTPRedirect.derivePort":    carry(nil),
	"HTTPRedirect.scheme":        carry(nil),
	"HTTPRedirect.redirectCode":  carry(nil),
	"HTTPRedirect.prefixRewrite": refuse("not among the policy's redirect fields: write redirect.uri (the whole path)"),

	"HTTPDirectResponse.status": carry(nil),
	"HTTPDirectResponse.body":   carry(nil),
	"HTTPBody.string":           carry(nil),
	"HTTPBody.bytes":            carry(nil),

	"Delegate.name":      refuse("delegation is not carried"),
	"Delegate.namespace": refuse("delegation is not carried"),

	"HTTPRetry.attempts":                 carry(nil),
	"HTTPRetry.perTryTimeout":            carry(nil),
	"HTTPRetry.retryOn":                  carry(nil),
	"HTTPRetry.retryRemoteLocalities":    refuse(notRetries),
	"HTTPRetry.retryIgnorePreviousHosts": refuse(notRetries),
	"HTTPRetry.backoff":                  refuse(notRetries),

	"HTTPFaultInjection.delay":                  carry(nil),
	"HTTPFaultInjection.abort":                  carry(nil),
	"HTTPFaultInjection.Delay.percent":          refuse(fmt.Sprintf(deprecatedBy, "percentage: {value: N}")),
	"HTTPFaultInjection.Delay.fixedDelay":       carry(nil),
	"HTTPFaultInjection.Delay.exponentialDelay": refuse("hidden and unimplemented in Istio; write fixedDelay"),
	"HTTPFaultInjection.Delay.percentage":       carry(nil),
	"HTTPFaultInjection.Abort.httpStatus":       carry(nil),
	"HTTPFaultInjection.Abort.grpcStatus":       refuse("the policy aborts with an HTTP status: write httpStatus"),
	"HTTPFaultInjection.Abort.http2Error":       refuse("hidden and unimplemented in Istio; write httpStatus"),
	"HTTPFaultInjection.Abort.percentage":       carry(nil),
	"Percent.value":                             carry(nil),

	"HTTPMirrorPolicy.destination": carry(nil),
	"HTTPMirrorPolicy.percentage":  carry(nil),

	"CorsPolicy.allowOrigin":         refuse(fmt.Sprintf(deprecatedBy, "allowOrigins: [{exact: ORIGIN}]")),
	"CorsPolicy.allowOrigins":        carry(nil),
	"CorsPolicy.allowMethods":        carry(nil),
	"CorsPolicy.allowHeaders":        carry(nil),
	"CorsPolicy.exposeHeaders":       carry(nil),
	"CorsPolicy.maxAge":              carry(nil),
	"CorsPolicy.allowCredentials":    carry(nil),
	"CorsPolicy.unmatchedPreflights": refuse("not among the policy's corsPolicy fields"),

	"TLSRoute.match":                        refuse(notTCP),
	"TLSRoute.route":                        refuse(notTCP),
	"TLSMatchAttributes.sniHosts":           refuse(notTCP),
	"TLSMatchAttributes.destinationSubnets": refuse(notTCP),
	"TLSMatchAttributes.port":               refuse(notTCP),
	"TLSMatchAttributes.sourceLabels":       refuse(notTCP),
	"TLSMatchAttributes.gateways":           refuse(notTCP),
	"TLSMatchAttributes.sourceNamespace":    refuse(notTCP),
	"TCPRoute.match":                        refuse(notTCP),
	"TCPRoute.route":                        refuse(notTCP),
	"L4MatchAttributes.destinationSubnets":  refuse(notTCP),
	"L4MatchAttributes.port":                refuse(notTCP),
	"L4MatchAttributes.sourceSubnet":        refuse(notTCP),
	"L4MatchAttributes.sourceLabels":        refuse(notTCP),
	"L4MatchAttributes.gateways":            refuse(notTCP),
	"L4MatchAttributes.sourceNamespace":     refuse(notTCP),
	"RouteDestination.destination":          refuse(notTCP),
	"RouteDestination.weight":               refuse(notTCP),
}
