package wasmplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	extensions "istio.io/api/extensions/v1alpha1"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/wasmgate/wasmgate/policy"
)

// sha256Hex is the WasmPlugin CRD's pattern for spec.sha256 (when not empty).
var sha256Hex = regexp.MustCompile(`^[a-f0-9]{64}$`)

// urlSchemes are the schemes Istio fetches modules with.
var urlSchemes = []string{"oci", "file", "http", "https"}

// Validate checks one WasmPlugin manifest (YAML or JSON) and returns its
// spec.
//
// The checks, in order: apiVersion, kind and metadata names as Kubernetes
// checks them; the spec's field names, value types and enum values against
// Istio's API types (istio.io/api/extensions/v1alpha1), with a suggestion
// for a misspelt field; the WasmPlugin CRD's OpenAPI schema and CEL rules, as
// the API server applies them (k8s.io/apiextensions-apiserver over the CRD
// istio.io/api ships); a strict protojson decode of the spec; wasmgate's own
// rules; and pluginConfig with the plugin's policy parser.
//
// # Notes
//
// Validate is stricter than the CRD in three ways, because a WasmPlugin
// without them does something else than the author meant: a workload
// selector with at least one label, or targetRefs, is required (without one
// the plugin applies to every workload in the namespace); the url needs an
// explicit scheme (Istio reads a bare one as oci://); and pluginConfig must
// be a policy the plugin accepts (else the gateway refuses it at run time).
//
// # Errors
//
// Each error names the field, e.g. `spec.failStrategy: "FAIL_CLOSED" is not
// one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`. Field name, type and CRD errors
// are all reported, joined by newlines; the other rules stop at the first.
func Validate(manifest []byte) (*extensions.WasmPlugin, error) {
	obj, err := decode(manifest)
	if err != nil {
		return nil, err
	}
	return validateWasmPlugin(obj)
}

// ValidateObjects checks every document of a YAML stream (or one JSON
// object): WasmPlugins as [Validate] does, VirtualServices and Gateways
// against their CRDs' schema and CEL rules. It returns the WasmPlugins'
// specs in order.
//
// # Errors
//
// Errors are prefixed with the document's kind and name
// ("VirtualService wasmgate: …").
func ValidateObjects(data []byte) ([]*extensions.WasmPlugin, error) {
	docs, err := SplitDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(docs) == 0 {
		return nil, errors.New("manifest: no objects")
	}
	var plugins []*extensions.WasmPlugin
	for i, doc := range docs {
		obj, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		kind, _ := obj["kind"].(string)
		name, _ := obj["metadata"].(map[string]any)["name"].(string)
		at := fmt.Sprintf("document %d", i+1)
		if kind != "" && name != "" {
			at = kind + " " + name
		}
		if kind == Kind {
			wp, err := validateWasmPlugin(obj)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			plugins = append(plugins, wp)
			continue
		}
		if err := checkHeader(obj, NetworkingAPIVersion, kind); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if kind != VirtualServiceKind && kind != GatewayKind {
			return nil, fmt.Errorf("%s: kind %q: want WasmPlugin, VirtualService or Gateway", at, kind)
		}
		if err := checkCRD(obj); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
	}
	return plugins, nil
}

// decode reads one YAML or JSON document as Kubernetes does: YAML 1.1,
// numbers as int64 or float64. Duplicate keys are errors.
func decode(doc []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var obj map[string]any
	if err := kjson.Unmarshal(js, &obj); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if obj == nil {
		return nil, errors.New("manifest: want an object")
	}
	return obj, nil
}

