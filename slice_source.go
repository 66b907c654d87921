package kuberegistry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// endpointSlicesResource names the resource in permission errors, in the resource.group form that
// `kubectl create role --resource` takes, since EndpointSlices are not in the core group.
const endpointSlicesResource = "endpointslices.discovery.k8s.io"

// EndpointSliceDiscovery discovers plain Kubernetes Services, which never call Register, from
// their discovery.k8s.io/v1 EndpointSlices: the service name is the Service's name (the slices'
// kubernetes.io/service-name label). It is safe for concurrent use.
//
// All the slices of a Service are aggregated (the EndpointSlice controller splits a Service over
// several slices of at most 100 endpoints). Each backend is one instance:
//
//   - ID: the name of the pod in the endpoint's targetRef, else the endpoint's address.
//   - Name: the Service's name; Version: "".
//   - Metadata: MetadataKeyNamespace ("kuberegistry.io/namespace") always, MetadataKeyZone
//     ("kuberegistry.io/zone") and MetadataKeyNode ("kuberegistry.io/node") when the endpoint
//     has them.
//   - Endpoints: one URL per port of the slice, "scheme://address:port", IPv6 in brackets. Only
//     an endpoint's first address is used: the API defines no meaning for the others, and
//     kube-proxy ignores them. A pod that appears in an IPv4 and an IPv6 slice (dual stack) is one
//     instance with the endpoints of both.
//
// The scheme of a port comes from its appProtocol ("http", "grpc"; "kubernetes.io/h2c" gives
// "h2c", and any other prefixed value the part after the last "/"), else from its name by the
// rules for pods ("http", "grpc-internal", …). A port with neither, with no port number, or out of
// range has no endpoint, and a backend without any endpoint is not an instance. The endpoints of a
// secure scheme (https, grpcs, wss, tls) carry the query "isSecure=true", as go-kratos expects.
//
// Conditions: an endpoint is served when it is ready (a ready condition that is not set means
// ready). A Service that has no ready endpoint at all falls back to its endpoints that are still
// serving while terminating (serving and terminating both true), as kube-proxy does, so that its
// clients keep a backend while a rollout ends. Other endpoints are never served.
//
// Duplicates: while the EndpointSlice controller rewrites slices, one address can appear in two
// of them for a moment. Each address is served once, from the copy in the best condition.
//
// Slices of addressType FQDN, and other malformed slices, are skipped, with one log line per
// slice and problem; the Service's other slices are served.
type EndpointSliceDiscovery struct {
	client          kubernetes.Interface
	namespaces      []string // discovery scope, one informer each; [""] is all namespaces
	selector        string   // the slices listed: those of a Service, and the user's filter
	includeNotReady bool     // serve every endpoint, whatever its conditions
	serviceSelector string   // the user's filter on Services, for the Service informers; "": none
	serviceNotes    *string  // WithServiceAnnotationsMetadata's prefix; nil: Services are not read
	translation     sliceTranslation
	logger          *slog.Logger
	life            *lifecycle
	catalog         *catalog    // life's
	problems        *problemLog // used by the informer's handler only
}

var _ Catalog = (*EndpointSliceDiscovery)(nil)

// NewEndpointSliceDiscovery returns an EndpointSliceDiscovery that reads EndpointSlices through
// client. It checks its input and makes no request: call Start before GetService or Watch. The
// client needs the verbs list and watch on endpointslices in the discovery.k8s.io API group.
func NewEndpointSliceDiscovery(client kubernetes.Interface, opts ...Option) (*EndpointSliceDiscovery, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: the Kubernetes client is nil: build one with kubernetes.NewForConfig", ErrInvalidOption)
	}
	o := options{logger: slog.Default(), env: processEnvironment(), translation: defaultTranslation}
	if err := applyOptions(&o, opts); err != nil {
		return nil, err
	}
	if len(o.podOnly) > 0 {
		return nil, fmt.Errorf("%w: %s: only a Registry takes it (an EndpointSliceDiscovery reads Services' EndpointSlices, not pods, and registers nothing)",
			ErrInvalidOption, strings.Join(o.podOnly, ", "))
	}
	// A bare key selects the slices that have the label: those of a Service.
	selector, serviceSelector := discoveryv1.LabelServiceName, ""
	if o.selector != nil && !o.selector.Empty() {
		serviceSelector = o.selector.String()
		selector += "," + serviceSelector
	}
	namespaces := o.defaultNamespaces(detectPod(o.env))
	d := &EndpointSliceDiscovery{
		client:          client,
		namespaces:      namespaces,
		selector:        selector,
		includeNotReady: o.includeNotReady,
		serviceSelector: serviceSelector,
		serviceNotes:    o.serviceNotes,
		translation: sliceTranslation{
			securePorts:  o.translation.securePorts,
			portsPrefix:  o.translation.portsPrefix,
			labelsPrefix: o.serviceLabels,
			primaryPort:  o.primaryPort,
		},
		logger:   o.logger,
		life:     newLifecycle("EndpointSlices", endpointSlicesResource, namespaces, o.logger),
		problems: newSliceProblemLog(o.logger),
	}
	d.catalog = d.life.catalog
	return d, nil
}

