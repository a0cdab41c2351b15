package policy

import "math"

// Kind is the JSON type of a value in the policy document.
type Kind uint8

const (
	// KindObject is an object with declared fields (Schema.Fields).
	KindObject Kind = iota + 1
	// KindMap is an object used as a map: its keys are names (Schema.Keys),
	// its values all have one schema (Schema.Values).
	KindMap
	KindList
	KindString
	KindInteger
	KindBoolean
)

// Schema declares one value of the policy document. The parser reads its
// field lists, alternatives and enums from these declarations, JSONSchema
// renders them for editors, and the documentation test checks every field
// against docs/policy.md, so the three cannot drift.
//
// # Notes
//
// Rules a declaration cannot state (regexes that compile, unique route names,
// weights that sum to more than 0, ...) are checked by the parser only; the
// schema test lists them.
type Schema struct {
	Kind Kind
	// Def names the schema among the JSON Schema's definitions when it is
	// used in more than one place, or deserves a name in an editor.
	Def string
	Doc string

	// KindObject: the known fields, in documentation order.
	Fields []*Field
	// OneOf: exactly one of Fields must be present.
	OneOf bool
	// MinFields: at least this many fields must be present.
	MinFields int
	// Requires: {a, b} means field a is only allowed with field b.
	Requires [][2]string
	// Excludes: {a, b} means fields a and b are mutually exclusive.
	Excludes [][2]string
	// MissingMsg, when set, is the one error of an object missing any
	// required field (read with requireAll), instead of one per field.
	MissingMsg string

	// KindMap: the keys (a KindString schema) and the values.
	Keys, Values *Schema

	// KindList: the items, at least MinItems of them; when the list has
	// more than one item, each must have the fields in RequiredWhenMany.
	Items            *Schema
	MinItems         int
	RequiredWhenMany []string
	// EmptyHint follows "must not be empty" in the error of a list with
	// fewer than MinItems items.
	EmptyHint string

	// KindString: one of Enum when set; matching Pattern (an anchored
	// regular expression valid in both RE2 and ECMA-262) when set.
	Enum    []string
	Pattern string

	// KindInteger: the allowed range.
	Min, Max uint64

	// KindBoolean: true is the only meaningful value (a flag such as
	// {"clientAddress": true}); FalseHint follows "must be true" in the
	// error of a false one.
	OnlyTrue  bool
	FalseHint string

	// Default is the value an absent field takes, when it is a JSON value.
	Default any

	// Alt is another form the value may take instead (e.g. a port as a
	// number or as {"number": N}).
	Alt *Schema
}

// Field is one field of a KindObject schema.
type Field struct {
	Name     string
	Required bool
	Value    *Schema
}

// Declaration returns the declared schema of the whole policy document. The
// value is shared: do not modify it.
func Declaration() *Schema { return schemaPolicy }

// names returns the names of s's fields in declaration order.
func (s *Schema) names() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// Enumerations, in the order of the constants they map to.
var (
	fieldsModes        = []string{"ietf", "none", "legacy", "both"} // FieldsMode
	contentionPolicies = []string{"allow", "deny"}                  // ContentionPolicy
	failureModes       = []string{"allow", "deny"}                  // FailureMode
)

// Patterns shared by several declarations.
const (
	tokenPattern       = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" // RFC 9110 token: header and cookie names
	headerValuePattern = `^[^\r\n\x00]+$`

	// A Go duration with at least one non-zero number: positive.
	durationUnit            = `(ns|us|µs|μs|ms|s|m|h)`
	durationPart            = `(([0-9]+(\.[0-9]*)?|\.[0-9]+)` + durationUnit + `)`
	positiveDurationPattern = `^\+?` + durationPart + `*(([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)` +
		durationUnit + `)` + durationPart + `*$`
)

// templatePattern is a header value with known variables only: %%,
// %ROUTE_NAME%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %DESTINATION% and
// %REQ(name)% of a header name or :authority, :method, :path (any case).
var templatePattern = `^([^%\r\n\x00]|%%|%ROUTE_NAME%|%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DESTINATION%|%REQ\((` +
	":" + anyCase("authority") + "|:" + anyCase("method") + "|:" + anyCase("path") +
	"|[!#$&'*+.^_`|~0-9A-Za-z-]+)\\)%)+$"

// anyCase returns a pattern matching the lower-case ASCII word s in any case.
func anyCase(s string) string {
	var out string
	for i := 0; i < len(s); i++ {
		out += "[" + string(s[i]-'a'+'A') + s[i:i+1] + "]"
	}
	return out
}

func strDecl(doc string) *Schema { return &Schema{Kind: KindString, Doc: doc} }

func boolDecl(doc string) *Schema { return &Schema{Kind: KindBoolean, Doc: doc, Default: false} }

