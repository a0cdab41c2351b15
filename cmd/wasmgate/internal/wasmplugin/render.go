// Package wasmplugin renders the Istio WasmPlugin resource that loads
// wasmgate into an ingress gateway, and validates WasmPlugin manifests
// strictly: against Istio's API types (unknown fields and bad enum values
// are errors, as with kubectl's strict field validation) and against the
// cross-field rules of the WasmPlugin CRD, which the API types do not carry.
package wasmplugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/policy"
)

// API group, version and kind of the resource.
const (
	APIVersion = "extensions.istio.io/v1alpha1"
	Kind       = "WasmPlugin"
)

// Options are the parts of a WasmPlugin that do not come from the policy.
// Zero fields take the defaults documented on each.
type Options struct {
	// Image is the image reference, with or without "oci://", by tag
	// ("registry.example/wasmgate:v1") or by digest ("…@sha256:…").
	Image string
	// Digest is the image's manifest digest ("sha256:<64 hex>"), which the
	// agent verifies after the pull. It may be left empty when Image is a
	// digest reference.
	Digest string

	// Name and Namespace of the resource; default "wasmgate" in "istio-system",
	// where the default ingress gateway runs.
	Name, Namespace string
	// Selector is the workload selector; default istio: ingressgateway.
	Selector map[string]string
	// Phase is AUTHN, AUTHZ, STATS or UNSPECIFIED_PHASE; default STATS, which
	// runs after Istio's authentication and authorization (they see the path
	// the client sent) and before the router (rewrites and the route hint
	// header take effect).
	Phase string
	// Priority orders plugins within a phase, higher first; default 0.
	Priority int32
	// FailStrategy is FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD; default FAIL_CLOSE:
	// a dead VM must not let traffic bypass rate limits and header removal.
	FailStrategy string
	// ImagePullPolicy is IfNotPresent or Always; default IfNotPresent, safe
	// because the digest pins the content.
	ImagePullPolicy string
}

// PluginName is the root id wasmgate registers its plugin under.
const PluginName = "wasmgate"

// Manifest is a WasmPlugin resource as kubectl applies it. Field order is the
// order of the YAML and JSON output.
type Manifest struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion"`
	Kind       string   `json:"kind" yaml:"kind"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata is the part of Kubernetes object metadata a WasmPlugin needs.
type Metadata struct {
	Name      string `json:"name" yaml:"name"`
	Namespace string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
}

// Spec is the rendered subset of the WasmPlugin spec.
type Spec struct {
	Selector        *Selector `json:"selector,omitempty" yaml:"selector,omitempty"`
	URL             string    `json:"url" yaml:"url"`
	SHA256          string    `json:"sha256" yaml:"sha256"`
	ImagePullPolicy string    `json:"imagePullPolicy" yaml:"imagePullPolicy"`
	PluginName      string    `json:"pluginName" yaml:"pluginName"`
	Phase           string    `json:"phase" yaml:"phase"`
	Priority        int32     `json:"priority" yaml:"priority"`
	FailStrategy    string    `json:"failStrategy" yaml:"failStrategy"`
	PluginConfig    RawJSON   `json:"pluginConfig" yaml:"pluginConfig"`
}

// Selector is a workload selector.
type Selector struct {
	MatchLabels map[string]string `json:"matchLabels" yaml:"matchLabels"`
}

// RawJSON is a JSON object kept as written: JSON output embeds it compacted,
// YAML output converts it in block style with its key order.
type RawJSON []byte

// MarshalJSON returns r.
func (r RawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// MarshalYAML returns r as a YAML node tree in block style.
func (r RawJSON) MarshalYAML() (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(r, &doc); err != nil {
		return nil, err
	}
	blockStyle(&doc)
	return doc.Content[0], nil
}

// blockStyle drops the flow and quoting styles a JSON text parses with; the
// encoder quotes again every string that would read back as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Render builds the WasmPlugin that loads wasmgate from o.Image with
// policyJSON as its configuration, and validates it.
//
// # Errors
//
// Render fails when the policy does not parse (the error is policy.Parse's,
// prefixed "policy: "), when the image has no manifest digest or two that
// differ, and when the result does not pass [Validate].
func Render(policyJSON []byte, o Options) (*Manifest, error) {
	if _, err := policy.Parse(policyJSON); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, policyJSON); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ref, digest, err := imageDigest(o.Image, o.Digest)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   Metadata{Name: or(o.Name, "wasmgate"), Namespace: or(o.Namespace, "istio-system")},
		Spec: Spec{
			Selector:        &Selector{MatchLabels: o.Selector},
			URL:             "oci://" + ref,
			SHA256:          strings.TrimPrefix(digest, "sha256:"),
			ImagePullPolicy: or(o.ImagePullPolicy, "IfNotPresent"),
			PluginName:      PluginName,
			Phase:           or(o.Phase, "STATS"),
			Priority:        o.Priority,
			FailStrategy:    or(o.FailStrategy, "FAIL_CLOSE"),
			PluginConfig:    RawJSON(compact.Bytes()),
		},
	}
	if len(o.Selector) == 0 {
		m.Spec.Selector.MatchLabels = map[string]string{"istio": "ingressgateway"}
	}
	out, err := m.YAML()
	if err != nil {
		return nil, err
	}
	if _, err := Validate(out); err != nil {
		return nil, err
	}
	return m, nil
}

// YAML returns m as a YAML document.
func (m *Manifest) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// JSON returns m as indented JSON.
func (m *Manifest) JSON() ([]byte, error) {
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// imageDigest splits image into the reference without "oci://" and the
// manifest digest, from digest or from the reference itself.
func imageDigest(image, digest string) (ref, manifestDigest string, err error) {
	ref = strings.TrimPrefix(image, "oci://")
	if ref == "" {
		return "", "", fmt.Errorf("image: empty reference")
	}
	if strings.Contains(ref, "://") {
		return "", "", fmt.Errorf("image %q: want an oci:// reference", image)
	}
	if _, pinned, ok := strings.Cut(ref, "@"); ok {
		if digest != "" && digest != pinned {
			return "", "", fmt.Errorf("image %q: digest %s differs from the reference's %s", image, digest, pinned)
		}
		digest = pinned
	}
	if digest == "" {
		return "", "", fmt.Errorf("image %q: no manifest digest: pass one or reference the image by digest", image)
	}
	if !strings.HasPrefix(digest, "sha256:") || !sha256Hex.MatchString(digest[len("sha256:"):]) {
		return "", "", fmt.Errorf("digest %q: want sha256: and 64 lower-case hex digits", digest)
	}
	return ref, digest, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
