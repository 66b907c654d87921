package kuberegistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// registryState is where a Registry is in its life.
type registryState int32

const (
	stateIdle registryState = iota
	stateStarting
	stateStarted
	stateClosed
)

// Registry registers the current pod as a service instance and discovers the instances of
// services from the pods of its namespace. It is safe for concurrent use.
type Registry struct {
	client          kubernetes.Interface
	namespaces      []string        // discovery scope, one informer each; [""] is all namespaces
	selector        labels.Selector // the pods listed: registered ones, and the user's filter
	userSelector    labels.Selector // the user's filter alone; nil: none
	translation     translation     // how pods become instances
	includeNotReady bool            // serve live pods whatever their readiness
	pod             podIdentity     // the pod Register patches; may be unknown
	selfKey         string          // the cache key of that pod when it is in the discovery scope, else ""
	logger          *slog.Logger
	catalog         *catalog
	problems        *problemLog
	self            *selfObserver

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu           sync.Mutex         // guards state transitions and stopInformer
	state        atomic.Int32       // a registryState; read without mu on hot paths
	stopInformer context.CancelFunc // ends the informer of a successful Start
	wg           sync.WaitGroup     // the informer's goroutine and the watchers' clean-ups

	closeOnce sync.Once
}

var (
	_ Registrar = (*Registry)(nil)
	_ Discovery = (*Registry)(nil)
)

// New returns a Registry that talks to the cluster through client. It checks its input and makes
// no request: call Start before GetService or Watch. Register needs no Start.
func New(client kubernetes.Interface, opts ...Option) (*Registry, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: the Kubernetes client is nil: build one with kubernetes.NewForConfig", ErrInvalidOption)
	}
	o := options{logger: slog.Default(), env: processEnvironment(), translation: defaultTranslation}
	for i, opt := range opts {
		if opt == nil {
			o.errs = append(o.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		opt.apply(&o)
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	pod := o.pod
	if !pod.known() {
		pod = detectPod(o.env)
	}
	namespaces := o.namespaces
	switch {
	case namespaces != nil:
	case pod.namespace != "":
		namespaces = []string{pod.namespace}
	default:
		namespaces = []string{"default"}
	}
	selector := registeredPodsSelector
	if o.selector != nil {
		requirements, _ := o.selector.Requirements()
		selector = selector.Add(requirements...)
	}
	r := &Registry{
		client:          client,
		namespaces:      namespaces,
		selector:        selector,
		userSelector:    o.selector,
		translation:     o.translation,
		includeNotReady: o.includeNotReady,
		pod:             pod,
		logger:          o.logger,
		catalog:         newCatalog(),
		problems:        newProblemLog(o.logger),
		self:            newSelfObserver(),
	}
	r.translation.namespaceKey = r.multiNamespace()
	if pod.known() && r.inScope(pod.namespace) {
		r.selfKey = pod.String()
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// multiNamespace reports whether discovery spans several namespaces.
func (r *Registry) multiNamespace() bool {
	return len(r.namespaces) > 1 || r.namespaces[0] == ""
}

// inScope reports whether discovery covers namespace.
func (r *Registry) inScope(namespace string) bool {
	return r.namespaces[0] == "" || slices.Contains(r.namespaces, namespace)
}

// Start starts the informer over the registered pods in scope and returns once its cache is
// synced and every service is published. If the API server refuses the list for lack of RBAC
// permission, Start fails at once with a *PermissionError; other failures are retried until ctx
// ends. A failed Start may be tried again.
func (r *Registry) Start(ctx context.Context) error {
	r.mu.Lock()
	switch registryState(r.state.Load()) {
	case stateClosed:
		r.mu.Unlock()
		return ErrClosed
	case stateStarting, stateStarted:
		r.mu.Unlock()
		return ErrAlreadyStarted
	}
	r.state.Store(int32(stateStarting))
	// One informer per namespace, so that namespaced Roles suffice; one handler serves them all.
	handler := newPodEvents(r)
	informers := make([]cache.SharedIndexInformer, len(r.namespaces))
	for i, ns := range r.namespaces {
		informers[i] = newPodInformer(r, ns)
		handler.indexers = append(handler.indexers, informers[i].GetIndexer())
	}
	failures := make(chan *listError, 1)
	synced := make([]<-chan struct{}, len(informers))
	for i, informer := range informers {
		ns := r.namespaces[i]
		_ = informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			r.logger.Warn("kuberegistry: listing or watching pods failed; retrying", "namespace", ns, "error", err)
			select {
			case failures <- &listError{namespace: ns, err: err}:
			default: // Start reads the latest; later ones are only logged
			}
		})
		registration, _ := informer.AddEventHandler(handler)
		synced[i] = registration.HasSyncedChecker().Done()
	}
	runCtx, stop := context.WithCancel(r.ctx)
	var running sync.WaitGroup
	for _, informer := range informers {
		r.wg.Add(1)
		running.Add(1)
		go func() {
			defer r.wg.Done()
			defer running.Done()
			informer.RunWithContext(runCtx)
		}()
	}
	r.mu.Unlock()

	err := r.waitForSync(ctx, synced, failures)

	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && registryState(r.state.Load()) == stateStarting {
		r.state.Store(int32(stateStarted))
		r.stopInformer = stop
		return nil
	}
	stop()
	running.Wait()
	if registryState(r.state.Load()) == stateStarting {
		r.state.Store(int32(stateIdle))
		r.catalog.reset()
	}
	if err == nil {
		err = ErrClosed
	}
	return err
}

// waitForSync waits until the handler has seen the initial list, failing fast on a permission
// error, which retrying cannot fix.
func (r *Registry) waitForSync(ctx context.Context, synced []<-chan struct{}, failures <-chan *listError) error {
	var last error
	for len(synced) > 0 {
		select {
		case <-synced[0]:
			synced = synced[1:]
		case f := <-failures:
			if apierrors.IsForbidden(f.err) || apierrors.IsUnauthorized(f.err) {
				return &PermissionError{Verb: "list", Resource: "pods", Namespace: f.namespace, Err: f.err}
			}
			last = f.err
		case <-r.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("kuberegistry: pods in scope not listed before the context ended: %w (last error: %v)", ctx.Err(), last)
			}
			return fmt.Errorf("kuberegistry: pods in scope not listed before the context ended: %w", ctx.Err())
		}
	}
	return nil
}

// listError is a failure of the informer of one namespace.
type listError struct {
	namespace string
	err       error
}

// Close stops the informer and every watcher, whose Next then returns an error matching
// context.Canceled, and waits for every goroutine the registry started. It is idempotent and
// returns nil.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.state.Store(int32(stateClosed))
		if r.stopInformer != nil {
			r.stopInformer()
		}
		r.mu.Unlock()
		r.catalog.stopWatchers(ErrClosed)
		r.cancel()
		r.wg.Wait()
	})
	return nil
}

