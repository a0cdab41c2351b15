package wasmplugin

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdYAML holds the CRDs of the kinds this package renders, copied from the
// file istio.io/api ships (kubernetes/customresourcedefinitions.gen.yaml) by
// TestCRDs_Current -update, which also fails when the copy is stale.
//
//go:embed crds.gen.yaml
var crdYAML []byte

// crdKinds are the CRDs crds.gen.yaml holds, by metadata.name.
var crdKinds = []string{"wasmplugins.extensions.istio.io", "virtualservices.networking.istio.io", "gateways.networking.istio.io"}

// crdValidator validates objects of one kind and version as the API server
// does: unknown fields (strict field validation), the OpenAPI schema, then
// the x-kubernetes-validations CEL rules.
type crdValidator struct {
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

var (
	loadCRDs   sync.Once
	validators map[string]*crdValidator // by "group/version/Kind"
	crdErr     error
)

// validatorFor returns the validator of apiVersion and kind.
func validatorFor(apiVersion, kind string) (*crdValidator, error) {
	loadCRDs.Do(func() { validators, crdErr = compileCRDs(crdYAML) })
	if crdErr != nil {
		return nil, crdErr
	}
	v, ok := validators[apiVersion+"/"+kind]
	if !ok {
		return nil, fmt.Errorf("apiVersion %s, kind %s: not a kind wasmgate renders (WasmPlugin, VirtualService, Gateway)", apiVersion, kind)
	}
	return v, nil
}

func compileCRDs(all []byte) (map[string]*crdValidator, error) {
	out := map[string]*crdValidator{}
	docs, err := SplitDocuments(all)
	if err != nil {
		return nil, err
	}
	for _, doc := range docs {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return nil, fmt.Errorf("CRD: %w", err)
		}
		for _, ver := range crd.Spec.Versions {
			if ver.Schema == nil {
				continue
			}
			var internal apiextensions.CustomResourceValidation
			if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(ver.Schema, &internal, nil); err != nil {
				return nil, fmt.Errorf("CRD %s %s: %w", crd.Name, ver.Name, err)
			}
			s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("CRD %s %s: %w", crd.Name, ver.Name, err)
			}
			sv, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("CRD %s %s: %w", crd.Name, ver.Name, err)
			}
			out[crd.Spec.Group+"/"+ver.Name+"/"+crd.Spec.Names.Kind] = &crdValidator{
				structural: s,
				schema:     sv,
				cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
			}
		}
	}
	return out, nil
}

// validate checks obj, a JSON-decoded object (numbers as int64 or float64),
// in the API server's order: unknown fields (which strict field validation
// refuses), the OpenAPI schema, list-type uniqueness, CEL rules.
func (v *crdValidator) validate(obj map[string]any) []error {
	var errs []error
	unknown := pruning.PruneWithOptions(deepCopy(obj), v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown field", path))
	}
	fieldErrs := apiservervalidation.ValidateCustomResource(nil, obj, v.schema)
	fieldErrs = append(fieldErrs, listtype.ValidateListSetsAndMaps(nil, v.structural, obj)...)
	celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	for _, e := range append(fieldErrs, celErrs...) {
		errs = append(errs, errors.New(e.Error()))
	}
	return errs
}

func deepCopy(obj map[string]any) map[string]any {
	return structuralschema.JSON{Object: obj}.DeepCopy().Object.(map[string]any)
}

// SplitDocuments splits a YAML stream into its documents, as kubectl does,
// dropping the empty ones.
func SplitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}