// Start starts the informer over the EndpointSlices in scope and returns once its cache is
// synced and every service is published. If the API server refuses the list for lack of RBAC
// permission, Start fails at once with a *PermissionError; other failures are retried until ctx
// ends. A failed Start may be tried again.
func (d *EndpointSliceDiscovery) Start(ctx context.Context) error {
	return d.life.start(ctx, func() informers {
		// One informer per namespace, so that namespaced Roles suffice; one handler serves them all.
		set := informers{}
		var indexers []cache.Indexer
		for _, ns := range d.namespaces {
			health := newInformerHealth(ns, endpointSlicesResource)
			informer := newSliceInformer(d, ns, health)
			set.health = append(set.health, health)
			set.informers = append(set.informers, informer)
			indexers = append(indexers, informer.GetIndexer())
			if d.serviceNotes != nil { // annotations are on the Service only
				health := newInformerHealth(ns, "services")
				set.health = append(set.health, health)
				set.informers = append(set.informers, newServiceInformer(d, ns, health))
			}
		}
		handler := newSliceEvents(d, indexers)
		set.handler, set.synced = handler, handler.flush
		return set
	}, func() {
		// The stopped handler is done with it; a new Start logs every problem again.
		d.problems = newSliceProblemLog(d.logger)
	})
}

// Close stops the informer and every watcher, whose Next then returns an error matching
// context.Canceled, and waits for every goroutine the discovery started. It is idempotent and
// returns nil.
func (d *EndpointSliceDiscovery) Close() error {
	d.life.close()
	return nil
}

// GetService returns the served instances of the named Service, sorted by endpoints then ID, or
// none. The slice and instances are shared with the discovery and other callers: treat them as
// read-only (Clone gives a copy). It reads a prebuilt snapshot: no request, no scan, no allocation.
func (d *EndpointSliceDiscovery) GetService(_ context.Context, name string) ([]*ServiceInstance, error) {
	return d.life.getService(name)
}

// Watch returns a Watcher over the served instances of the named Service, with the semantics of
// Registry.Watch. It ends when ctx is canceled, when Stop is called or when the discovery is closed.
func (d *EndpointSliceDiscovery) Watch(ctx context.Context, name string) (Watcher, error) {
	return d.life.watch(ctx, name)
}

// Check reports whether discovery is in sync with the API server, as Registry.Check does.
func (d *EndpointSliceDiscovery) Check(maxStale time.Duration) error {
	return d.life.check(maxStale, time.Now())
}

// Status returns a snapshot of the discovery's health, as Registry.Status does.
func (d *EndpointSliceDiscovery) Status() Status { return d.life.status() }

// Services returns the names of the Services that have at least one served instance, sorted.
func (d *EndpointSliceDiscovery) Services(context.Context) ([]string, error) {
	return d.life.services()
}

// WatchServices returns a watcher of the whole catalog of Services, with the semantics of
// Registry.WatchServices. It ends when ctx is canceled, when Stop is called or when the discovery
// is closed.
func (d *EndpointSliceDiscovery) WatchServices(ctx context.Context) (ServicesWatcher, error) {
	return d.life.watchServices(ctx)
}

// newServiceInformer builds the informer of the Services of one namespace (or all), for their
// annotations: transformed into entries that keep only those, with no periodic resync.
func newServiceInformer(d *EndpointSliceDiscovery, namespace string, health *informerHealth) cache.SharedIndexInformer {
	api := d.client.CoreV1().Services(namespace)
	lw := selectedListWatch(d.serviceSelector, api.List, api.Watch)
	informer := cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(health.observe(lw), d.client),
		&corev1.Service{},
		cache.SharedIndexInformerOptions{ObjectDescription: "kuberegistry services"},
	)
	// Only fails once the informer has started.
	_ = informer.SetTransform(toServiceEntry)
	return informer
}

// newSliceInformer builds the one informer of an EndpointSliceDiscovery: the slices of Services
// in one namespace (or all), transformed into entries, indexed by Service, with no periodic resync.
func newSliceInformer(d *EndpointSliceDiscovery, namespace string, health *informerHealth) cache.SharedIndexInformer {
	api := d.client.DiscoveryV1().EndpointSlices(namespace)
	lw := selectedListWatch(d.selector, api.List, api.Watch)
	informer := cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(health.observe(lw), d.client),
		&discoveryv1.EndpointSlice{},
		cache.SharedIndexInformerOptions{
			Indexers:          cache.Indexers{serviceIndex: indexSliceByService},
			ObjectDescription: "kuberegistry endpointslices",
		},
	)
	// Only fails once the informer has started.
	_ = informer.SetTransform(d.translation.toEntry)
	return informer
}

func indexSliceByService(obj any) ([]string, error) {
	if e, ok := obj.(*sliceEntry); ok && e.service != "" {
		return []string{e.service}, nil
	}
	return nil, nil
}