func validateWasmPlugin(obj map[string]any) (*extensions.WasmPlugin, error) {
	if err := checkHeader(obj, APIVersion, Kind); err != nil {
		return nil, err
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return nil, errors.New("spec: want an object")
	}
	md := (&extensions.WasmPlugin{}).ProtoReflect().Descriptor()
	if errs := checkMessage("spec", spec, md); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := checkCRD(obj); err != nil {
		return nil, err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	var wp extensions.WasmPlugin
	if err := protojson.Unmarshal(specJSON, &wp); err != nil {
		return nil, fmt.Errorf("spec: %s", ProtoErrorText(err))
	}
	if err := checkRules(&wp); err != nil {
		return nil, err
	}
	config, err := json.Marshal(spec["pluginConfig"])
	if err != nil {
		return nil, fmt.Errorf("spec.pluginConfig: %w", err)
	}
	if _, err := policy.Parse(config); err != nil {
		return nil, fmt.Errorf("spec.pluginConfig: %w", err)
	}
	return &wp, nil
}

// checkCRD validates obj with its kind's CRD, as the API server would.
func checkCRD(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	v, err := validatorFor(apiVersion, kind)
	if err != nil {
		return err
	}
	return errors.Join(v.validate(obj)...)
}

// CheckDigest checks spec.sha256 against what Istio's agent verifies it
// with: the image manifest digest for an oci:// url, the module's hash for
// the other schemes. manifestDigest ("sha256:<hex>") and wasm may each be
// empty; given both, the error says which one spec.sha256 holds.
func CheckDigest(wp *extensions.WasmPlugin, manifestDigest string, wasm []byte) error {
	manifestHex := strings.TrimPrefix(manifestDigest, "sha256:")
	var moduleHex string
	if wasm != nil {
		sum := sha256.Sum256(wasm)
		moduleHex = hex.EncodeToString(sum[:])
	}
	want, wrong := moduleHex, manifestHex
	wantName, wrongName := "the module's sha256", "the image manifest digest"
	if strings.HasPrefix(wp.Url, "oci://") {
		want, wrong = wrong, want
		wantName, wrongName = wrongName, wantName
	}
	switch got := wp.Sha256; {
	case want == "" || got == want:
		return nil
	case got == "":
		return fmt.Errorf("spec.sha256: empty; pin %s %s", wantName, want)
	case got == wrong:
		return fmt.Errorf("spec.sha256: is %s, but for %s urls Istio checks %s %s",
			wrongName, scheme(wp.Url), wantName, want)
	default:
		return fmt.Errorf("spec.sha256: %s is not %s %s", got, wantName, want)
	}
}

func scheme(url string) string {
	s, _, _ := strings.Cut(url, "://")
	return s + "://"
}

func checkHeader(obj map[string]any, apiVersion, kind string) error {
	for _, k := range sortedKeys(obj) {
		switch k {
		case "apiVersion", "kind", "metadata", "spec":
		default:
			return fmt.Errorf("%s: unknown field", k)
		}
	}
	if v := obj["apiVersion"]; v != apiVersion {
		return fmt.Errorf("apiVersion: %s, want %s", describe(v), apiVersion)
	}
	if v := obj["kind"]; v != kind {
		return fmt.Errorf("kind: %s, want %s", describe(v), kind)
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return errors.New("metadata: want an object")
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return errors.New("metadata.name: want a non-empty string")
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("metadata.name: %q: %s", name, strings.Join(msgs, "; "))
	}
	if ns, ok := meta["namespace"].(string); ok {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return fmt.Errorf("metadata.namespace: %q: %s", ns, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// describe formats a decoded YAML value for an error message.
func describe(v any) string {
	if v == nil {
		return "missing"
	}
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

// checkMessage checks the keys and value types of obj, decoded from YAML,
// against the message md, as the CRD's structural schema would.
func checkMessage(path string, obj map[string]any, md protoreflect.MessageDescriptor) []error {
	var errs []error
	for _, k := range sortedKeys(obj) {
		at := path + "." + k
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			errs = append(errs, unknownField(at, k, md))
			continue
		}
		v := obj[k]
		switch {
		case v == nil:
			// null leaves the field unset, for Kubernetes and protojson alike.
		case fd.IsMap():
			m, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, wantType(at, "an object", v))
				continue
			}
			for _, mk := range sortedKeys(m) {
				errs = append(errs, checkValue(fmt.Sprintf("%s[%q]", at, mk), m[mk], fd.MapValue())...)
			}
		case fd.IsList():
			list, ok := v.([]any)
			if !ok {
				errs = append(errs, wantType(at, "a list", v))
				continue
			}
			for i, e := range list {
				errs = append(errs, checkValue(fmt.Sprintf("%s[%d]", at, i), e, fd)...)
			}
		default:
			errs = append(errs, checkValue(at, v, fd)...)
		}
	}
	return errs
}

// checkValue checks one value of the field fd.
func checkValue(at string, v any, fd protoreflect.FieldDescriptor) []error {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Struct":
			// pluginConfig: any object; the plugin validates its content.
			if _, ok := v.(map[string]any); !ok {
				return []error{wantType(at, "an object", v)}
			}
			return nil
		case "google.protobuf.Int32Value":
			return checkInt32(at, v)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return []error{wantType(at, "an object", v)}
		}
		return checkMessage(at, obj, fd.Message())
	case protoreflect.EnumKind:
		var names []string
		values := fd.Enum().Values()
		for i := range values.Len() {
			names = append(names, string(values.Get(i).Name()))
		}
		s, ok := v.(string)
		if !ok {
			return []error{fmt.Errorf("%s: %v is not one of %s", at, describe(v), strings.Join(names, ", "))}
		}
		if !slices.Contains(names, s) {
			return []error{fmt.Errorf("%s: %q is not one of %s", at, s, strings.Join(names, ", "))}
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			return []error{wantType(at, "a string", v)}
		}
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return []error{wantType(at, "true or false", v)}
		}
	case protoreflect.Int32Kind, protoreflect.Uint32Kind:
		return checkInt32(at, v)
	}
	return nil
}

