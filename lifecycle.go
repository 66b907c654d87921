package kuberegistry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// registryState is where a discovery source is in its life.
type registryState int32

const (
	stateIdle registryState = iota
	stateStarting
	stateStarted
	stateClosed
)

// lifecycle is what every discovery source shares: Start runs its informers until their handler
// has seen the initial lists, Close stops them and every watcher and waits for all of it, and
// watchers subscribe to its catalog.
type lifecycle struct {
	what       string   // what the informers list, for logs and errors: "pods", "EndpointSlices"
	resource   string   // the resource a PermissionError names: "pods", "endpointslices.discovery.k8s.io"
	namespaces []string // the discovery scope, one informer each; [""] is all namespaces
	logger     *slog.Logger
	catalog    *catalog

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu            sync.Mutex         // guards state transitions, stopInformers and health
	state         atomic.Int32       // a registryState; read without mu on hot paths
	stopInformers context.CancelFunc // ends the informers of a successful Start
	health        []*informerHealth  // one per informer of the running Start
	events        eventCounters
	wg            sync.WaitGroup // the informers' goroutines and the watchers' clean-ups
	closeOnce     sync.Once
}

func newLifecycle(what, resource string, namespaces []string, logger *slog.Logger) *lifecycle {
	l := &lifecycle{what: what, resource: resource, namespaces: namespaces, logger: logger, catalog: newCatalog()}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// informer is what start runs: a cache.SharedIndexInformer, or the pod source's podInformer.
type informer interface {
	SetWatchErrorHandlerWithContext(handler cache.WatchErrorHandlerWithContext) error
	AddEventHandler(handler cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error)
	RunWithContext(ctx context.Context)
}

// informers is what a source gives start: one informer per namespace, the handler they share,
// and what to do once every informer has synced, before Start returns (nil: nothing).
type informers struct {
	health    []*informerHealth // each informer's namespace, resource and health
	informers []informer
	handler   cache.ResourceEventHandler
	synced    func()
}

// start runs the informers that build makes, and returns once the handler has seen every
// initial list. A permission error fails it at once, since retrying cannot fix it; other failures
// are retried until ctx ends. After a failure, reset forgets what the source learnt, and Start may
// be tried again.
func (l *lifecycle) start(ctx context.Context, build func() informers, reset func()) error {
	l.mu.Lock()
	switch registryState(l.state.Load()) {
	case stateClosed:
		l.mu.Unlock()
		return ErrClosed
	case stateStarting, stateStarted:
		l.mu.Unlock()
		return ErrAlreadyStarted
	}
	l.state.Store(int32(stateStarting))
	set := build()
	failures := make(chan *listError, 1)
	synced := make([]<-chan struct{}, len(set.informers))
	for i, informer := range set.informers {
		health := set.health[i]
		_ = informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *cache.Reflector, err error) {
			if ctx.Err() != nil {
				return // Close ended the watch: nothing failed
			}
			// observe has recorded the failure in health already.
			l.logger.Warn("kuberegistry: listing or watching "+health.resource+" failed; retrying", "namespace", health.namespace, "error", err)
			failure := &listError{namespace: health.namespace, resource: health.resource, err: err}
			select { // keep the latest: start reads one
			case failures <- failure:
			default:
				select {
				case <-failures:
				default:
				}
				select {
				case failures <- failure:
				default: // another informer's, as recent: start reads that one
				}
			}
		})
		health.wg = &l.wg
		registration, _ := informer.AddEventHandler(counted{set.handler, &l.events})
		synced[i] = registration.HasSyncedChecker().Done()
	}
	runCtx, stop := context.WithCancel(l.ctx)
	var running sync.WaitGroup
	for _, informer := range set.informers {
		l.wg.Add(1)
		running.Add(1)
		go func() {
			defer l.wg.Done()
			defer running.Done()
			informer.RunWithContext(runCtx)
		}()
	}
	l.mu.Unlock()

	err := l.waitForSync(ctx, synced, failures)
	if err == nil && set.synced != nil {
		set.synced()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && registryState(l.state.Load()) == stateStarting {
		l.state.Store(int32(stateStarted))
		l.stopInformers, l.health = stop, set.health
		return nil
	}
	stop()
	running.Wait()
	if registryState(l.state.Load()) == stateStarting {
		l.state.Store(int32(stateIdle))
		l.catalog.reset()
		reset()
	}
	if err == nil {
		err = ErrClosed
	}
	return err
}

// listError is a failure of the informer of one namespace.
type listError struct {
	namespace string
	resource  string // as a PermissionError names it
	err       error
}

