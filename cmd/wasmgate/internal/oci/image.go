// Package oci packages a proxy-wasm module as an OCI image that Istio's agent
// accepts, checks an image against the layouts Istio accepts, and pushes and
// pulls images with go-containerregistry, the library istio-agent pulls with.
//
// Two layouts are built:
//
//   - [Compat]: an OCI image manifest whose only layer is a gzipped tar
//     ("application/vnd.oci.image.layer.v1.tar+gzip") holding plugin.wasm,
//     annotated "module.wasm.image/variant=compat". Every Istio release
//     with WasmPlugin loads it, and so do other image tools.
//   - [OCI]: the Wasm artifact layout: exactly two layers, the runtime config
//     ("application/vnd.module.wasm.config.v1+json", which is also the image
//     config) and the raw module ("application/vnd.module.wasm.content.layer.v1+wasm").
//
// # Notes
//
// Images are reproducible: the same module gives the same manifest digest,
// because tar headers, the gzip header and the configs carry no time, owner
// or host. The digest can therefore be computed without a registry (see
// [Image]) and pinned in a WasmPlugin before the push. The gzip stream comes
// from Go's compress/flate, so a Go release that changes its encoder may
// change the compat digest; the oci variant has no compression.
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Variant names an image layout that Istio accepts.
type Variant string

const (
	// Compat is the layout with one tar+gzip layer holding plugin.wasm.
	Compat Variant = "compat"
	// OCI is the two-layer Wasm artifact layout.
	OCI Variant = "oci"
)

// ParseVariant returns the Variant named s ("compat" or "oci").
func ParseVariant(s string) (Variant, error) {
	switch v := Variant(s); v {
	case Compat, OCI:
		return v, nil
	}
	return "", fmt.Errorf("variant %q: want %q or %q", s, Compat, OCI)
}

// Media types and names of the layouts, as Istio's agent reads them.
const (
	// PluginFile is the file Istio looks for in a compat layer.
	PluginFile = "plugin.wasm"
	// VariantAnnotation marks a compat image, as the compat specification asks.
	VariantAnnotation = "module.wasm.image/variant"

	MediaTypeWasmConfig  types.MediaType = "application/vnd.module.wasm.config.v1+json"
	MediaTypeWasmContent types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
)

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte("\x00asm")

// runtimeConfig is the oci variant's config blob. It names the host and the
// root id the plugin registers under; it has no timestamp, so the digest
// depends on the module only.
const runtimeConfig = `{"type":"envoy_proxy","rootIds":["wasmgate"]}`

// Image packages wasm as an image of variant v.
//
// # Errors
//
// Image refuses bytes that are not a WebAssembly binary module, so a text
// file or an empty build output never reaches a registry.
func Image(wasm []byte, v Variant) (v1.Image, error) {
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, fmt.Errorf("module: not a WebAssembly binary (no \\0asm header)")
	}
	switch v {
	case Compat:
		return compatImage(wasm)
	case OCI:
		cfg := newBlob([]byte(runtimeConfig), MediaTypeWasmConfig)
		return newImage(cfg, nil, cfg, newBlob(wasm, MediaTypeWasmContent))
	}
	return nil, fmt.Errorf("variant %q: want %q or %q", v, Compat, OCI)
}

func compatImage(wasm []byte) (v1.Image, error) {
	tarball, gz, err := tarGzip(PluginFile, wasm)
	if err != nil {
		return nil, err
	}
	diffID := sha256.Sum256(tarball)
	cfg, err := json.Marshal(compatConfig{
		Architecture: "wasm",
		OS:           "wasip1",
		RootFS: rootFS{Type: "layers", DiffIDs: []string{
			"sha256:" + hex.EncodeToString(diffID[:]),
		}},
	})
	if err != nil {
		return nil, err
	}
	return newImage(newBlob(cfg, types.OCIConfigJSON),
		map[string]string{VariantAnnotation: string(Compat)},
		newBlob(gz, types.OCILayer))
}

// compatConfig is the OCI image config of a compat image, with only the
// fields the image specification requires: no creation time, no history.
type compatConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	RootFS       rootFS `json:"rootfs"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// tarGzip returns a tar archive holding one file, name, with fixed metadata,
// and the archive gzipped with a zero header (no name, no mtime).
func tarGzip(name string, data []byte) (tarball, gz []byte, err error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o444,
		Size:     int64(len(data)),
		Format:   tar.FormatUSTAR, // no PAX records with access or change times
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	var zb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	if err != nil {
		return nil, nil, err
	}
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return tb.Bytes(), zb.Bytes(), nil
}

// blob is a content-addressed byte string with its media type. It implements
// partial.CompressedLayer; go-containerregistry derives the rest (DiffID by
// decompressing when the content is gzip).
type blob struct {
	data   []byte
	digest v1.Hash
	mt     types.MediaType
}

func newBlob(data []byte, mt types.MediaType) *blob {
	sum := sha256.Sum256(data)
	return &blob{data: data, mt: mt, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

func (b *blob) Digest() (v1.Hash, error)            { return b.digest, nil }
func (b *blob) Size() (int64, error)                { return int64(len(b.data)), nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.mt, nil }
func (b *blob) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

func (b *blob) descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: b.mt, Size: int64(len(b.data)), Digest: b.digest}
}

// image is an in-memory image whose manifest is written here field by field,
// so its bytes (and digest) depend only on the blobs.
type image struct {
	manifest []byte
	config   *blob
	layers   []*blob
}

func newImage(config *blob, annotations map[string]string, layers ...*blob) (v1.Image, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        config.descriptor(),
		Annotations:   annotations,
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.descriptor())
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&image{manifest: raw, config: config, layers: layers})
}

func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *image) RawConfigFile() ([]byte, error)      { return i.config.data, nil }
func (i *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	if i.config.digest == h {
		return i.config, nil
	}
	return nil, fmt.Errorf("image has no blob %s", h)
}
