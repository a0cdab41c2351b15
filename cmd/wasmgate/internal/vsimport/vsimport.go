// Package vsimport converts Istio VirtualServices into a wasmgate policy and
// the route table render writes around it (the VirtualService's hosts and
// gateway). Every field either is carried or makes the import fail with its
// path and the reason (fields.go); none is dropped. The policy is compiled by
// the plugin's parser before it is returned, so it is known to be valid.
package vsimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/wasmplugin"
	"github.com/wasmgate/wasmgate/policy"
)

// Source is one file of Kubernetes objects.
type Source struct {
	Name string
	Data []byte
}

// Options are what the sources do not say.
type Options struct {
	// Namespace is the namespace of a VirtualService whose metadata names
	// none (as kubectl applies it); default "default", with a warning where
	// it qualifies a gateway.
	Namespace string
	// PathPrefix carries a uri prefix that does not end in "/" as a
	// pathPrefix, which matches whole path segments only: /products then no
	// longer matches /productsX, as it does in Istio.
	PathPrefix bool
}

// Finding is a refused field, another error, or a warning, located by file,
// object and path.
type Finding struct {
	// Where is "FILE: VirtualService NAME" or "FILE: document N".
	Where string
	// Path is the field's path in the object, e.g. "spec.http[1].mirror".
	Path    string
	Msg     string
	Warning bool
}

func (f Finding) String() string {
	s := f.Where
	if f.Path != "" {
		s += ": " + f.Path
	}
	if f.Warning {
		return s + ": warning: " + f.Msg
	}
	return s + ": " + f.Msg
}

// Errors are the findings that make an import fail, with its warnings.
type Errors []Finding

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}

// Result is an imported policy and its route table.
type Result struct {
	// Policy is the policy as JSON, accepted by policy.Parse.
	Policy json.RawMessage
	// RouteTable is what render puts around it.
	RouteTable RouteTable
	// Warnings name where wasmgate's meaning differs from Istio's, and what
	// was skipped (objects that are not VirtualServices).
	Warnings []Finding
	// Sources name the imported VirtualServices, "FILE: VirtualService NAME".
	Sources []string

	doc *object
}

// Import reads every VirtualService of the sources (YAML streams of
// Kubernetes objects, or List objects) in order and returns one policy whose
// routes are their http rules in that order.
//
// # Errors
//
// Import fails with [Errors] listing every refused field, every malformed
// value and every error of the plugin's parser on the result, each at its
// path in its VirtualService (warnings are included).
func Import(srcs []Source, o Options) (*Result, error) {
	im := &importer{namespace: o.Namespace, pathPrefix: o.PathPrefix, table: fields, guessNamespace: o.Namespace == ""}
	if im.guessNamespace {
		im.namespace = "default"
	}
	for _, src := range srcs {
		im.source(src)
	}
	res := &Result{}
	if len(im.routes) == 0 && !im.failed() {
		im.errorf(Finding{Where: strings.Join(names(srcs), ", ")}, "no VirtualService with http rules")
	}
	res.RouteTable = im.routeTable()
	if !im.failed() {
		res.doc = &object{{"routes", im.routes}}
		res.Policy, _ = json.Marshal(res.doc) // an object of strings, numbers and objects always marshals
		im.parse(res.Policy)
	}
	for _, d := range im.docs {
		res.Sources = append(res.Sources, d.where)
	}
	res.Warnings = im.warnings
	if im.failed() {
		return nil, append(im.errs, im.warnings...)
	}
	return res, nil
}

func names(srcs []Source) []string {
	out := make([]string, len(srcs))
	for i, s := range srcs {
		out[i] = s.Name
	}
	return out
}

type importer struct {
	// table is fields; held here because the mappings it names use it.
	table     map[string]rule
	namespace string
	// guessNamespace: Options named no namespace.
	guessNamespace bool
	pathPrefix     bool
	errs           Errors
	warnings       []Finding
	docs           []*document
	doc            *document // the VirtualService being imported
	routes         []any     // the policy's routes, *object each
	origins        []origin  // where each route comes from
}

