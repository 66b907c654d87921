package kuberegistry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Registry registers the current pod as a service instance and discovers the instances of
// services from the pods of its namespace. It is safe for concurrent use.
type Registry struct {
	client          kubernetes.Interface
	pods            podsAPI         // how the informers list and watch pods
	namespaces      []string        // discovery scope, one informer each; [""] is all namespaces
	selector        labels.Selector // the pods listed: registered ones, and the user's filter
	translation     translation     // how pods become instances
	includeNotReady bool            // serve live pods whatever their readiness
	pod             podIdentity     // the pod Register patches; may be unknown
	selfKey         string          // the cache key of that pod when it is in the discovery scope, else ""
	logger          *slog.Logger
	life            *lifecycle
	catalog         *catalog // life's
	problems        *problemLog
	self            *selfObserver
	podStates       podStateCounters // the handler's, for Stats
	registers       requestCounters  // Register calls, for Stats
	deregisters     requestCounters  // Deregister calls, for Stats
}

var (
	_ Registrar = (*Registry)(nil)
	_ Catalog   = (*Registry)(nil)
)

// New returns a Registry that talks to the cluster through client. It checks its input and makes
// no request: call Start before GetService or Watch. Register needs no Start.
func New(client kubernetes.Interface, opts ...Option) (*Registry, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: the Kubernetes client is nil: build one with kubernetes.NewForConfig", ErrInvalidOption)
	}
	o := options{logger: slog.Default(), env: processEnvironment(), translation: defaultTranslation}
	if err := applyOptions(&o, opts); err != nil {
		return nil, err
	}
	if len(o.sliceOnly) > 0 {
		return nil, fmt.Errorf("%w: %s: only an EndpointSliceDiscovery takes it (a Registry serves what pods registered)",
			ErrInvalidOption, strings.Join(o.sliceOnly, ", "))
	}
	pod := o.pod
	if !pod.known() {
		pod = detectPod(o.env)
	}
	namespaces := o.defaultNamespaces(pod)
	selector := registeredPodsSelector
	if o.selector != nil {
		requirements, _ := o.selector.Requirements()
		selector = selector.Add(requirements...)
	}
	r := &Registry{
		client:          client,
		namespaces:      namespaces,
		selector:        selector,
		translation:     o.translation,
		includeNotReady: o.includeNotReady,
		pod:             pod,
		logger:          o.logger,
		life:            newLifecycle("pods", "pods", namespaces, o.logger),
		problems:        newPodProblemLog(o.logger),
		self:            newSelfObserver(),
	}
	r.catalog = r.life.catalog
	r.pods = typedPods{r}
	r.translation.namespaceKey = r.multiNamespace()
	r.translation = r.translation.withTable()
	if pod.known() && r.inScope(pod.namespace) {
		r.selfKey = pod.String()
	}
	return r, nil
}

// multiNamespace reports whether discovery spans several namespaces.
func (r *Registry) multiNamespace() bool { return r.life.multiNamespace() }

// inScope reports whether discovery covers namespace.
func (r *Registry) inScope(namespace string) bool { return r.life.inScope(namespace) }

// Start starts the informers over the registered pods in scope, one per namespace, and returns
// once their caches are synced and every service is published. If the API server refuses a list
// for lack of RBAC permission, Start fails at once with a *PermissionError; other failures are
// retried until ctx ends. A failed Start may be tried again.
func (r *Registry) Start(ctx context.Context) error {
	return r.life.start(ctx, func() informers {
		// One informer per namespace, so that namespaced Roles suffice; one handler serves them all.
		handler := newPodEvents(r)
		set := informers{handler: handler, synced: handler.flush}
		for _, ns := range r.namespaces {
			health := newInformerHealth(ns, "pods")
			set.health = append(set.health, health)
			set.informers = append(set.informers, newPodInformer(r, ns, health))
		}
		return set
	}, func() {
		// The stopped handler is done with it; a new Start logs every problem again.
		r.problems = newPodProblemLog(r.logger)
		r.podStates.reset()
	})
}

// Close stops the informers and every watcher, whose Next then returns an error matching
// context.Canceled, and waits for every goroutine the registry started. It is idempotent and
// returns nil.
func (r *Registry) Close() error {
	r.life.close()
	return nil
}

// started reports why discovery cannot serve yet, if it cannot.
func (r *Registry) started() error { return r.life.started() }

// GetService returns the ready instances of the named service, sorted by endpoints then ID, or
// none. The slice and instances are shared with the registry and other callers: treat them as
// read-only (Clone gives a copy). It reads a prebuilt snapshot: no request, no scan, no allocation.
// "service.namespace" names one namespace's instances (see WithNamespaces).
func (r *Registry) GetService(_ context.Context, name string) ([]*ServiceInstance, error) {
	return r.life.getService(name)
}

// Services returns the names of the services that have at least one instance, sorted.
func (r *Registry) Services(context.Context) ([]string, error) { return r.life.services() }

// Watch returns a Watcher over the ready instances of the named service. It ends when ctx is
// canceled, when Stop is called or when the registry is closed.
func (r *Registry) Watch(ctx context.Context, name string) (Watcher, error) {
	return r.life.watch(ctx, name)
}

// WatchServices returns a watcher of the whole catalog, as a dashboard or a gateway needs it. It
// ends when ctx is canceled, when Stop is called or when the registry is closed.
func (r *Registry) WatchServices(ctx context.Context) (ServicesWatcher, error) {
	return r.life.watchServices(ctx)
}

// Check reports whether discovery is in sync with the API server: nil while every informer lists
// and watches, or has failed for less than maxStale; otherwise an error wrapping ErrStale and the
// last failure (a *PermissionError when RBAC refused). It is meant for a health endpoint, as
// client-go's leaderelection Check is. A quiet namespace is never stale: an open watch hears of
// every change. A failure is seen as soon as the API server closes the connection or refuses a
// request, and within about 45 s of a silent network partition (client-go's HTTP/2 health check:
// 30 s without a frame, then a 15 s ping timeout). Before Start it returns ErrNotStarted, after
// Close ErrClosed.
func (r *Registry) Check(maxStale time.Duration) error { return r.life.check(maxStale, time.Now()) }

// Status returns a snapshot of the registry's health: whether it is synced, and for each
// namespace whether its list and watch are established, since when they fail and why, and when
// the last change arrived.
func (r *Registry) Status() Status { return r.life.status() }