func flagDecl(doc string) *Schema { return &Schema{Kind: KindBoolean, Doc: doc, OnlyTrue: true} }

func intDecl(doc string, lo, hi uint64) *Schema {
	return &Schema{Kind: KindInteger, Doc: doc, Min: lo, Max: hi}
}

func withDefault(s *Schema, v any) *Schema { s.Default = v; return s }

func optional(name string, s *Schema) *Field { return &Field{Name: name, Value: s} }

func required(name string, s *Schema) *Field { return &Field{Name: name, Required: true, Value: s} }

var (
	schemaHeaderName = &Schema{Kind: KindString, Def: "headerName", Pattern: tokenPattern,
		Doc: "A header name (an RFC 9110 token; not a pseudo-header). Compared case-insensitively."}
	schemaHeaderValue = &Schema{Kind: KindString, Def: "headerValue", Pattern: headerValuePattern,
		Doc: "A header value written verbatim: not empty, no CR, LF or NUL."}
	schemaTemplate = &Schema{Kind: KindString, Def: "headerTemplate", Pattern: templatePattern,
		Doc: "A header value: text and %REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %ROUTE_NAME%, %DESTINATION%; %% is a literal percent."}
)

// matchOps declares an Istio StringMatch with the given operators.
func matchOps(def, doc string, ops ...*Field) *Schema {
	return &Schema{Kind: KindObject, Def: def, Doc: doc, OneOf: true, Fields: append([]*Field{
		optional("exact", strDecl("The whole value equals this.")),
		optional("prefix", strDecl("The value starts with this.")),
		optional("regex", strDecl("An RE2 regular expression the whole value must match.")),
	}, ops...)}
}