// origin is the rule a policy route comes from.
type origin struct {
	where, at string
	// blocks maps the route's match blocks to the rule's, when they differ
	// (a block asked once per host).
	blocks []int
}

// path returns the rule's path for rest, a path in the policy route.
func (o origin) path(rest string) string {
	var j int
	if n, _ := fmt.Sscanf(rest, ".match[%d]", &j); n == 1 && j < len(o.blocks) {
		_, after, _ := strings.Cut(rest, "]")
		rest = fmt.Sprintf(".match[%d]%s", o.blocks[j], after)
	}
	return o.at + rest
}

// document is one VirtualService.
type document struct {
	where     string
	namespace string
	// namespaceDefaulted: neither the metadata nor Options name a namespace.
	namespaceDefaulted bool
	hosts              []string
	gateways           []string
}

func (im *importer) failed() bool { return len(im.errs) > 0 }

func (im *importer) errorf(at Finding, format string, args ...any) {
	at.Msg = fmt.Sprintf(format, args...)
	im.errs = append(im.errs, at)
}

// refuse reports a field that is not carried.
func (im *importer) refuse(path, why string) {
	im.errorf(Finding{Where: im.doc.where, Path: path}, "not carried: %s", why)
}

func (im *importer) bad(path, format string, args ...any) {
	im.errorf(Finding{Where: im.doc.where, Path: path}, format, args...)
}

func (im *importer) warn(path, format string, args ...any) {
	im.warnings = append(im.warnings, Finding{Where: im.doc.where, Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// VirtualService API versions import reads; v1 and v1beta1 are the same
// schema as v1alpha3.
var apiVersions = []string{"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}

var vsDescriptor = (&networking.VirtualService{}).ProtoReflect().Descriptor()

func (im *importer) source(src Source) {
	docs, err := wasmplugin.SplitDocuments(src.Data)
	if err != nil {
		im.errorf(Finding{Where: src.Name}, "%v", err)
		return
	}
	n := 0
	for _, doc := range docs {
		obj, err := decode(doc)
		if err != nil {
			im.errorf(Finding{Where: fmt.Sprintf("%s: document %d", src.Name, n+1)}, "%v", err)
			n++
			continue
		}
		items := []any{obj}
		if obj["kind"] == "List" {
			items, _ = obj["items"].([]any)
		}
		for _, item := range items {
			n++
			where := fmt.Sprintf("%s: document %d", src.Name, n)
			o, ok := item.(map[string]any)
			if !ok {
				im.errorf(Finding{Where: where}, "want an object")
				continue
			}
			im.object(where, src.Name, o)
		}
	}
}

// decode reads one document as Kubernetes does (YAML 1.1, duplicate keys
// refused).
func decode(doc []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := kjson.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("want an object")
	}
	return obj, nil
}

// object imports one Kubernetes object; other kinds than VirtualService are
// skipped with a warning.
func (im *importer) object(where, file string, obj map[string]any) {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if kind != "" && name != "" {
		where = file + ": " + kind + " " + name
	}
	im.doc = &document{where: where, namespace: im.namespace, namespaceDefaulted: im.guessNamespace}
	if kind != "VirtualService" {
		im.warn("", "skipped: import reads VirtualServices only")
		return
	}
	if v, _ := obj["apiVersion"].(string); !slices.Contains(apiVersions, v) {
		im.bad("apiVersion", "%q: want one of %s", v, strings.Join(apiVersions, ", "))
		return
	}
	if ns, ok := meta["namespace"].(string); ok && ns != "" {
		im.doc.namespace, im.doc.namespaceDefaulted = ns, false
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		im.bad("spec", "want an object")
		return
	}
	im.docs = append(im.docs, im.doc)
	errs := len(im.errs)
	im.fields("spec", vsDescriptor, spec, &object{})
	if len(im.errs) > errs {
		return
	}
	// The walk checked names and shapes; protojson checks the values (types,
	// enums, durations) as istiod would read them.
	js, _ := json.Marshal(spec) // decoded JSON always marshals
	if err := protojson.Unmarshal(js, &networking.VirtualService{}); err != nil {
		im.bad("spec", "%s", wasmplugin.ProtoErrorText(err))
	}
}

// field is one present field of a VirtualService, as its mapping sees it.
type field struct {
	at     string // its path, "spec.http[0].rewrite"
	fd     protoreflect.FieldDescriptor
	value  any            // as decoded
	holder map[string]any // the object that has it
	out    *object        // the policy object built from holder
}

// mapping writes a field into the policy (or the route table).
type mapping func(im *importer, f *field)

// messagePrefix is what field keys leave out of descriptor names.
const messagePrefix = "istio.networking.v1alpha3."

func fieldKey(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor) string {
	return strings.TrimPrefix(string(md.FullName()), messagePrefix) + "." + fd.JSONName()
}

// fields imports the fields of obj, a message md, into out.
func (im *importer) fields(at string, md protoreflect.MessageDescriptor, obj map[string]any, out *object) {
	for _, k := range sortedKeys(obj) {
		if md.Fields().ByJSONName(k) == nil {
			im.unknown(join(at, k), k, md)
		}
	}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		v, ok := obj[fd.JSONName()]
		if !ok || v == nil {
			continue
		}
		f := &field{at: join(at, fd.JSONName()), fd: fd, value: v, holder: obj, out: out}
		r, ok := im.table[fieldKey(md, fd)]
		switch {
		case !ok:
			im.refuse(f.at, "import does not know this field")
		case r.disp == refused:
			im.refuse(f.at, r.why)
		case r.mapTo != nil:
			r.mapTo(im, f)
		default:
			if r.why != "" {
				im.warn(f.at, "%s", r.why)
			}
			out.set(fd.JSONName(), im.value(f.at, fd, v))
		}
	}
}

func (im *importer) unknown(at, k string, md protoreflect.MessageDescriptor) {
	if fd := md.Fields().ByName(protoreflect.Name(k)); fd != nil {
		im.bad(at, "unknown field, did you mean %q?", fd.JSONName())
		return
	}
	im.bad(at, "unknown field")
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

// value converts a field's value: lists and maps item by item, messages
// field by field through the table, scalars as they are.
func (im *importer) value(at string, fd protoreflect.FieldDescriptor, v any) any {
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			im.bad(at, "want a list")
			return nil
		}
		out := make([]any, len(list))
		for i, item := range list {
			out[i] = im.single(fmt.Sprintf("%s[%d]", at, i), fd, item)
		}
		return out
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			im.bad(at, "want an object")
			return nil
		}
		out := &object{}
		for _, k := range sortedKeys(m) {
			out.set(k, im.single(fmt.Sprintf("%s[%q]", at, k), fd.MapValue(), m[k]))
		}
		return out
	}
	return im.single(at, fd, v)
}

