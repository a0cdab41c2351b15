package oci

import (
	"bytes"
	"context"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testModule returns a valid WebAssembly module: the header and one custom
// section named "wasmgate-test" holding payload.
func testModule(payload string) []byte {
	const name = "wasmgate-test"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, payload...)
	if len(body) > 127 {
		panic("testModule: payload too long for a one-byte LEB128 size")
	}
	mod := []byte("\x00asm\x01\x00\x00\x00")
	mod = append(mod, 0, byte(len(body)))
	return append(mod, body...)
}

// startRegistry serves go-containerregistry's in-process registry on
// 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mustImage(t *testing.T, wasm []byte, v Variant) v1.Image {
	t.Helper()
	img, err := Image(wasm, v)
	if err != nil {
		t.Fatalf("Image(%s): %v", v, err)
	}
	return img
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImage_Layout(t *testing.T) {
	wasm := testModule("layout")
	tests := []struct {
		name        string
		variant     Variant
		config      types.MediaType
		layers      []types.MediaType
		annotations map[string]string
	}{
		{
			name:        "compat",
			variant:     Compat,
			config:      types.OCIConfigJSON,
			layers:      []types.MediaType{types.OCILayer},
			annotations: map[string]string{"module.wasm.image/variant": "compat"},
		},
		{
			name:    "oci",
			variant: OCI,
			config:  "application/vnd.module.wasm.config.v1+json",
			layers: []types.MediaType{
				"application/vnd.module.wasm.config.v1+json",
				"application/vnd.module.wasm.content.layer.v1+wasm",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := mustImage(t, wasm, tc.variant)
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 {
				t.Errorf("manifest media type = %q, want %q", m.MediaType, types.OCIManifestSchema1)
			}
			if m.Config.MediaType != tc.config {
				t.Errorf("config media type = %q, want %q", m.Config.MediaType, tc.config)
			}
			var got []types.MediaType
			for _, l := range m.Layers {
				got = append(got, l.MediaType)
			}
			if !slices.Equal(got, tc.layers) {
				t.Errorf("layer media types = %q, want %q", got, tc.layers)
			}
			if !maps.Equal(m.Annotations, tc.annotations) {
				t.Errorf("annotations = %v, want %v", m.Annotations, tc.annotations)
			}
			if tc.variant == OCI && m.Layers[0].Digest != m.Config.Digest {
				t.Errorf("oci variant: layer 0 %s is not the config %s", m.Layers[0].Digest, m.Config.Digest)
			}
			raw, err := img.RawConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte("created")) {
				t.Errorf("config has a timestamp: %s", raw)
			}
			variant, got2, err := Check(img)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if variant != tc.variant || !bytes.Equal(got2, wasm) {
				t.Errorf("Check = %s, %d bytes; want %s, the %d bytes packaged", variant, len(got2), tc.variant, len(wasm))
			}
		})
	}
}

func TestImage_Reproducible(t *testing.T) {
	for _, v := range []Variant{Compat, OCI} {
		t.Run(string(v), func(t *testing.T) {
			// Two separate builds from two copies of the module.
			first := mustDigest(t, mustImage(t, testModule("same"), v))
			second := mustDigest(t, mustImage(t, testModule("same"), v))
			if first != second {
				t.Errorf("same module, two digests: %s, %s", first, second)
			}
			other := mustDigest(t, mustImage(t, testModule("other"), v))
			if other == first {
				t.Errorf("different modules, one digest %s", first)
			}
		})
	}
	// The oci variant has no compression, so its digest is fixed for all Go
	// releases: a change here means the layout changed.
	const want = "sha256:3efdfb8d7f9b66e5ce0a4938dc68fbfeb33ff4a45c32e266aa22eeab0735f062"
	if got := mustDigest(t, mustImage(t, testModule("same"), OCI)).String(); got != want {
		t.Errorf("oci digest = %s, want %s", got, want)
	}
}