// waitForSync waits until every informer's handler has seen its initial list.
func (l *lifecycle) waitForSync(ctx context.Context, synced []<-chan struct{}, failures <-chan *listError) error {
	var last error
	for len(synced) > 0 {
		select {
		case <-synced[0]:
			synced = synced[1:]
		case f := <-failures:
			if apierrors.IsForbidden(f.err) || apierrors.IsUnauthorized(f.err) {
				return &PermissionError{Verb: "list", Resource: f.resource, Namespace: f.namespace, Err: f.err}
			}
			last = f.err
		case <-l.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("kuberegistry: %s in scope not listed before the context ended: %w (last error: %v)", l.what, ctx.Err(), last)
			}
			return fmt.Errorf("kuberegistry: %s in scope not listed before the context ended: %w", l.what, ctx.Err())
		}
	}
	return nil
}

// close stops the informers and every watcher, and waits for every goroutine start began.
func (l *lifecycle) close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.state.Store(int32(stateClosed))
		if l.stopInformers != nil {
			l.stopInformers()
		}
		l.mu.Unlock()
		l.catalog.stopWatchers(ErrClosed)
		l.cancel()
		l.wg.Wait()
	})
}

// started reports why discovery cannot serve yet, if it cannot.
func (l *lifecycle) started() error {
	switch registryState(l.state.Load()) {
	case stateStarted:
		return nil
	case stateClosed:
		return ErrClosed
	default:
		return ErrNotStarted
	}
}

// closed reports whether Close has been called.
func (l *lifecycle) closed() bool { return registryState(l.state.Load()) == stateClosed }

// multiNamespace reports whether discovery spans several namespaces.
func (l *lifecycle) multiNamespace() bool {
	return len(l.namespaces) > 1 || l.namespaces[0] == ""
}

// inScope reports whether discovery covers namespace.
func (l *lifecycle) inScope(namespace string) bool {
	return l.namespaces[0] == "" || slices.Contains(l.namespaces, namespace)
}

// alternateKey is the catalog key that a valid name given to GetService or Watch may also mean:
// for "service.namespace" with a namespace in scope, the key of that namespace's instances of
// service (in a one-namespace scope, the service's); "" for any other name. The exact name wins
// while it has instances (a service may be called "greeter.v1"), so both are looked up at every
// read: a watcher follows whichever of the two the name means at the time. Both sources name
// things this way, so that "web.shop" means the same to either.
func (l *lifecycle) alternateKey(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	service, namespace := name[:i], name[i+1:]
	if !l.inScope(namespace) || len(validation.IsDNS1123Label(namespace)) > 0 {
		return ""
	}
	if !l.multiNamespace() {
		return service
	}
	return namespacedKey(service, namespace)
}

// getService reads a service's published instances. The exact name is tried first, so that the
// common case costs one map lookup; only a miss pays for validating the name and for its
// alternate key. A catalog key that is no name (one namespace's part of a service) is never
// served as such.
func (l *lifecycle) getService(name string) ([]*ServiceInstance, error) {
	if err := l.started(); err != nil {
		return nil, err
	}
	if !isNamespacedKey(name) {
		if instances := l.catalog.instances(name); instances != nil {
			return instances, nil
		}
	}
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	if alt := l.alternateKey(name); alt != "" {
		return l.catalog.instances(alt), nil
	}
	return nil, nil
}

// watch subscribes a watcher to a name and its alternate key, if any. However the watcher ends,
// it leaves the catalog; close waits for that.
func (l *lifecycle) watch(ctx context.Context, name string) (Watcher, error) {
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.started(); err != nil {
		return nil, err
	}
	w := newWatcher(ctx, l.catalog, name, l.alternateKey(name))
	l.catalog.subscribe(w)
	l.wg.Add(1)
	context.AfterFunc(w.ctx, func() {
		defer l.wg.Done()
		l.catalog.unsubscribe(w)
	})
	return w, nil
}

// services returns the names of the services with at least one instance, sorted.
func (l *lifecycle) services() ([]string, error) {
	if err := l.started(); err != nil {
		return nil, err
	}
	return l.catalog.names(), nil
}

// watchServices subscribes a watcher to the whole catalog.
func (l *lifecycle) watchServices(ctx context.Context) (ServicesWatcher, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.started(); err != nil {
		return nil, err
	}
	w := &servicesWatcher{wakeup: newWakeup(ctx), catalog: l.catalog}
	l.catalog.listen(w)
	l.wg.Add(1)
	context.AfterFunc(w.ctx, func() {
		defer l.wg.Done()
		l.catalog.unlisten(w)
	})
	return w, nil
}

// selectedListWatch is the ListWatch of an informer whose every request carries selector.
func selectedListWatch[L runtime.Object](selector string,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return watchFn(ctx, o)
		},
	}
}
