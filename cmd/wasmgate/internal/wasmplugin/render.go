// Package wasmplugin renders, from one wasmgate policy, the Istio objects
// that put it in front of a gateway: the WasmPlugin that loads the plugin,
// the VirtualService that routes on the plugin's decision (the hint header)
// and, optionally, the Gateway. It also validates such objects strictly:
// against Istio's API types and CRD rules, plus wasmgate's own checks.
package wasmplugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/wasmgate/wasmgate/policy"
)

// API group, version and kind of the resources.
const (
	APIVersion           = "extensions.istio.io/v1alpha1"
	Kind                 = "WasmPlugin"
	NetworkingAPIVersion = "networking.istio.io/v1"
	VirtualServiceKind   = "VirtualService"
	GatewayKind          = "Gateway"
)

// Options are the parts of the rendered objects that do not come from the
// policy. Zero fields take the defaults documented on each.
type Options struct {
	// Image is the image reference, with or without "oci://", by tag
	// ("registry.example/wasmgate:v1") or by digest ("…@sha256:…").
	Image string
	// Digest is the image's manifest digest ("sha256:<64 hex>"), which the
	// agent verifies after the pull. It may be left empty when Image is a
	// digest reference.
	Digest string

	// Name and Namespace of the objects; default "wasmgate" in
	// "istio-system", where the default ingress gateway runs.
	Name, Namespace string
	// Selector is the workload selector; default istio: ingressgateway
	// unless TargetRefs is set.
	Selector map[string]string
	// TargetRefs, when set, attach the WasmPlugin to Gateway API objects
	// instead of a selector.
	TargetRefs []TargetRef
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
	// ImagePullSecret names the Secret with the registry's credentials.
	ImagePullSecret string

	// Gateway is the Istio Gateway the VirtualService binds to, "name" (in
	// Namespace) or "namespace/name"; default Name.
	Gateway string
	// NewGateway renders that Gateway too, on the selector's workloads.
	NewGateway bool
	// GatewayPort is the rendered Gateway's plain-HTTP port; default 80.
	GatewayPort uint32
	// HTTPSCredential, with NewGateway, adds an HTTPS server on port 443
	// terminating TLS with the Secret of this name (credentialName, mode
	// SIMPLE), and makes the plain-HTTP server redirect to it.
	HTTPSCredential string
	// Hosts are the VirtualService's (and the rendered Gateway's) hosts;
	// default "*".
	Hosts []string
	// Fallback is where requests that no policy route takes go: "host" or
	// "host:port" of a service. Default: a 404 direct response.
	Fallback string
}

// TargetRef names a Gateway API object a WasmPlugin attaches to.
type TargetRef struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

// PluginName is the root id wasmgate registers its plugin under.
const PluginName = "wasmgate"

// Object is one Kubernetes object as kubectl applies it.
type Object struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       any      `json:"spec"`
}

// Metadata is the part of Kubernetes object metadata the objects need.
type Metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// Spec is the rendered subset of the WasmPlugin spec.
type Spec struct {
	Selector        *Selector       `json:"selector,omitempty"`
	TargetRefs      []TargetRef     `json:"targetRefs,omitempty"`
	URL             string          `json:"url"`
	SHA256          string          `json:"sha256"`
	ImagePullPolicy string          `json:"imagePullPolicy"`
	ImagePullSecret string          `json:"imagePullSecret,omitempty"`
	PluginName      string          `json:"pluginName"`
	Phase           string          `json:"phase"`
	Priority        int32           `json:"priority"`
	FailStrategy    string          `json:"failStrategy"`
	PluginConfig    json.RawMessage `json:"pluginConfig"`
}

// Selector is a workload selector.
type Selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

// Objects are rendered objects in the order to apply them.
type Objects []Object