func TestImage_Errors(t *testing.T) {
	tests := []struct {
		name    string
		wasm    []byte
		variant Variant
		want    string
	}{
		{name: "empty module", wasm: nil, variant: Compat, want: `module: not a WebAssembly binary (no \0asm header)`},
		{name: "text", wasm: []byte("#!/bin/sh\n"), variant: OCI, want: `module: not a WebAssembly binary (no \0asm header)`},
		{name: "variant", wasm: testModule("x"), variant: "docker", want: `variant "docker": want "compat" or "oci"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Image(tc.wasm, tc.variant)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Image error = %v, want %q", err, tc.want)
			}
		})
	}
}

// brokenImages are layouts Istio refuses, with the error Check gives.
func brokenImages(t *testing.T) []struct {
	name string
	img  v1.Image
	want string
} {
	t.Helper()
	wasm := testModule("broken")
	cfg := newBlob([]byte(runtimeConfig), MediaTypeWasmConfig)
	content := newBlob(wasm, MediaTypeWasmContent)
	ociConfig := newBlob([]byte(`{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	_, otherName, err := tarGzip("module.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	_, notWasm, err := tarGzip(PluginFile, []byte("not wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(config *blob, layers ...*blob) v1.Image {
		img, err := newImage(config, nil, layers...)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	return []struct {
		name string
		img  v1.Image
		want string
	}{
		{
			name: "oci variant with one layer",
			img:  mk(cfg, content),
			want: "oci variant: manifest has 1 layer, want exactly 2",
		},
		{
			name: "oci variant with three layers",
			img:  mk(cfg, cfg, content, newBlob(testModule("extra"), MediaTypeWasmContent)),
			want: "oci variant: manifest has 3 layers, want exactly 2",
		},
		{
			name: "oci variant with layers swapped",
			img:  mk(cfg, content, cfg),
			want: `oci variant: layer 0: media type "application/vnd.module.wasm.content.layer.v1+wasm" is not accepted by Istio, want "application/vnd.module.wasm.config.v1+json"`,
		},
		{
			name: "oci variant with an image config",
			img:  mk(ociConfig, cfg, content),
			want: `oci variant: config: media type "application/vnd.oci.image.config.v1+json" is not accepted by Istio, want "application/vnd.module.wasm.config.v1+json"`,
		},
		{
			name: "compat variant without plugin.wasm",
			img:  mk(ociConfig, newBlob(otherName, types.OCILayer)),
			want: "compat variant: last layer has no plugin.wasm",
		},
		{
			name: "compat variant with a module that is not wasm",
			img:  mk(ociConfig, newBlob(notWasm, types.OCILayer)),
			want: `compat variant: plugin.wasm is not a WebAssembly binary (no \0asm header)`,
		},
		{
			name: "compat variant with an uncompressed layer",
			img:  mk(ociConfig, newBlob(wasm, types.OCILayer)),
			want: "compat variant: layer 0: not gzip: gzip: invalid header",
		},
		{
			name: "compat variant with no layers",
			img:  mk(ociConfig),
			want: "compat variant: manifest has no layers",
		},
		{
			name: "CNCF wasm layout",
			img: mk(newBlob([]byte(`{}`), "application/vnd.wasm.config.v0+json"),
				newBlob(wasm, "application/wasm")),
			want: `compat variant: layer 0: media type "application/wasm" is not accepted by Istio, want "application/vnd.oci.image.layer.v1.tar+gzip"`,
		},
	}
}

func TestCheck_Errors(t *testing.T) {
	for _, tc := range brokenImages(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Check(tc.img)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Check error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestClient_PushPull(t *testing.T) {
	testPushPull(t, startRegistry(t))
}

// testPushPull pushes both variants to the registry at host, pulls each by
// tag and by digest, and checks that the module comes back unchanged.
func testPushPull(t *testing.T, host string) {
	ctx := context.Background()
	var c Client
	for _, v := range []Variant{Compat, OCI} {
		t.Run(string(v), func(t *testing.T) {
			wasm := testModule("push " + string(v))
			img := mustImage(t, wasm, v)
			tag := host + "/wasmgate:" + string(v)
			digest, err := c.Push(ctx, tag, img)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustDigest(t, img); digest != want {
				t.Errorf("Push digest = %s, want the local digest %s", digest, want)
			}
			for _, ref := range []string{tag, host + "/wasmgate@" + digest.String()} {
				pulled, err := c.Pull(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				if got := mustDigest(t, pulled); got != digest {
					t.Errorf("%s: digest = %s, want %s", ref, got, digest)
				}
				variant, got, err := Check(pulled)
				if err != nil {
					t.Fatalf("%s: Check: %v", ref, err)
				}
				if variant != v || !bytes.Equal(got, wasm) {
					t.Errorf("%s: Check = %s, %d bytes; want %s, the %d bytes pushed", ref, variant, len(got), v, len(wasm))
				}
			}
		})
	}
}

// TestClient_PushPull_Errors pushes the broken layouts: the registry stores
// them, and Check refuses them after the pull exactly as before it.
func TestClient_PushPull_Errors(t *testing.T) {
	host := startRegistry(t)
	ctx := context.Background()
	var c Client
	for i, tc := range brokenImages(t) {
		t.Run(tc.name, func(t *testing.T) {
			ref := host + "/broken:" + string(rune('a'+i))
			if _, err := c.Push(ctx, ref, tc.img); err != nil {
				t.Fatal(err)
			}
			pulled, err := c.Pull(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Check(pulled)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Check error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestClient_Errors(t *testing.T) {
	ctx := context.Background()
	var c Client
	img := mustImage(t, testModule("x"), Compat)
	tests := []struct {
		name string
		ref  string
		want string
	}{
		{name: "no tag", ref: "127.0.0.1:1/wasmgate", want: `reference "127.0.0.1:1/wasmgate": needs a tag or a digest`},
		{name: "bad tag", ref: "127.0.0.1:1/wasmgate:a b", want: `reference "127.0.0.1:1/wasmgate:a b": could not parse reference: 127.0.0.1:1/wasmgate:a b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Push(ctx, tc.ref, img)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Push error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseVariant_Errors(t *testing.T) {
	_, err := ParseVariant("wasm")
	if want := `variant "wasm": want "compat" or "oci"`; err == nil || err.Error() != want {
		t.Errorf("ParseVariant error = %v, want %q", err, want)
	}
}
