package policy

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
	// KindNumber is a number, fractions allowed, in [Min, Max].
	KindNumber
)

// Schema declares one value of the policy document. The parser reads every
// field through these declarations (object's accessors), JSONSchema renders
// them for editors, and the documentation test checks every field against
// docs/policy.md, so the three cannot drift.
//
// # Notes
//
// Patterns are checked by the parser with messages of its own. Rules a
// declaration cannot state (regexes that compile, unique route names,
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

	// KindInteger and KindNumber: the allowed range.
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

var (
	// The request properties stickiness and limits are keyed by.
	keyHeader        = optional("header", schemaHeaderName)
	keyClientAddress = optional("clientAddress", flagDecl("The client address."))

	// A limit's denial: shared by rateLimit and globalRateLimit.
	denialStatus = optional("status", withDefault(intDecl("HTTP status of a denied request.", 400, 599), DefaultLimitStatus))
	denialBody   = optional("body", strDecl("Body of a denied response."))
	denialFields = optional("fields", withDefault(&Schema{Kind: KindString, Enum: fieldsModes,
		Doc: "Which rate-limit response headers are written."}, fieldsModes[0]))

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
