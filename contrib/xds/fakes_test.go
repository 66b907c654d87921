package xds

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/kuberegistry/kuberegistry"
)

// fakeCatalog is a kuberegistry.Catalog whose sets the test writes directly, for the Server's
// tests and benchmarks: only WatchServices, what a Server reads, is complete.
type fakeCatalog struct {
	mu        sync.Mutex // guards sets, gen and listeners
	sets      map[string][]*kuberegistry.ServiceInstance
	gen       uint64
	listeners map[*fakeServicesWatcher]struct{}
	failWatch error // returned by WatchServices when set
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{sets: map[string][]*kuberegistry.ServiceInstance{}, listeners: map[*fakeServicesWatcher]struct{}{}}
}

// set publishes the instances of a service (none: the service has none), as a new slice.
func (c *fakeCatalog) set(service string, instances ...*kuberegistry.ServiceInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(instances) == 0 {
		delete(c.sets, service)
	} else {
		c.sets[service] = slices.Clip(slices.Clone(instances))
	}
	c.gen++
	for l := range c.listeners {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (c *fakeCatalog) GetService(_ context.Context, name string) ([]*kuberegistry.ServiceInstance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sets[name], nil
}

func (c *fakeCatalog) Watch(context.Context, string) (kuberegistry.Watcher, error) {
	return nil, errors.New("fakeCatalog: Watch is not implemented")
}

func (c *fakeCatalog) Services(context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.sets)), nil
}

func (c *fakeCatalog) WatchServices(ctx context.Context) (kuberegistry.ServicesWatcher, error) {
	if c.failWatch != nil {
		return nil, c.failWatch
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &fakeServicesWatcher{c: c, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	c.listeners[w] = struct{}{}
	c.mu.Unlock()
	return w, nil
}

type fakeServicesWatcher struct {
	c       *fakeCatalog
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{}
	started bool
	lastGen uint64
}

func (w *fakeServicesWatcher) Next() (map[string][]*kuberegistry.ServiceInstance, error) {
	for {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		w.c.mu.Lock()
		if !w.started || w.c.gen != w.lastGen {
			w.started, w.lastGen = true, w.c.gen
			out := maps.Clone(w.c.sets)
			w.c.mu.Unlock()
			return out, nil
		}
		w.c.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.ctx.Done():
		}
	}
}

func (w *fakeServicesWatcher) Stop() error {
	w.cancel()
	w.c.mu.Lock()
	delete(w.c.listeners, w)
	w.c.mu.Unlock()
	return nil
}

// namespacedCatalog is a fakeCatalog of one namespace, which it tells through Status as a
// Registry does; its instances carry no namespace.
type namespacedCatalog struct {
	*fakeCatalog
	namespace string
}

func (c namespacedCatalog) Status() kuberegistry.Status {
	return kuberegistry.Status{Synced: true, Informers: []kuberegistry.InformerStatus{{Namespace: c.namespace, Resource: "pods", Watching: true}}}
}

// instance is a ServiceInstance of service with the given ID at grpc://ip:9000, in namespace ns
// ("" for none).
func instance(service, id, ip, ns string) *kuberegistry.ServiceInstance {
	inst := &kuberegistry.ServiceInstance{ID: id, Name: service, Version: "v1", Endpoints: []string{"grpc://" + ip + ":9000"}}
	if ns != "" {
		inst.Metadata = map[string]string{kuberegistry.MetadataKeyNamespace: ns}
	}
	return inst
}