// started reports why discovery cannot serve yet, if it cannot.
func (r *Registry) started() error {
	switch registryState(r.state.Load()) {
	case stateStarted:
		return nil
	case stateClosed:
		return ErrClosed
	default:
		return ErrNotStarted
	}
}

// GetService returns the ready instances of the named service, sorted by endpoints then ID, or
// none. The slice and instances are shared with the registry and other callers: treat them as
// read-only (Clone gives a copy). It reads a prebuilt snapshot: no request, no scan, no allocation.
func (r *Registry) GetService(_ context.Context, name string) ([]*ServiceInstance, error) {
	if err := r.started(); err != nil {
		return nil, err
	}
	if instances := r.catalog.instances(name); instances != nil {
		return instances, nil
	}
	// Only names of services without instances pay for validation.
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	return r.catalog.instances(r.catalogKey(name)), nil
}

// catalogKey is the catalog's key for a name given to GetService or Watch: the name itself, or,
// when discovery spans several namespaces and the name is "service.namespace" with a namespace in
// scope and no service is called the whole name, the key of that namespace's instances.
func (r *Registry) catalogKey(name string) string {
	i := strings.LastIndexByte(name, '.')
	if !r.multiNamespace() || i <= 0 {
		return name
	}
	service, namespace := name[:i], name[i+1:]
	if !r.inScope(namespace) || len(validation.IsDNS1123Label(namespace)) > 0 || r.catalog.instances(name) != nil {
		return name
	}
	return namespacedKey(service, namespace)
}

// Services returns the names of the services that have at least one instance, sorted.
func (r *Registry) Services(context.Context) ([]string, error) {
	if err := r.started(); err != nil {
		return nil, err
	}
	return r.catalog.names(), nil
}

// Watch returns a Watcher over the ready instances of the named service. It ends when ctx is
// canceled, when Stop is called or when the registry is closed.
func (r *Registry) Watch(ctx context.Context, name string) (Watcher, error) {
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.started(); err != nil {
		return nil, err
	}
	key := r.catalogKey(name)
	w := newWatcher(ctx, r.catalog, key)
	r.catalog.subscribe(key, w)
	// However the watcher ends, it leaves the catalog; Close waits for that.
	r.wg.Add(1)
	context.AfterFunc(w.ctx, func() {
		defer r.wg.Done()
		r.catalog.unsubscribe(key, w)
	})
	return w, nil
}