func checkInt32(at string, v any) []error {
	n, ok := v.(int64)
	if !ok {
		return []error{wantType(at, "an integer", v)}
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return []error{fmt.Errorf("%s: %d is out of the int32 range", at, n)}
	}
	return nil
}

func wantType(at, want string, v any) error {
	got := "null"
	switch v.(type) {
	case string:
		got = "a string"
	case bool:
		got = "a boolean"
	case int64, float64:
		got = "a number"
	case []any:
		got = "a list"
	case map[string]any:
		got = "an object"
	}
	return fmt.Errorf("%s: want %s, got %s", at, want, got)
}

// unknownField names the field the author probably meant: the JSON name when
// k is a protobuf field name (Kubernetes accepts JSON names only), or the
// closest JSON name within two edits.
func unknownField(at, k string, md protoreflect.MessageDescriptor) error {
	if fd := md.Fields().ByName(protoreflect.Name(k)); fd != nil {
		return fmt.Errorf("%s: unknown field, did you mean %q?", at, fd.JSONName())
	}
	best, bestDist := "", 3
	fields := md.Fields()
	for i := range fields.Len() {
		name := fields.Get(i).JSONName()
		if d := editDistance(strings.ToLower(k), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Errorf("%s: unknown field, did you mean %q?", at, best)
	}
	return fmt.Errorf("%s: unknown field", at)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ProtoErrorText drops protojson's "proto:" prefix, whose spacing the
// protobuf module varies on purpose, and its position in the generated JSON.
func ProtoErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "proto:")
	s = strings.TrimLeft(s, " \u00a0")
	if strings.HasPrefix(s, "(line ") {
		if _, rest, ok := strings.Cut(s, "): "); ok {
			s = rest
		}
	}
	return s
}

// checkRules applies wasmgate's rules on top of the CRD's to a decoded spec.
func checkRules(wp *extensions.WasmPlugin) error {
	switch {
	case wp.Selector == nil && wp.TargetRef == nil && len(wp.TargetRefs) == 0:
		return errors.New("spec: no selector or targetRefs: the plugin would apply to every workload in the namespace")
	case wp.Selector != nil && len(wp.Selector.MatchLabels) == 0:
		return errors.New("spec.selector: no matchLabels: the plugin would apply to every workload in the namespace")
	}
	s, _, ok := strings.Cut(wp.Url, "://")
	switch {
	case wp.Url == "":
		return errors.New("spec.url: required")
	case !ok:
		return fmt.Errorf("spec.url: %q has no scheme; write oci://%s for an image", wp.Url, wp.Url)
	case !slices.Contains(urlSchemes, s):
		return fmt.Errorf("spec.url: scheme %q is not one of %s", s, strings.Join(urlSchemes, ", "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
