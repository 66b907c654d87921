package kuberegistry

import (
	"context"
	"sync"
)

// ServicesWatcher is an iterator over the whole catalog of a registry.
type ServicesWatcher interface {
	// Next returns the catalog (service name → its instances) on its first call, and afterwards
	// blocks until any service's instances change — a pod joining or leaving, its readiness, or a
	// pod replaced by another of the same name. Changes made meanwhile coalesce into one catalog.
	// The map is the caller's; the slices and instances in it are shared and read-only.
	// Once stopped, Next returns an error for which errors.Is(err, context.Canceled) is true.
	Next() (map[string][]*ServiceInstance, error)
	// Stop ends the watcher and wakes a blocked Next. It is idempotent.
	Stop() error
}

// servicesWatcher is the ServicesWatcher of WatchServices, woken like watcher.
type servicesWatcher struct {
	wakeup
	catalog *catalog

	mu         sync.Mutex // serializes Next; guards generation and started
	generation uint64
	started    bool
}

var _ ServicesWatcher = (*servicesWatcher)(nil)

func (l *servicesWatcher) Next() (map[string][]*ServiceInstance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if err := l.stopped(); err != nil {
			return nil, err
		}
		if !l.started || l.catalog.currentGeneration() != l.generation {
			services, generation := l.catalog.snapshot()
			l.started, l.generation = true, generation
			return services, nil
		}
		l.wait()
	}
}

// WatchServices returns a watcher of the whole catalog, as a dashboard or a gateway needs it. It
// ends when ctx is canceled, when Stop is called or when the registry is closed.
func (r *Registry) WatchServices(ctx context.Context) (ServicesWatcher, error) {
	return r.life.watchServices(ctx)
}