// sliceEvents is the only informer handler of an EndpointSliceDiscovery. It never blocks: it
// republishes the services a change touches, which wakes their watchers. Until flush, at the end
// of Start's initial list, it only notes which Services changed, and flush publishes each once:
// refreshing at every slice of the initial list would aggregate a big Service once per slice.
type sliceEvents struct {
	d        *EndpointSliceDiscovery
	problems *problemLog
	indexers []cache.Indexer // one per namespace informer

	// mu guards the fields below. The informer calls the handler from one goroutine, and flush
	// from Start's.
	mu sync.Mutex
	// published records, per Service name, the namespaces whose "name.namespace" key has
	// instances, so that they are emptied when they lose them (when the scope spans several).
	published map[string][]string
	pending   map[string]bool // the Services to publish at flush; nil once flushed
	// notes holds, by "namespace/name", the annotations of the Services in scope, when the
	// discovery reads Services (WithServiceAnnotationsMetadata).
	notes map[string]map[string]string
}

func newSliceEvents(d *EndpointSliceDiscovery, indexers []cache.Indexer) *sliceEvents {
	return &sliceEvents{d: d, problems: d.problems, indexers: indexers,
		published: make(map[string][]string), pending: make(map[string]bool), notes: make(map[string]map[string]string)}
}

// flush ends the initial list: it publishes every Service it saw once. Start calls it when the
// informer has synced, before it returns.
func (h *sliceEvents) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	pending := h.pending
	h.pending = nil
	for name := range pending {
		h.refresh(name)
	}
}

func (h *sliceEvents) OnAdd(obj any, _ bool) {
	switch e := obj.(type) {
	case *sliceEntry:
		h.mu.Lock()
		defer h.mu.Unlock()
		h.problems.note(e.Namespace+"/"+e.Name, e.Namespace, e.Name, e.service, e.problem, false)
		h.refresh(e.service)
	case *serviceEntry:
		h.noteService(e, false)
	}
}

// noteService records a Service's annotations, or forgets them, and republishes the Service.
func (h *sliceEvents) noteService(e *serviceEntry, deleted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := e.Namespace + "/" + e.Name
	if deleted {
		delete(h.notes, key)
	} else {
		h.notes[key] = e.annotations
	}
	h.refresh(e.Name)
}

func (h *sliceEvents) OnUpdate(oldObj, newObj any) {
	if e, ok := newObj.(*serviceEntry); ok {
		h.noteService(e, false)
		return
	}
	old, ok1 := oldObj.(*sliceEntry)
	e, ok2 := newObj.(*sliceEntry)
	if !ok1 || !ok2 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problems.note(e.Namespace+"/"+e.Name, e.Namespace, e.Name, e.service, e.problem, false)
	// A slice whose service-name label changed leaves one Service for another.
	if old.service != e.service {
		h.refresh(old.service)
	}
	h.refresh(e.service)
}

func (h *sliceEvents) OnDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch e := obj.(type) {
	case *sliceEntry:
		h.mu.Lock()
		defer h.mu.Unlock()
		h.problems.note(e.Namespace+"/"+e.Name, e.Namespace, e.Name, e.service, e.problem, true)
		h.refresh(e.service)
	case *serviceEntry:
		h.noteService(e, true)
	}
}

// refresh republishes the Services of a name from the cached entries of all their slices: under
// the name, the instances of every namespace in scope; and, when the scope is all namespaces,
// under "name.namespace" those of one namespace. Each namespace's Service is aggregated on its own.
// The caller holds mu.
func (h *sliceEvents) refresh(name string) {
	if name == "" {
		return
	}
	if h.pending != nil {
		h.pending[name] = true
		return
	}
	byNamespace := make(map[string][]*sliceEntry, 1)
	for _, indexer := range h.indexers {
		objs, _ := indexer.ByIndex(serviceIndex, name) // fails only for an unknown index name
		for _, o := range objs {
			if e, ok := o.(*sliceEntry); ok {
				byNamespace[e.Namespace] = append(byNamespace[e.Namespace], e)
			}
		}
	}
	var all []*ServiceInstance
	var published []string
	merged := false
	for ns, entries := range byNamespace {
		instances := slices.Clip(aggregateSlices(entries, h.d.includeNotReady)) // len == cap: see below
		if len(instances) == 0 {
			continue
		}
		if h.d.serviceNotes != nil {
			instances = withServiceAnnotations(instances, h.notes[ns+"/"+name], *h.d.serviceNotes)
		}
		if all == nil {
			all = instances
		} else { // as long as it holds, like every published slice: a reader's append never aliases
			all = slices.Clip(slices.Concat(all, instances))
			merged = true
		}
		if h.d.life.multiNamespace() {
			published = append(published, ns)
			h.d.catalog.publish(namespacedKey(name, ns), instances)
		}
	}
	for _, ns := range h.published[name] {
		if !slices.Contains(published, ns) {
			h.d.catalog.publish(namespacedKey(name, ns), nil)
		}
	}
	if len(published) > 0 {
		h.published[name] = published
	} else {
		delete(h.published, name)
	}
	if merged { // a new slice: one namespace's, published already, is sorted and never changed
		sortInstances(all)
	}
	h.d.catalog.publish(name, all)
}

// serviceIndex indexes cached pods by service name, so that a change to one service reads only
// that service's pods.
const serviceIndex = "kuberegistry.io/service"