// Render builds the WasmPlugin that loads wasmgate from o.Image with
// policyJSON as its configuration, and the VirtualService that routes on the
// plugin's hint header (and the Gateway with o.NewGateway), and validates
// them.
//
// # Errors
//
// Render fails when the policy does not parse (the error is policy.Parse's,
// prefixed "policy: "), when the image has no manifest digest or two that
// differ, when a name is not one Kubernetes accepts, when two routes write
// the same hint for different destinations, and when an object does not pass
// [ValidateObjects].
func Render(policyJSON []byte, o Options) (Objects, error) {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
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
	o.Name, o.Namespace = or(o.Name, "wasmgate"), or(o.Namespace, "istio-system")
	if err := checkNames(o); err != nil {
		return nil, err
	}
	if len(o.Selector) == 0 && len(o.TargetRefs) == 0 {
		o.Selector = map[string]string{"istio": "ingressgateway"}
	}
	spec := Spec{
		TargetRefs:      o.TargetRefs,
		URL:             "oci://" + ref,
		SHA256:          strings.TrimPrefix(digest, "sha256:"),
		ImagePullPolicy: or(o.ImagePullPolicy, "IfNotPresent"),
		ImagePullSecret: o.ImagePullSecret,
		PluginName:      PluginName,
		Phase:           or(o.Phase, "STATS"),
		Priority:        o.Priority,
		FailStrategy:    or(o.FailStrategy, "FAIL_CLOSE"),
		PluginConfig:    json.RawMessage(compact.Bytes()),
	}
	if len(o.Selector) > 0 {
		spec.Selector = &Selector{MatchLabels: o.Selector}
	}
	objs := Objects{{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: o.Name, Namespace: o.Namespace}, Spec: spec}}
	gwNamespace, gwName, ok := strings.Cut(or(o.Gateway, o.Name), "/")
	if !ok {
		gwNamespace, gwName = o.Namespace, gwNamespace
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{"*"}
	}
	if o.NewGateway {
		if len(o.Selector) == 0 || len(o.TargetRefs) > 0 {
			return nil, fmt.Errorf("gateway: a rendered Gateway selects its workloads by labels; give -selector, not -target-ref")
		}
		gw, err := gatewayObject(gwName, gwNamespace, o.Selector, hosts, o.GatewayPort, o.HTTPSCredential)
		if err != nil {
			return nil, err
		}
		objs = append(objs, gw)
	} else if o.HTTPSCredential != "" {
		return nil, fmt.Errorf("gateway: an HTTPS credential is for a rendered Gateway (-new-gateway)")
	}
	vs, err := virtualService(pol, o.Name, o.Namespace, gwNamespace+"/"+gwName, hosts, o.Fallback)
	if err != nil {
		return nil, err
	}
	objs = append(objs, vs)
	out, err := objs.YAML()
	if err != nil {
		return nil, err
	}
	if _, err := ValidateObjects(out); err != nil {
		return nil, err
	}
	return objs, nil
}

