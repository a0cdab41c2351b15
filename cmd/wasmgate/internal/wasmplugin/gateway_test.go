package wasmplugin

import (
	"strings"
	"testing"
)

// TestRender_HTTPSGateway renders a Gateway that terminates TLS: an HTTPS
// server with the credential, and the plain-HTTP server redirecting to it.
// Render validates it with the Gateway CRD, as every object.
func TestRender_HTTPSGateway(t *testing.T) {
	_, digest := testImage(t)
	objs, err := Render(seedPolicy(t), Options{
		Image: "registry.example/wasmgate:v1", Digest: digest, NewGateway: true,
		Gateway: "edge/public", Hosts: []string{"shop.example.com"}, HTTPSCredential: "shop-example-com-tls",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Objects{objs[1]}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/gateway-https.yaml", got)
	// The CRD checks the TLS settings: an unknown mode is refused.
	bad := strings.Replace(string(got), "mode: SIMPLE", "mode: SIMPLER", 1)
	if _, err := ValidateObjects([]byte(bad)); err == nil || !strings.Contains(err.Error(), `Unsupported value: "SIMPLER"`) {
		t.Errorf("ValidateObjects(mode: SIMPLER) = %v, want the CRD's enum error", err)
	}
}

func TestRender_HTTPSGatewayErrors(t *testing.T) {
	_, digest := testImage(t)
	base := Options{Image: "registry.example/wasmgate:v1", Digest: digest, NewGateway: true, HTTPSCredential: "tls"}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"without a rendered Gateway", func(o *Options) { o.NewGateway = false },
			"gateway: an HTTPS credential is for a rendered Gateway (-new-gateway)"},
		{"not a Secret name", func(o *Options) { o.HTTPSCredential = "Shop_TLS" },
			`gateway: credential "Shop_TLS" is not a Secret name: a lowercase RFC 1123 subdomain must consist of`},
		{"plain HTTP on 443", func(o *Options) { o.GatewayPort = 443 },
			"gateway: plain HTTP on port 443 would collide with the HTTPS server: choose another -gateway-port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := Render(seedPolicy(t), o)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Render: %v\nwant %s", err, tc.want)
			}
		})
	}
}