var (
	schemaURIMatch = matchOps("uriMatch", "How the path (without query) is matched: exactly one operator.",
		optional("pathPrefix", &Schema{Kind: KindString, Pattern: "^/",
			Doc: "The path is this or starts with this followed by \"/\": whole segments only."}))
	schemaPlainMatch = matchOps("stringMatch", "How the value is matched: exactly one operator.")
	// The authority is matched without its port (an IPv6 literal keeps its
	// brackets), and "*" is only a leading "*." of an exact authority.
	schemaAuthorityMatch = &Schema{Kind: KindObject, Def: "authorityMatch", OneOf: true,
		Doc: "How the authority (without port) is matched: exactly one operator.",
		Fields: []*Field{
			optional("exact", &Schema{Kind: KindString, Pattern: `^(\[[^*]*|\*\.[^:]*|[^*:]*)$`,
				Doc: "The whole value equals this; a leading \"*.\" matches any subdomain."}),
			optional("prefix", &Schema{Kind: KindString, Pattern: `^(\[[^*]*|[^*:]*)$`, Doc: "The value starts with this."}),
			optional("regex", strDecl("An RE2 regular expression the whole value must match.")),
		}}
	schemaNamedMatch = matchOps("namedMatch", "How a header or query parameter is matched: exactly one operator.",
		optional("present", &Schema{Kind: KindBoolean, OnlyTrue: true, FalseHint: `use "withoutHeaders" to require absence`,
			Doc: "The header or parameter is present, whatever its value."}))
	schemaNamedMatches = &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaNamedMatch}

	schemaMatchBlock = &Schema{Kind: KindObject, Def: "match",
		Doc: "One set of conditions; all must hold.",
		Fields: []*Field{
			optional("uri", schemaURIMatch),
			optional("method", schemaPlainMatch),
			optional("authority", schemaAuthorityMatch),
			optional("headers", schemaNamedMatches),
			optional("queryParams", &Schema{Kind: KindMap, Keys: &Schema{Kind: KindString, Pattern: "^[\\s\\S]+$"},
				Values: schemaNamedMatch, Doc: "Query parameters (raw, not percent-decoded) by name."}),
			optional("withoutHeaders", schemaNamedMatches),
			optional("ignoreUriCase", boolDecl("Match \"uri\" ignoring ASCII case.")),
		}}

	schemaRegexRewrite = &Schema{Kind: KindObject, Doc: "Rewrite the path with a regex and a replacement.",
		MissingMsg: `must have both "match" and "rewrite"`,
		Fields: []*Field{
			required("match", strDecl("An RE2 regular expression applied to the path (without query).")),
			required("rewrite", &Schema{Kind: KindString, Pattern: `^[^?#\r\n\x00]*$`,
				Doc: "The replacement; \\1 to \\9 insert groups."}),
		}}

	schemaRewrite = &Schema{Kind: KindObject, Def: "rewrite", MinFields: 1,
		Excludes: [][2]string{{"uri", "uriRegexRewrite"}},
		Doc:      "Rewrite the path or authority before the request is forwarded.",
		Fields: []*Field{
			optional("uri", &Schema{Kind: KindString, Pattern: `^/[^?#\x00-\x20\x7f]*$`,
				Doc: "Replaces the matched prefix (or the whole path); the query is kept."}),
			optional("uriRegexRewrite", schemaRegexRewrite),
			optional("authority", &Schema{Kind: KindString, Pattern: `^[^\r\n\x00 \t/?#]+$`,
				Doc: "Replaces the authority (Host)."}),
		}}

	schemaHeaderOps = &Schema{Kind: KindObject, Def: "headerOperations",
		Doc: "Header operations, applied in the order remove, set, add.",
		Fields: []*Field{
			optional("set", &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaTemplate,
				Doc: "Headers to set, replacing every value."}),
			optional("add", &Schema{Kind: KindMap, Keys: schemaHeaderName, Values: schemaTemplate,
				Doc: "Headers to append, keeping existing values."}),
			optional("remove", &Schema{Kind: KindList, Items: schemaHeaderName, Doc: "Headers to remove."}),
		}}

	schemaHeaders = &Schema{Kind: KindObject, Doc: "Header operations on the request and on the response.",
		Fields: []*Field{optional("request", schemaHeaderOps), optional("response", schemaHeaderOps)}}

	schemaPortSelector = &Schema{Kind: KindObject, Doc: "Istio's PortSelector.", Fields: []*Field{
		required("number", intDecl("The service port.", 1, 65535)),
	}}

	schemaService = &Schema{Kind: KindObject, Doc: "The upstream service, as Istio's Destination.", Fields: []*Field{
		required("host", schemaHeaderValue),
		optional("subset", &Schema{Kind: KindString, Pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
			Doc: "A subset of the host (a DestinationRule subset name)."}),
		optional("port", &Schema{Kind: KindInteger, Min: 1, Max: 65535, Alt: schemaPortSelector,
			Doc: "The service port: a number, or {\"number\": N} as Istio writes it."}),
	}}

	schemaDestination = &Schema{Kind: KindObject, Def: "destination",
		Doc: "One weighted destination.",
		Fields: []*Field{
			required("destination", schemaService),
			optional("weight", withDefault(intDecl("Relative weight; required when \"route\" has more than one destination.", 0, maxWeight), 100)),
			optional("hint", &Schema{Kind: KindString, Pattern: headerValuePattern,
				Doc: "The value written to the hint header; default: destination.host."}),
		}}

	// The request properties stickiness and limits are keyed by.
	keyHeader        = optional("header", schemaHeaderName)
	keyClientAddress = optional("clientAddress", flagDecl("The client address."))

	schemaStickyBy = &Schema{Kind: KindObject, OneOf: true,
		Doc: "What keeps a client on one destination: exactly one of these.",
		Fields: []*Field{
			keyHeader,
			optional("cookie", &Schema{Kind: KindString, Pattern: tokenPattern, Doc: "A cookie name."}),
			keyClientAddress,
		}}

	schemaSplit = &Schema{Kind: KindObject, Def: "split", Doc: "How the destination is chosen and announced.",
		Fields: []*Field{
			optional("hintHeader", withDefault(&Schema{Kind: KindString, Pattern: tokenPattern,
				Doc: "The request header the chosen destination's hint is written to."}, DefaultHintHeader)),
			optional("stickyBy", schemaStickyBy),
			optional("overrideHeader", &Schema{Kind: KindString, Pattern: tokenPattern,
				Doc: "A request header naming a destination's hint to use instead of the weighted choice."}),
		}}

	schemaLimitKey = &Schema{Kind: KindObject, OneOf: true,
		Doc:    "What the limit is counted per: exactly one of these.",
		Fields: []*Field{keyHeader, keyClientAddress}}

	schemaTokenBucket = &Schema{Kind: KindObject, Doc: "Envoy local_ratelimit's token bucket.",
		MissingMsg: `missing field "maxTokens" or "fillInterval" (both are required)`,
		Fields: []*Field{
			required("maxTokens", intDecl("Bucket capacity.", 1, math.MaxInt64)),
			optional("tokensPerFill", withDefault(intDecl("Tokens added each fillInterval; at most maxTokens.", 1, math.MaxInt64), 1)),
			required("fillInterval", &Schema{Kind: KindString,
				Pattern: positiveDurationPattern,
				Doc:     "A positive Go duration, e.g. \"1s\", \"1m30s\"."}),
		}}

	schemaRateLimit = &Schema{Kind: KindObject, Def: "rateLimit", Doc: "A local token-bucket rate limit.",
		Requires: [][2]string{{"maxKeys", "key"}},
		Fields: []*Field{
			required("tokenBucket", schemaTokenBucket),
			optional("key", schemaLimitKey),
			optional("maxKeys", withDefault(intDecl("Bucket slots of a keyed limit.", 1, maxMaxKeys), DefaultMaxKeys)),
			optional("shadow", boolDecl("Count requests over the limit but never deny them.")),
			denialStatus,
			denialBody,
			denialFields,
			optional("fieldsOnAllowed", boolDecl("Also write the fields on admitted responses.")),
			optional("onContention", withDefault(&Schema{Kind: KindString, Enum: contentionPolicies,
				Doc: "Admit (allow) or deny a request when the shared bucket stays contended."}, contentionPolicies[0])),
		}}

	// A limit's denial: shared by rateLimit and globalRateLimit.
	denialStatus = optional("status", withDefault(intDecl("HTTP status of a denied request.", 400, 599), DefaultLimitStatus))
	denialBody   = optional("body", strDecl("Body of a denied response."))
	denialFields = optional("fields", withDefault(&Schema{Kind: KindString, Enum: fieldsModes,
		Doc: "Which rate-limit response headers are written."}, fieldsModes[0]))

	descriptorText = &Schema{Kind: KindString, Pattern: headerValuePattern,
		Doc: "Text written into a descriptor entry: not empty, no CR, LF or NUL."}

	schemaGenericKey = &Schema{Kind: KindObject, Doc: "A constant entry.", Fields: []*Field{
		required("descriptorValue", descriptorText),
		optional("descriptorKey", withDefault(descriptorText, "generic_key")),
	}}
	schemaRouteNameAction = &Schema{Kind: KindObject, Doc: "The route's name as an entry.", Fields: []*Field{
		optional("descriptorKey", withDefault(descriptorText, "route_name")),
	}}
	schemaRequestHeadersAction = &Schema{Kind: KindObject, Doc: "A request header (or :authority, :method, :path) as an entry.",
		Excludes: [][2]string{{"skipIfAbsent", "defaultValue"}},
		Fields: []*Field{
			required("headerName", strDecl("The header, or :authority, :method or :path.")),
			required("descriptorKey", descriptorText),
			optional("skipIfAbsent", boolDecl("Leave the descriptor out when the header is absent.")),
			optional("defaultValue", descriptorText),
		}}
	schemaAction = &Schema{Kind: KindObject, Def: "rateLimitAction", OneOf: true,
		Doc: "One descriptor entry, as Envoy's rate limit actions: exactly one of these.",
		Fields: []*Field{
			optional("genericKey", schemaGenericKey),
			optional("requestHeaders", schemaRequestHeadersAction),
			optional("remoteAddress", &Schema{Kind: KindObject, Doc: "The client address as an entry: {}."}),
			optional("routeName", schemaRouteNameAction),
		}}
	schemaDescriptor = &Schema{Kind: KindObject, Doc: "One descriptor sent to the service.", Fields: []*Field{
		required("actions", &Schema{Kind: KindList, Items: schemaAction, MinItems: 1, Doc: "The descriptor's entries, in order."}),
	}}

	schemaGlobalLimit = &Schema{Kind: KindObject, Def: "globalRateLimit",
		Doc: "A global limit decided by an Envoy rate limit service over gRPC.",
		Fields: []*Field{
			required("domain", &Schema{Kind: KindString, Pattern: headerValuePattern, Doc: "The rate limit service's domain."}),
			required("cluster", &Schema{Kind: KindString, Pattern: headerValuePattern, Doc: "The Envoy cluster of the rate limit service."}),
			required("rateLimits", &Schema{Kind: KindList, Items: schemaDescriptor, MinItems: 1, Doc: "The descriptors to send."}),
			optional("timeout", withDefault(&Schema{Kind: KindString,
				Pattern: positiveDurationPattern,
				Doc:     "How long to wait for the service: a Go duration from 1ms to 1m."}, DefaultGlobalTimeout.String())),
			optional("failureMode", withDefault(&Schema{Kind: KindString, Enum: failureModes,
				Doc: "Admit (allow) or deny a request when the service does not answer."}, failureModes[0])),
			denialStatus,
			optional("statusOnError", withDefault(intDecl("HTTP status of a request denied because the service failed.", 400, 599), DefaultGlobalStatusOnError)),
			denialBody,
			denialFields,
		}}

	schemaRoute = &Schema{Kind: KindObject, Def: "route", Doc: "One route; the first whose match holds wins.",
		Fields: []*Field{
			optional("name", &Schema{Kind: KindString, Pattern: "^[A-Za-z0-9_.-]{1,64}$",
				Doc: "Unique name, used in metrics; default: route-<index>."}),
			// Then each feature's fields: see register.
		}}

	schemaPolicy = &Schema{Kind: KindObject, Doc: "A wasmgate gateway policy.",
		Fields: []*Field{
			required("routes", &Schema{Kind: KindList, Items: schemaRoute, MinItems: 1, Doc: "Routes in match order."}),
			optional("logRequests", boolDecl("Log one debug-level line per request: route, rewrite, destination, limit verdict.")),
		}}
)
