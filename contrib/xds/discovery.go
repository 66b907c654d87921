package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Discovery is a kuberegistry.Catalog read from a tier over one ADS stream (incremental xDS),
// for programs that are not gRPC clients of xds:///…, or that want the instances themselves: their
// ID, version, metadata and every endpoint, exactly as GetService returns them on the tier.
//
// It subscribes to every Cluster, which names the services that exist, and to the assignments
// of the services it is asked for: GetService and Watch subscribe to a name (a name asked for
// once stays subscribed until Close), WatchServices to every assignment while it runs. A name the
// tier does not serve is answered with an empty set at once.
//
// When the stream breaks, Discovery keeps serving the last sets it received and opens a new
// stream with backoff (see WithReconnectBackoff); on the new stream it tells the tier the
// versions it holds, and hears only of what changed meanwhile. Watchers see nothing of the
// reconnection but the changes. A Discovery never fails for a broken stream: only the calls that
// wait for a first answer (GetService of a name not yet received, Services, WatchServices) wait,
// bounded by their ctx, until the tier answers.
//
// Its methods may be called concurrently. Returned slices and instances are shared snapshots:
// treat them as read-only (ServiceInstance.Clone gives a copy you own).
type Discovery struct {
	client  discoverygrpc.AggregatedDiscoveryServiceClient
	node    *corev3.Node
	log     *slog.Logger
	backoff backoff

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the stream's goroutine and every watcher's end
	// kick wakes the stream's goroutine to send the subscriptions that changed (capacity 1).
	kick chan struct{}

	mu sync.Mutex // guards every field below and the fields of every serviceState
	// closed is set by Close; later calls fail with ErrClosed.
	closed bool
	// clusters are the names the tier serves, from CDS.
	clusters map[string]clusterState
	// clustersKnown is set at the first CDS response.
	clustersKnown bool
	// services are the names subscribed to (and, while wildcard > 0, every name received).
	services map[string]*serviceState
	// wildcard is the number of open ServicesWatchers: while positive, every assignment is
	// subscribed to.
	wildcard int
	// catalogGen counts the changes of the catalog WatchServices returns.
	catalogGen uint64
	listeners  map[*servicesWatcher]struct{}
	// changed is closed and replaced whenever a response is applied, to wake the calls that wait
	// for a first answer.
	changed chan struct{}
}

// clusterState is what CDS says of a name.
type clusterState struct {
	version        string
	alias, serving bool
}

// serviceState is the assignment of one name.
type serviceState struct {
	// instances is the published set, len == cap, never changed once published.
	instances []*kuberegistry.ServiceInstance
	version   string // the resource version of the assignment
	received  bool   // an assignment (or its removal) has arrived
	gen       uint64 // counts the changes of instances
	pinned    bool   // GetService asked for it: subscribed until Close
	watchers  map[*watcher]struct{}
}

var _ kuberegistry.Catalog = (*Discovery)(nil)

