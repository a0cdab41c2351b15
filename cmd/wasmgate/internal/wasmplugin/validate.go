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
	"gopkg.in/yaml.v3"
	extensions "istio.io/api/extensions/v1alpha1"
	typeapi "istio.io/api/type/v1beta1"
)

// sha256Hex is the WasmPlugin CRD's pattern for spec.sha256 (when not empty).
var sha256Hex = regexp.MustCompile(`^[a-f0-9]{64}$`)

// urlSchemes are the schemes Istio fetches modules with.
var urlSchemes = []string{"oci", "file", "http", "https"}

// Validate checks a WasmPlugin manifest (YAML or JSON) and returns its spec.
//
// The checks, in order: apiVersion, kind and metadata.name; the spec's field
// names, value types and enum values against Istio's API types
// (istio.io/api/extensions/v1alpha1), then a strict protojson decode of the
// spec; then the CRD's rules the API types do not carry: at most one of
// selector, targetRef and targetRefs, the url scheme, the sha256 pattern,
// pluginName length, and env values only when INLINE.
//
// # Notes
//
// Validate is stricter than the CRD in two ways, both because a WasmPlugin
// without them does something else than the author meant: a workload
// selector or target is required (without one the plugin applies to every
// workload in the namespace), and the url needs an explicit scheme (Istio
// reads a bare one as oci://).
//
// # Errors
//
// Each error names the field, e.g. `spec.failStrategy: "FAIL_CLOSED" is not
// one of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD`. Field name and type errors are
// all reported, joined by newlines; the cross-field rules stop at the first.
func Validate(manifest []byte) (*extensions.WasmPlugin, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(manifest, &obj); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := checkHeader(obj); err != nil {
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
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	var wp extensions.WasmPlugin
	if err := protojson.Unmarshal(specJSON, &wp); err != nil {
		return nil, fmt.Errorf("spec: %s", protoErrorText(err))
	}
	if err := checkRules(&wp); err != nil {
		return nil, err
	}
	return &wp, nil
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

func checkHeader(obj map[string]any) error {
	for _, k := range sortedKeys(obj) {
		switch k {
		case "apiVersion", "kind", "metadata", "spec":
		default:
			return fmt.Errorf("%s: unknown field", k)
		}
	}
	if v := obj["apiVersion"]; v != APIVersion {
		return fmt.Errorf("apiVersion: %s, want %s", describe(v), APIVersion)
	}
	if v := obj["kind"]; v != Kind {
		return fmt.Errorf("kind: %s, want %s", describe(v), Kind)
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return errors.New("metadata: want an object")
	}
	if name, _ := meta["name"].(string); name == "" {
		return errors.New("metadata.name: want a non-empty string")
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
	n, ok := v.(int)
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
	case int, float64:
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

// protoErrorText drops protojson's "proto:" prefix, whose spacing the
// protobuf module varies on purpose, and its position in the generated JSON.
func protoErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "proto:")
	s = strings.TrimLeft(s, " \u00a0")
	if strings.HasPrefix(s, "(line ") {
		if _, rest, ok := strings.Cut(s, "): "); ok {
			s = rest
		}
	}
	return s
}

// checkRules applies the CRD's cross-field rules and this package's two
// stricter ones to a decoded spec.
func checkRules(wp *extensions.WasmPlugin) error {
	targets := 0
	for _, set := range []bool{wp.Selector != nil, wp.TargetRef != nil, len(wp.TargetRefs) > 0} {
		if set {
			targets++
		}
	}
	switch targets {
	case 0:
		return errors.New("spec: no selector or targetRefs: the plugin would apply to every workload in the namespace")
	case 1:
	default:
		return errors.New("spec: only one of selector, targetRef or targetRefs can be set")
	}
	if wp.Selector != nil {
		for _, k := range sortedKeys(wp.Selector.MatchLabels) {
			at := fmt.Sprintf("spec.selector.matchLabels[%q]", k)
			switch v := wp.Selector.MatchLabels[k]; {
			case k == "":
				return fmt.Errorf("%s: key must not be empty", at)
			case strings.Contains(k, "*"):
				return fmt.Errorf("%s: wildcard not allowed in label key match", at)
			case strings.Contains(v, "*"):
				return fmt.Errorf("%s: wildcard not allowed in label value match", at)
			case len(v) > 63:
				return fmt.Errorf("%s: value longer than 63 characters", at)
			}
		}
	}
	refs := map[string]*typeapi.PolicyTargetReference{"spec.targetRef": wp.TargetRef}
	for i, ref := range wp.TargetRefs {
		refs[fmt.Sprintf("spec.targetRefs[%d]", i)] = ref
	}
	for _, at := range sortedKeys(refs) {
		switch ref := refs[at]; {
		case ref == nil:
		case ref.Kind == "" || ref.Name == "":
			return fmt.Errorf("%s: kind and name are required", at)
		case ref.Namespace != "":
			return fmt.Errorf("%s.namespace: cross namespace referencing is not currently supported", at)
		}
	}
	s, rest, ok := strings.Cut(wp.Url, "://")
	switch {
	case wp.Url == "":
		return errors.New("spec.url: required")
	case !ok:
		return fmt.Errorf("spec.url: %q has no scheme; write oci://%s for an image", wp.Url, wp.Url)
	case !slices.Contains(urlSchemes, s):
		return fmt.Errorf("spec.url: scheme %q is not one of %s", s, strings.Join(urlSchemes, ", "))
	case rest == "":
		return fmt.Errorf("spec.url: %q has nothing after the scheme", wp.Url)
	}
	if wp.Sha256 != "" && !sha256Hex.MatchString(wp.Sha256) {
		return fmt.Errorf("spec.sha256: %q is not 64 lower-case hex digits (no \"sha256:\" prefix)", wp.Sha256)
	}
	if n := len(wp.PluginName); n > 256 {
		return fmt.Errorf("spec.pluginName: %d characters, at most 256", n)
	}
	for i, env := range wp.GetVmConfig().GetEnv() {
		if env.ValueFrom == extensions.EnvValueSource_HOST && env.Value != "" {
			return fmt.Errorf("spec.vmConfig.env[%d]: value may only be set when valueFrom is INLINE", i)
		}
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
