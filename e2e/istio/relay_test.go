package istio

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/istio/pkg/wasm"
)

// Type URLs the relay acts on.
const (
	extensionConfigType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
	listenerType        = "type.googleapis.com/envoy.config.listener.v3.Listener"
	wasmFilterType      = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	rbacFilterType      = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
)

// relay sits between Envoy and istiod and does istio-agent's part of the
// xDS stream: it forwards every message, converts the Wasm extension configs
// of ECDS responses with istio.io/istio/pkg/wasm (pull the image, check the
// digest, point the config at the local file, or fall back to RBAC), and
// records what Envoy received and how Envoy answered.
type relay struct {
	istiod string
	cache  wasm.Cache
	addr   string

	mu sync.Mutex
	// extensions are the ECDS resources sent to Envoy, in order.
	extensions []sentExtension
	// nacks are Envoy's requests that refused a response.
	nacks []*discovery.DiscoveryRequest
	// httpFilters are the HTTP filter names of the listeners sent, by listener.
	httpFilters map[string][]string
	// changed is closed, and replaced, when either grows.
	changed chan struct{}
}

// sentExtension is one ECDS resource as Envoy got it.
type sentExtension struct {
	name, typeURL, version string
	config                 *core.TypedExtensionConfig
	at                     time.Time
}

func startRelay(t *testing.T, istiod string, cache wasm.Cache) *relay {
	t.Helper()
	r := &relay{istiod: istiod, cache: cache, changed: make(chan struct{}), httpFilters: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, r)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return r
}

func (r *relay) StreamAggregatedResources(down discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	conn, err := grpc.NewClient(r.istiod, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(down.Context())
	defer cancel()
	up, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() {
		for {
			req, err := down.Recv()
			if err != nil {
				errc <- err
				return
			}
			if req.GetErrorDetail() != nil {
				r.record(func() { r.nacks = append(r.nacks, req) })
			}
			if err := up.Send(req); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		for {
			resp, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			if err := r.transform(resp); err != nil {
				errc <- err
				return
			}
			if err := down.Send(resp); err != nil {
				errc <- err
				return
			}
		}
	}()
	return <-errc
}

func (r *relay) DeltaAggregatedResources(discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return nil
}

// transform does istio-agent's conversion of ECDS responses, and binds
// listeners to loopback on kernel-picked ports.
func (r *relay) transform(resp *discovery.DiscoveryResponse) error {
	switch resp.GetTypeUrl() {
	case extensionConfigType:
		// Istio's agent sends the response on (with the fallback filter in
		// place of a module it could not fetch) even when this fails.
		_ = wasm.MaybeConvertWasmExtensionConfig(resp.Resources, r.cache)
		now := time.Now()
		for _, res := range resp.Resources {
			var ec core.TypedExtensionConfig
			if err := res.UnmarshalTo(&ec); err != nil {
				return err
			}
			r.record(func() {
				r.extensions = append(r.extensions, sentExtension{name: ec.GetName(), typeURL: ec.GetTypedConfig().GetTypeUrl(), version: resp.GetVersionInfo(), config: &ec, at: now})
			})
		}
	case listenerType:
		for i, res := range resp.Resources {
			var l listener.Listener
			if err := res.UnmarshalTo(&l); err != nil {
				return err
			}
			// istiod binds the gateway to 0.0.0.0 on the Gateway's port;
			// here it binds loopback on a port the kernel picks.
			if sa := l.GetAddress().GetSocketAddress(); sa.GetAddress() == "0.0.0.0" {
				sa.Address = "127.0.0.1"
				sa.PortSpecifier = &core.SocketAddress_PortValue{PortValue: 0}
			}
			var names []string
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					var conn hcm.HttpConnectionManager
					if f.GetTypedConfig().UnmarshalTo(&conn) == nil {
						for _, hf := range conn.GetHttpFilters() {
							names = append(names, hf.GetName())
						}
					}
				}
			}
			r.record(func() { r.httpFilters[l.GetName()] = names })
			a, err := anypb.New(&l)
			if err != nil {
				return err
			}
			resp.Resources[i] = a
		}
	}
	return nil
}

func (r *relay) record(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
}

// await returns the first value cond finds in the relay's records, waiting
// up to timeout.
func await[T any](t *testing.T, r *relay, timeout time.Duration, what string, cond func(r *relay) (T, bool)) T {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		v, ok := cond(r)
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return v
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("relay: no %s after %v", what, timeout)
		}
	}
}