// NewDiscovery returns a Discovery reading the tier at the other end of conn (a
// *grpc.ClientConn to the tier's address). It starts its stream at once; Close ends it. The
// Discovery does not close conn: close the Discovery first.
func NewDiscovery(conn grpc.ClientConnInterface, opts ...DiscoveryOption) (*Discovery, error) {
	o := discoveryOptions{backoffBase: defaultBackoffBase, backoffMax: defaultBackoffMax}
	for _, opt := range opts {
		opt.applyDiscovery(&o)
	}
	if conn == nil {
		o.errs = append(o.errs, errors.New("conn is nil: pass a *grpc.ClientConn to the tier, from grpc.NewClient"))
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	if o.nodeID == "" {
		o.nodeID = defaultNodeID()
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	d := &Discovery{
		client:    discoverygrpc.NewAggregatedDiscoveryServiceClient(conn),
		node:      &corev3.Node{Id: o.nodeID, UserAgentName: "kuberegistry-xds"},
		log:       o.logger,
		backoff:   backoff{base: o.backoffBase, max: o.backoffMax},
		kick:      make(chan struct{}, 1),
		clusters:  map[string]clusterState{},
		services:  map[string]*serviceState{},
		listeners: map[*servicesWatcher]struct{}{},
		changed:   make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run()
	}()
	return d, nil
}

// GetService returns the instances of the named service (or "service.namespace"), in the tier's
// order. The first call for a name subscribes to it and waits, bounded by ctx, for its first
// assignment; later calls read the local copy, kept up to date, without a request. A name the
// tier does not serve is an empty set, returned as soon as the tier's list of names has arrived.
func (d *Discovery) GetService(ctx context.Context, name string) ([]*kuberegistry.ServiceInstance, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if st := d.services[name]; !d.closed && st != nil && st.received && st.pinned {
		instances := st.instances
		d.mu.Unlock()
		return instances, nil
	}
	d.mu.Unlock()
	var instances []*kuberegistry.ServiceInstance
	err := d.await(ctx, func() bool {
		if !d.clustersKnown {
			return false
		}
		st := d.services[name]
		if st == nil || !st.received {
			if _, served := d.clusters[name]; !served {
				return true // the tier does not serve it: empty
			}
		}
		if st == nil {
			st = &serviceState{}
			d.services[name] = st
		}
		if !st.pinned {
			st.pinned = true
			d.kickLocked()
		}
		instances = st.instances
		return st.received
	})
	return instances, err
}

// Watch returns a Watcher over the instances of the named service (or "service.namespace"). It
// subscribes to the name and, when the tier serves it, waits (bounded by ctx) for its first
// assignment, so that the first Next returns the current set at once. The watcher ends with
// Stop, with ctx, or with Close.
func (d *Discovery) Watch(ctx context.Context, name string) (kuberegistry.Watcher, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	w := newWatcher(ctx, d, name)
	st := d.services[name]
	if st == nil {
		st = &serviceState{}
		d.services[name] = st
	}
	if st.watchers == nil {
		st.watchers = map[*watcher]struct{}{}
	}
	st.watchers[w] = struct{}{}
	d.kickLocked()
	d.wg.Add(1)
	d.mu.Unlock()
	context.AfterFunc(w.ctx, func() {
		defer d.wg.Done()
		d.unwatch(w)
	})
	err := d.await(ctx, func() bool {
		_, served := d.clusters[name]
		return d.clustersKnown && (!served || st.received)
	})
	if err != nil {
		_ = w.Stop()
		return nil, err
	}
	return w, nil
}

// unwatch removes a watcher that ended; a name nobody asks for any more is unsubscribed.
func (d *Discovery) unwatch(w *watcher) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.services[w.name]
	if st == nil {
		return
	}
	delete(st.watchers, w)
	d.dropIfIdleLocked(w.name, st)
}

// dropIfIdleLocked forgets a name nobody subscribes to any more, and has the stream unsubscribe.
func (d *Discovery) dropIfIdleLocked(name string, st *serviceState) {
	if st.pinned || len(st.watchers) > 0 || d.wildcard > 0 {
		return
	}
	delete(d.services, name)
	d.kickLocked()
}

// Services returns the names of the services that have at least one instance, sorted (the
// namespaced forms left out). The first call waits, bounded by ctx, for the tier's list.
func (d *Discovery) Services(ctx context.Context) ([]string, error) {
	var names []string
	err := d.await(ctx, func() bool {
		if !d.clustersKnown {
			return false
		}
		for name, c := range d.clusters {
			if c.serving && !c.alias {
				names = append(names, name)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// WatchServices returns a watcher of the whole catalog. While it runs, the Discovery subscribes
// to every assignment; WatchServices waits, bounded by ctx, until it holds the assignment of
// every service the tier lists, so that the first Next returns the whole catalog.
func (d *Discovery) WatchServices(ctx context.Context) (kuberegistry.ServicesWatcher, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	w := &servicesWatcher{wakeup: newWakeup(ctx), d: d}
	d.listeners[w] = struct{}{}
	d.wildcard++
	d.kickLocked()
	d.wg.Add(1)
	d.mu.Unlock()
	context.AfterFunc(w.ctx, func() {
		defer d.wg.Done()
		d.unlisten(w)
	})
	err := d.await(ctx, func() bool {
		if !d.clustersKnown {
			return false
		}
		for name, c := range d.clusters {
			if st := d.services[name]; c.serving && (st == nil || !st.received) {
				return false
			}
		}
		return true
	})
	if err != nil {
		_ = w.Stop()
		return nil, err
	}
	return w, nil
}

func (d *Discovery) unlisten(w *servicesWatcher) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.listeners[w]; !ok {
		return
	}
	delete(d.listeners, w)
	d.wildcard--
	if d.wildcard == 0 {
		for name, st := range d.services {
			d.dropIfIdleLocked(name, st)
		}
		d.kickLocked()
	}
}

// catalogLocked is the catalog a ServicesWatcher returns: every service with instances.
func (d *Discovery) catalogLocked() map[string][]*kuberegistry.ServiceInstance {
	out := make(map[string][]*kuberegistry.ServiceInstance, len(d.services))
	for name, st := range d.services {
		if len(st.instances) > 0 && !d.clusters[name].alias {
			out[name] = st.instances
		}
	}
	return out
}

// Close ends the stream and every watcher (their Next return an error matching
// context.Canceled, caused by ErrClosed), and waits for the Discovery's goroutines. It does not
// close the conn. It is idempotent.
func (d *Discovery) Close() error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, st := range d.services {
			for w := range st.watchers {
				w.cancel(ErrClosed)
			}
		}
		for l := range d.listeners {
			l.cancel(ErrClosed)
		}
	}
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	return nil
}

// await calls done under mu until it returns true, waking at every applied response; it fails
// when ctx ends or the Discovery is closed.
func (d *Discovery) await(ctx context.Context, done func() bool) error {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return ErrClosed
		}
		if done() {
			d.mu.Unlock()
			return nil
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("kuberegistry/xds: waiting for the tier: %w", context.Cause(ctx))
		case <-d.ctx.Done():
			return ErrClosed
		}
	}
}

// kickLocked has the stream's goroutine send the subscriptions, without blocking.
func (d *Discovery) kickLocked() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// broadcastLocked wakes every call waiting in await.
func (d *Discovery) broadcastLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// validName checks a name given to GetService or Watch by the library's rule: a Kubernetes
// label value.
func validName(name string) error {
	if errs := validation.IsValidLabelValue(name); name == "" || len(errs) > 0 {
		reason := "it is empty"
		if len(errs) > 0 {
			reason = errs[0]
		}
		return fmt.Errorf("%w %q: %s", kuberegistry.ErrInvalidName, name, reason)
	}
	return nil
}