// single converts one value of fd (an item of a list or a map).
func (im *importer) single(at string, fd protoreflect.FieldDescriptor, v any) any {
	md := fd.Message()
	if md == nil || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return v // scalars, and the well-known types JSON writes as scalars
	}
	obj, ok := v.(map[string]any)
	if !ok {
		im.bad(at, "want an object")
		return nil
	}
	out := &object{}
	im.fields(at, md, obj, out)
	return out
}

// parse compiles the policy with the plugin's parser and reports its errors
// at the VirtualService fields they come from.
func (im *importer) parse(policyJSON []byte) {
	_, err := policy.Parse(policyJSON)
	var errs policy.Errors
	if err == nil || !errors.As(err, &errs) {
		if err != nil {
			im.errorf(Finding{Where: "policy"}, "%v", err)
		}
		return
	}
	for _, e := range errs {
		f := Finding{Where: "policy", Path: e.Path, Msg: e.Msg}
		var i int
		if n, _ := fmt.Sscanf(e.Path, "routes[%d]", &i); n == 1 && i < len(im.origins) {
			_, rest, _ := strings.Cut(e.Path, "]")
			f.Where, f.Path = im.origins[i].where, im.origins[i].path(rest)
		}
		if n := len(im.errs); n > 0 && im.errs[n-1] == f {
			continue // the same block, asked for another host
		}
		im.errs = append(im.errs, f)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
