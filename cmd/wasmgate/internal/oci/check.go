package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Check applies the layout rules of Istio's agent to img and returns the
// variant and the module Istio would load from it.
//
// The rules: a Docker manifest or an OCI manifest in the compat layout has a
// last layer of the tar+gzip media type of its manifest kind, holding a file
// named plugin.wasm (at any directory depth, as Istio matches the base name).
// An OCI manifest in the oci layout (its config or a layer has a
// module.wasm media type) has exactly two layers: the runtime config, which is
// also the image config, then the module. The CNCF "application/wasm" layout
// is not accepted. The module must start with the WebAssembly magic number,
// which Istio does not check but Envoy does.
//
// # Errors
//
// Errors name the variant and the layer, e.g.
// `oci variant: manifest has 1 layer, want exactly 2` or
// `compat variant: layer 0: media type "application/wasm" is not accepted by Istio, want "application/vnd.oci.image.layer.v1.tar+gzip"`.
func Check(img v1.Image) (Variant, []byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return "", nil, fmt.Errorf("manifest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", nil, fmt.Errorf("manifest: layers: %w", err)
	}
	var wasm []byte
	variant := Compat
	switch {
	case m.MediaType == types.DockerManifestSchema2:
		wasm, err = extractCompat(layers, m.Layers, types.DockerLayer)
	case m.MediaType != types.OCIManifestSchema1 && m.MediaType != "":
		// An OCI manifest may leave mediaType empty; Istio treats it as OCI.
		return "", nil, fmt.Errorf("manifest: media type %q is not an image manifest", m.MediaType)
	case isOCIVariant(m):
		variant = OCI
		wasm, err = extractOCI(layers, m)
	default:
		wasm, err = extractCompat(layers, m.Layers, types.OCILayer)
	}
	if err == nil && !bytes.HasPrefix(wasm, wasmMagic) {
		err = fmt.Errorf("%s is not a WebAssembly binary (no \\0asm header)", PluginFile)
	}
	if err != nil {
		return "", nil, fmt.Errorf("%s variant: %w", variant, err)
	}
	return variant, wasm, nil
}

// isOCIVariant reports whether m uses a module.wasm media type anywhere, the
// mark of the oci layout.
func isOCIVariant(m *v1.Manifest) bool {
	if m.Config.MediaType == MediaTypeWasmConfig {
		return true
	}
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeWasmConfig || l.MediaType == MediaTypeWasmContent {
			return true
		}
	}
	return false
}

// notAccepted is the error for a layer or config of the wrong media type.
func notAccepted(where string, got, want types.MediaType) error {
	return fmt.Errorf("%s: media type %q is not accepted by Istio, want %q", where, got, want)
}

// extractCompat returns plugin.wasm from the last layer, which must have
// media type want and be a gzipped tar.
func extractCompat(layers []v1.Layer, descs []v1.Descriptor, want types.MediaType) ([]byte, error) {
	if len(layers) == 0 {
		return nil, errors.New("manifest has no layers")
	}
	last := len(layers) - 1
	where := fmt.Sprintf("layer %d", last)
	if mt := descs[last].MediaType; mt != want {
		return nil, notAccepted(where, mt, want)
	}
	rc, err := layers[last].Compressed()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: not gzip: %w", where, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("last layer has no %s", PluginFile)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: tar: %w", where, err)
		}
		if hdr.Typeflag == tar.TypeReg && path.Base(hdr.Name) == PluginFile {
			wasm, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", where, PluginFile, err)
			}
			return wasm, nil
		}
	}
}

// extractOCI returns the module layer of a two-layer oci variant image.
func extractOCI(layers []v1.Layer, m *v1.Manifest) ([]byte, error) {
	if n := len(layers); n != 2 {
		unit := "layers"
		if n == 1 {
			unit = "layer"
		}
		return nil, fmt.Errorf("manifest has %d %s, want exactly 2", n, unit)
	}
	if m.Config.MediaType != MediaTypeWasmConfig {
		return nil, notAccepted("config", m.Config.MediaType, MediaTypeWasmConfig)
	}
	for i, want := range []types.MediaType{MediaTypeWasmConfig, MediaTypeWasmContent} {
		if mt := m.Layers[i].MediaType; mt != want {
			return nil, notAccepted(fmt.Sprintf("layer %d", i), mt, want)
		}
	}
	// The module layer is raw Wasm, so read it as stored: go-containerregistry
	// would try to decompress it through Uncompressed.
	rc, err := layers[1].Compressed()
	if err != nil {
		return nil, fmt.Errorf("layer 1: %w", err)
	}
	defer rc.Close()
	wasm, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("layer 1: %w", err)
	}
	return wasm, nil
}
