package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Client pushes images to and pulls them from a registry, with the
// credentials of the Docker config (~/.docker/config.json) when it has some.
//
// # Notes
//
// Registries on loopback ("localhost:5000", "127.0.0.1:5000") and on private
// networks are reached over plain HTTP without setting Insecure, as in
// istio-agent.
type Client struct {
	// Insecure allows plain HTTP to any registry.
	Insecure bool
}

func (c Client) reference(ref string) (name.Reference, error) {
	var opts []name.Option
	if c.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	// Without strict validation a bare repository means ":latest", and a
	// moving tag is what a pinned digest exists to avoid.
	if _, err := name.ParseReference(ref, append(opts, name.StrictValidation)...); err != nil {
		return nil, fmt.Errorf("reference %q: needs a tag or a digest", ref)
	}
	return r, nil
}

func (Client) options(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// Push uploads img to ref ("host[:port]/repository:tag") and returns the
// manifest digest, the value a WasmPlugin pins in spec.sha256.
func (c Client) Push(ctx context.Context, ref string, img v1.Image) (v1.Hash, error) {
	r, err := c.reference(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(r, img, c.options(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", r, err)
	}
	return digest, nil
}

// Pull fetches the image at ref, by tag or by digest
// ("host[:port]/repository@sha256:…"). Blobs are fetched lazily; a digest
// reference is verified against the manifest received.
func (c Client) Pull(ctx context.Context, ref string) (v1.Image, error) {
	r, err := c.reference(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, c.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	return img, nil
}
