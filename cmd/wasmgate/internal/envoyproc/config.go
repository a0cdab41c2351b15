package envoyproc

import (
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// Shipped is the connection manager of the repository's envoy.yaml, the
// configuration users start from (a test keeps the two the same).
var Shipped = Config{NormalizePath: true, MergeSlashes: true, EscapedSlashes: KeepUnchanged, UseRemoteAddress: true, GenerateRequestID: true}

// hcmConfig is the part of an HttpConnectionManager this package mirrors.
type hcmConfig struct {
	NormalizePath     *bool  `yaml:"normalize_path"`
	MergeSlashes      bool   `yaml:"merge_slashes"`
	EscapedSlashes    string `yaml:"path_with_escaped_slashes_action"`
	UseRemoteAddress  bool   `yaml:"use_remote_address"`
	XFFNumTrustedHops int    `yaml:"xff_num_trusted_hops"`
	GenerateRequestID *bool  `yaml:"generate_request_id"`
}

// FromEnvoyConfig reads the HTTP connection manager of the first listener's
// first filter chain in an Envoy bootstrap (YAML or JSON), with Envoy's
// defaults for the fields it does not set.
//
// # Errors
//
// It fails when the configuration has no such connection manager or names an
// unknown path_with_escaped_slashes_action.
func FromEnvoyConfig(data []byte) (Config, error) {
	var boot struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						Name        string    `yaml:"name"`
						TypedConfig hcmConfig `yaml:"typed_config"`
					} `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	if err := yaml.Unmarshal(data, &boot); err != nil {
		return Config{}, err
	}
	ls := boot.StaticResources.Listeners
	if len(ls) == 0 || len(ls[0].FilterChains) == 0 {
		return Config{}, errors.New("static_resources.listeners[0].filter_chains[0]: missing")
	}
	for i, f := range ls[0].FilterChains[0].Filters {
		if f.Name == "envoy.filters.network.http_connection_manager" {
			c, err := f.TypedConfig.config()
			if err != nil {
				return Config{}, fmt.Errorf("static_resources.listeners[0].filter_chains[0].filters[%d].typed_config.%w", i, err)
			}
			return c, nil
		}
	}
	return Config{}, errors.New("static_resources.listeners[0].filter_chains[0]: no envoy.filters.network.http_connection_manager")
}

func (h hcmConfig) config() (Config, error) {
	c := Config{
		NormalizePath:     h.NormalizePath != nil && *h.NormalizePath,
		MergeSlashes:      h.MergeSlashes,
		EscapedSlashes:    KeepUnchanged,
		UseRemoteAddress:  h.UseRemoteAddress,
		XFFNumTrustedHops: h.XFFNumTrustedHops,
		GenerateRequestID: h.GenerateRequestID == nil || *h.GenerateRequestID,
	}
	switch a := EscapedSlashes(h.EscapedSlashes); a {
	case "", "IMPLEMENTATION_SPECIFIC_DEFAULT":
	case KeepUnchanged, RejectRequest, UnescapeAndRedirect, UnescapeAndForward:
		c.EscapedSlashes = a
	default:
		return Config{}, fmt.Errorf("path_with_escaped_slashes_action: %q is not one of KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD", a)
	}
	if c.XFFNumTrustedHops < 0 {
		return Config{}, fmt.Errorf("xff_num_trusted_hops: %d is negative", c.XFFNumTrustedHops)
	}
	return c, nil
}

// IstioModes are the values of Istio's meshConfig.pathNormalization
// .normalization.
var IstioModes = []string{"NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"}

// FromIstio is what istiod configures on an ingress gateway's connection
// manager for a meshConfig.pathNormalization mode (DEFAULT is BASE):
// NONE turns normalize_path off; BASE turns it on; MERGE_SLASHES adds
// merge_slashes; DECODE_AND_MERGE_SLASHES adds
// path_with_escaped_slashes_action UNESCAPE_AND_FORWARD. Every mode sets
// KEEP_UNCHANGED otherwise. A gateway uses the remote address;
// numTrustedProxies (meshConfig.defaultConfig.gatewayTopology) is hops.
func FromIstio(mode string, hops int) (Config, error) {
	if mode == "DEFAULT" {
		mode = "BASE"
	}
	if !slices.Contains(IstioModes, mode) {
		return Config{}, fmt.Errorf("pathNormalization %q: want one of %v", mode, IstioModes)
	}
	return Config{
		NormalizePath:     mode != "NONE",
		MergeSlashes:      mode == "MERGE_SLASHES" || mode == "DECODE_AND_MERGE_SLASHES",
		EscapedSlashes:    map[bool]EscapedSlashes{true: UnescapeAndForward, false: KeepUnchanged}[mode == "DECODE_AND_MERGE_SLASHES"],
		UseRemoteAddress:  true,
		XFFNumTrustedHops: hops,
		GenerateRequestID: true,
	}, nil
}
