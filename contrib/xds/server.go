package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
)

// Server serves the services of one or more catalogs over xDS: ADS and the four per-type
// services (LDS, RDS, CDS, EDS), state of the world and incremental (delta) alike. Every client
// is served the same resources, whatever its node id. See the package documentation for the
// resources of a service.
//
// A change of one service costs the Server O(that service) to translate and encode (once, not
// once per client) plus, for each client subscribed to that service, one response; clients that
// did not ask for it hear nothing. Following a catalog through WatchServices adds a walk of the
// catalog's names per change, comparing each set by identity (a few nanoseconds a name).
type Server struct {
	catalogs []kuberegistry.Catalog
	log      *slog.Logger

	// One cache per resource type, each holding a version per resource, behind a mux by type URL.
	listeners, routes, clusters, endpoints *cache.LinearCache
	xds                                    serverv3.Server

	// ctx is the lifetime of the streams: canceled when Run returns, which ends them.
	ctx    context.Context
	cancel context.CancelFunc
	ran    atomic.Bool
	// synced is closed once every catalog's first state is in the caches; streams wait for it.
	synced      chan struct{}
	syncedCount atomic.Int32

	mu        sync.Mutex // guards sources, names and conflicts, and orders the updates of the caches
	sources   []*source
	names     map[string]*served
	conflicts map[string]bool // names served by several catalogs, logged once

	// Counters for Stats, kept as things happen.
	streams, services, resources atomic.Int64
	updates, pushes, requests    atomic.Uint64
	nacks                        atomic.Uint64
}

// ServerStats are the counters of a Server, read in O(1) (for metrics).
type ServerStats struct {
	// Streams is the number of open xDS streams, ADS or per type: about one per connected client
	// (a grpc-go client opens one ADS stream per xDS server it uses).
	Streams int64
	// Services is the number of services with at least one instance, by their plain names.
	Services int64
	// Resources is the number of names served, plain and namespaced forms, those that lost their
	// instances included; each name is a Listener, a RouteConfiguration, a Cluster and a
	// ClusterLoadAssignment.
	Resources int64
	// Updates counts the changes of a served name written to the caches: a new name, a new set
	// of instances, a name that gains or loses its last instance.
	Updates uint64
	// Pushes counts the responses sent to clients.
	Pushes uint64
	// Requests counts the requests received from clients: subscriptions, ACKs and NACKs.
	Requests uint64
	// NACKs counts the requests that rejected a response (each is also logged).
	NACKs uint64
}

// NewServer returns a Server of the given catalogs, such as a started *kuberegistry.Registry (pods)
// and a started *kuberegistry.EndpointSliceDiscovery (plain Services). When two catalogs serve
// the same name, the first one that has instances of it wins (the conflict is logged once).
// Register it on a grpc.Server, then call Run.
func NewServer(catalogs []kuberegistry.Catalog, opts ...ServerOption) (*Server, error) {
	var o serverOptions
	for _, opt := range opts {
		opt.applyServer(&o)
	}
	if len(catalogs) == 0 {
		o.errs = append(o.errs, errors.New("no catalog: pass at least one kuberegistry.Catalog, such as a started *kuberegistry.Registry"))
	}
	for i, c := range catalogs {
		if c == nil {
			o.errs = append(o.errs, fmt.Errorf("catalog %d is nil: pass started catalogs", i))
		}
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	s := &Server{
		catalogs:  append([]kuberegistry.Catalog(nil), catalogs...),
		log:       o.logger,
		synced:    make(chan struct{}),
		names:     make(map[string]*served),
		conflicts: make(map[string]bool),
	}
	for range catalogs {
		s.sources = append(s.sources, newSource())
	}
	logs := cache.WithLogger(controlPlaneLogger{s.log})
	s.listeners = cache.NewLinearCache(listenerType, logs)
	s.routes = cache.NewLinearCache(routeType, logs)
	s.clusters = cache.NewLinearCache(clusterType, logs)
	s.endpoints = cache.NewLinearCache(endpointType, logs)
	mux := &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
		Caches: map[string]cache.Cache{
			listenerType: s.listeners, routeType: s.routes, clusterType: s.clusters, endpointType: s.endpoints,
		},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.xds = serverv3.NewServer(s.ctx, mux, callbacks{s},
		// grpc-go unsubscribes from every resource of a type with an empty request: without
		// legacy wildcard, that means "nothing", not "everything". Wildcard is asked with "*".
		sotw.DeactivateLegacyWildcard(),
		// One channel and a plain select per ADS stream, rather than a reflect.Select rebuilt at
		// every request: about 10% less CPU per response (BenchmarkServerUpdate), and responses
		// in the order of their types' updates.
		sotw.WithOrderedADS(),
		sotw.WithLogger(controlPlaneLogger{s.log}))
	return s, nil
}

// GRPCServerOptions are the options this package recommends for the grpc.Server of the tier,
// to be passed to grpc.NewServer with the program's own (credentials, interceptors). Fixed flow
// control windows of 1 MiB turn off grpc-go's bandwidth estimation, which otherwise sends an
// HTTP/2 ping for every ACK a client sends, and reads its answer: about 12% of the tier's CPU
// per update and client (BenchmarkServerUpdate). The tier's messages are small; 1 MiB is ample.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(1 << 20),
	}
}

