package e2e

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// xdsNode is the node id the test's Envoy bootstraps declare and the control
// plane serves.
const xdsNode = "wasmgate-e2e"

// xdsServer is a test-only control plane: an ADS server on loopback, built on
// go-control-plane's snapshot cache, that serves extension configurations
// (ECDS) to the node xdsNode and records how Envoy answers each response.
//
// # Notes
//
// Like istiod, it does not resend a version Envoy refused. A NACK carries the
// last version Envoy accepted, and the snapshot cache answers any request
// whose version differs from the snapshot's, so left alone it sends the
// refused version again at once; Envoy 1.40 then ACKs it while it keeps
// running the previous configuration. CreateWatch therefore treats a NACK of
// the current version as up to date; the next push is sent as usual.
type xdsServer struct {
	cache.SnapshotCache
	// addr is the gRPC listener's host:port.
	addr string

	mu sync.Mutex
	// sent maps the nonce of each ECDS response to its version.
	sent map[string]string
	// replies are Envoy's ECDS requests that answer a response: ACKs and
	// NACKs, in arrival order.
	replies []*discovery.DiscoveryRequest
	// changed is closed, and replaced, when a reply arrives.
	changed chan struct{}
}

// startXDS serves ADS on a free loopback port until the test ends.
func startXDS(t *testing.T) *xdsServer {
	t.Helper()
	s := &xdsServer{
		SnapshotCache: cache.NewSnapshotCache(true, cache.IDHash{}, nil),
		sent:          map[string]string{},
		changed:       make(chan struct{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	xds := server.NewServer(ctx, s, server.CallbackFuncs{
		StreamRequestFunc:  s.onRequest,
		StreamResponseFunc: s.onResponse,
	})
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, xds)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("xds server: %v", err)
		}
	})
	return s
}

// push makes configs the node's extension configurations at version.
func (s *xdsServer) push(t *testing.T, version string, configs ...*core.TypedExtensionConfig) {
	t.Helper()
	res := make([]types.Resource, len(configs))
	for i, c := range configs {
		res[i] = c
	}
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{resource.ExtensionConfigType: res})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSnapshot(context.Background(), xdsNode, snap); err != nil {
		t.Fatal(err)
	}
}

// awaitReply returns Envoy's first answer to the ECDS response of version:
// an ACK when its ErrorDetail is nil, else a NACK.
func (s *xdsServer) awaitReply(t *testing.T, version string, timeout time.Duration) *discovery.DiscoveryRequest {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		replies, changed := s.repliesLocked(version), s.changed
		s.mu.Unlock()
		if len(replies) > 0 {
			return replies[0]
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("xds: no ACK or NACK of version %q after %v", version, timeout)
		}
	}
}

// repliesTo returns Envoy's answers so far to the ECDS responses of version.
func (s *xdsServer) repliesTo(version string) []*discovery.DiscoveryRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repliesLocked(version)
}

func (s *xdsServer) repliesLocked(version string) []*discovery.DiscoveryRequest {
	var out []*discovery.DiscoveryRequest
	for _, r := range s.replies {
		if s.sent[r.GetResponseNonce()] == version {
			out = append(out, r)
		}
	}
	return out
}

func (s *xdsServer) onResponse(_ context.Context, _ int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	if resp.GetTypeUrl() != resource.ExtensionConfigType {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[resp.GetNonce()] = resp.GetVersionInfo()
}

func (s *xdsServer) onRequest(_ int64, req *discovery.DiscoveryRequest) error {
	if req.GetTypeUrl() != resource.ExtensionConfigType || req.GetResponseNonce() == "" {
		return nil // a subscription, not an answer
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append(s.replies, req)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// CreateWatch is the snapshot cache's, except that a NACK of the snapshot's
// current version waits for the next push instead of getting it again.
func (s *xdsServer) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		s.mu.Lock()
		refused := s.sent[req.GetResponseNonce()]
		s.mu.Unlock()
		if snap, err := s.GetSnapshot(xdsNode); err == nil && refused == snap.GetVersion(req.GetTypeUrl()) {
			req = proto.Clone(req).(*cache.Request)
			req.VersionInfo = refused
		}
	}
	return s.SnapshotCache.CreateWatch(req, sub, out)
}