// checkNames checks the names Kubernetes will check, with its own rules.
func checkNames(o Options) error {
	var errs []string
	if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Sprintf("name %q: %s", o.Name, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Sprintf("namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	for _, k := range sortedKeys(o.Selector) {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, fmt.Sprintf("selector label %q: %s", k, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(o.Selector[k]); len(msgs) > 0 {
			errs = append(errs, fmt.Sprintf("selector label %q value %q: %s", k, o.Selector[k], strings.Join(msgs, "; ")))
		}
	}
	if o.ImagePullSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(o.ImagePullSecret); len(msgs) > 0 {
			errs = append(errs, fmt.Sprintf("imagePullSecret %q: %s", o.ImagePullSecret, strings.Join(msgs, "; ")))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// The VirtualService and Gateway parts that Render writes.
type (
	vsSpec struct {
		Hosts    []string    `json:"hosts"`
		Gateways []string    `json:"gateways"`
		HTTP     []httpRoute `json:"http"`
	}
	httpRoute struct {
		Name           string          `json:"name"`
		Match          []httpMatch     `json:"match,omitempty"`
		Route          []routeDest     `json:"route,omitempty"`
		DirectResponse *directResponse `json:"directResponse,omitempty"`
		*ruleTable
	}
	httpMatch struct {
		Headers map[string]stringMatch `json:"headers"`
	}
	stringMatch struct {
		Exact string `json:"exact"`
	}
	routeDest struct {
		Destination destination `json:"destination"`
	}
	destination struct {
		Host   string      `json:"host"`
		Subset string      `json:"subset,omitempty"`
		Port   *portNumber `json:"port,omitempty"`
	}
	portNumber struct {
		Number uint32 `json:"number"`
	}
	directResponse struct {
		Status uint32       `json:"status"`
		Body   responseBody `json:"body"`
	}
	responseBody struct {
		String string `json:"string"`
	}
	gatewaySpec struct {
		Selector map[string]string `json:"selector"`
		Servers  []server          `json:"servers"`
	}
	server struct {
		Port  serverPort `json:"port"`
		Hosts []string   `json:"hosts"`
		TLS   *serverTLS `json:"tls,omitempty"`
	}
	serverTLS struct {
		HTTPSRedirect  bool   `json:"httpsRedirect,omitempty"`
		Mode           string `json:"mode,omitempty"`
		CredentialName string `json:"credentialName,omitempty"`
	}
	serverPort struct {
		Number   uint32 `json:"number"`
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	}
)

// FallbackRoute is the name of the VirtualService rule for requests that no
// policy route takes.
const FallbackRoute = "wasmgate-fallback"

// virtualService routes each (hint header, hint) pair the policy can write to
// its destination, exactly, then everything else to fallback; first, the
// rules of what policy routes ask of the route table (tableRules).
func virtualService(pol *policy.Policy, name, namespace, gateway string, hosts []string, fallback string) (Object, error) {
	last := httpRoute{Name: FallbackRoute}
	if fallback == "" {
		last.DirectResponse = &directResponse{Status: 404, Body: responseBody{String: "no route\n"}}
	} else {
		host, port, hasPort := strings.Cut(fallback, ":")
		dest := destination{Host: host}
		if hasPort {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil || n == 0 {
				return Object{}, fmt.Errorf("fallback %q: port must be 1 to 65535", fallback)
			}
			dest.Port = &portNumber{Number: uint32(n)}
		}
		last.Route = []routeDest{{Destination: dest}}
	}
	spec := vsSpec{Hosts: hosts, Gateways: []string{gateway}, HTTP: tableRules(pol, last)}
	type written struct {
		dest destination
		at   string
	}
	seen := map[[2]string]written{}
	for _, r := range pol.Routes() {
		if r.Split == nil {
			continue
		}
		for _, d := range r.Split.Destinations {
			at := fmt.Sprintf("routes[%d].route[%d]", r.Index, d.Index)
			dest := destinationOf(d)
			key := [2]string{r.Split.HintHeader, d.Hint}
			if prev, ok := seen[key]; ok {
				if prev.dest.Host != dest.Host || prev.dest.Subset != dest.Subset || prev.dest.Port.number() != dest.Port.number() {
					return Object{}, fmt.Errorf("%s: hint %q in header %s also names %s's other destination; set a distinct \"hint\"", at, d.Hint, key[0], prev.at)
				}
				continue
			}
			seen[key] = written{dest, at}
			spec.HTTP = append(spec.HTTP, httpRoute{
				Name:  r.Name + "-" + strconv.Itoa(d.Index),
				Match: []httpMatch{{Headers: map[string]stringMatch{key[0]: {Exact: d.Hint}}}},
				Route: []routeDest{{Destination: dest}},
			})
		}
	}
	spec.HTTP = append(spec.HTTP, last)
	return Object{APIVersion: NetworkingAPIVersion, Kind: VirtualServiceKind, Metadata: Metadata{Name: name, Namespace: namespace}, Spec: spec}, nil
}

// destinationOf is d as Istio's Destination.
func destinationOf(d policy.Destination) destination {
	dest := destination{Host: d.Host, Subset: d.Subset}
	if d.Port != 0 {
		dest.Port = &portNumber{Number: d.Port}
	}
	return dest
}

func (p *portNumber) number() uint32 {
	if p == nil {
		return 0
	}
	return p.Number
}

// HTTPSPort is the port of a rendered Gateway's HTTPS server.
const HTTPSPort = 443

// gatewayObject renders a Gateway serving plain HTTP on port and, with a
// credential (the name of a TLS Secret where the gateway runs), HTTPS on
// HTTPSPort, to which plain HTTP then redirects.
func gatewayObject(name, namespace string, selector map[string]string, hosts []string, port uint32, credential string) (Object, error) {
	if port == 0 {
		port = 80
	}
	servers := []server{{Port: serverPort{Number: port, Name: "http", Protocol: "HTTP"}, Hosts: hosts}}
	if credential != "" {
		if msgs := validation.IsDNS1123Subdomain(credential); len(msgs) > 0 {
			return Object{}, fmt.Errorf("gateway: credential %q is not a Secret name: %s", credential, strings.Join(msgs, "; "))
		}
		if port == HTTPSPort {
			return Object{}, fmt.Errorf("gateway: plain HTTP on port %d would collide with the HTTPS server: choose another -gateway-port", port)
		}
		servers[0].TLS = &serverTLS{HTTPSRedirect: true}
		servers = append(servers, server{
			Port:  serverPort{Number: HTTPSPort, Name: "https", Protocol: "HTTPS"},
			Hosts: hosts,
			TLS:   &serverTLS{Mode: "SIMPLE", CredentialName: credential},
		})
	}
	return Object{
		APIVersion: NetworkingAPIVersion, Kind: GatewayKind,
		Metadata: Metadata{Name: name, Namespace: namespace},
		Spec:     gatewaySpec{Selector: selector, Servers: servers},
	}, nil
}

// YAML returns the objects as YAML documents. The encoder is the one kubectl
// reads with (sigs.k8s.io/yaml, YAML 1.1), so every string that YAML 1.1
// would read as another type ("on", "y", "010", "~") is quoted.
func (objs Objects) YAML() ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		out, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

// JSON returns the objects as an indented Kubernetes List.
func (objs Objects) JSON() ([]byte, error) {
	out, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}, "", "  ")
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