// Register registers the Aggregated Discovery Service and the Listener, RouteConfiguration,
// Cluster and Endpoint discovery services on g (a *grpc.Server). Streams opened before every
// catalog's first state is served wait for it, so that a client never sees an empty tier.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
}

// Run follows the catalogs and keeps the served resources up to date until ctx ends, then
// returns nil; it returns an error if a catalog cannot be watched or its watch ends (a catalog
// closed under it), after stopping to follow the others. The catalogs must be started. Every
// stream ends when Run returns: clients then reconnect, to another replica of the tier if there
// is one. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	defer s.cancel()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(s.catalogs))
	var wg sync.WaitGroup
	for i := range s.catalogs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.follow(ctx, i)
		}()
	}
	var first error
	for range s.catalogs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	wg.Wait()
	return first
}

// Synced reports whether every catalog's first state is served, from then on until Run returns.
// It is meant for a readiness probe.
func (s *Server) Synced() bool {
	select {
	case <-s.synced:
		return s.ctx.Err() == nil
	default:
		return false
	}
}

// Stats returns the Server's counters; it costs O(1).
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Streams:   s.streams.Load(),
		Services:  s.services.Load(),
		Resources: s.resources.Load(),
		Updates:   s.updates.Load(),
		Pushes:    s.pushes.Load(),
		Requests:  s.requests.Load(),
		NACKs:     s.nacks.Load(),
	}
}

// follow applies every state of catalog i until ctx ends.
func (s *Server) follow(ctx context.Context, i int) error {
	c := s.catalogs[i]
	s.mu.Lock()
	s.sources[i].namespace = soleNamespace(c)
	s.mu.Unlock()
	w, err := c.WatchServices(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kuberegistry/xds: watching catalog %d (%T): %w; start the catalog before Run", i, c, err)
	}
	defer w.Stop()
	for first := true; ; first = false {
		catalog, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("kuberegistry/xds: the watch of catalog %d (%T) ended: %w", i, c, err)
		}
		s.apply(i, catalog)
		if first && int(s.syncedCount.Add(1)) == len(s.catalogs) {
			close(s.synced)
			s.log.Info("xds: every catalog is served", "catalogs", len(s.catalogs), "services", s.services.Load())
		}
	}
}

// soleNamespace is the namespace of the instances of a catalog that carry none in their
// metadata: a Registry of one namespace tells it through its Status. "" when unknown.
func soleNamespace(c kuberegistry.Catalog) string {
	st, ok := c.(interface{ Status() kuberegistry.Status })
	if !ok {
		return ""
	}
	ns := ""
	for _, inf := range st.Status().Informers {
		switch {
		case inf.Namespace == "":
			return ""
		case ns == "":
			ns = inf.Namespace
		case ns != inf.Namespace:
			return ""
		}
	}
	return ns
}

// waitSynced holds a new stream until every catalog's first state is served, so that a client
// connecting to a tier that just started is never told that its services do not exist.
func (s *Server) waitSynced(ctx context.Context) error {
	select {
	case <-s.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return errors.New("kuberegistry/xds: the server has stopped")
	}
}
