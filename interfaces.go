package kuberegistry

import "context"

// Registrar registers the instance that runs in the current pod.
type Registrar interface {
	// Register publishes service as the instance running in this pod.
	Register(ctx context.Context, service *ServiceInstance) error
	// Deregister withdraws this pod's instance. It is idempotent.
	Deregister(ctx context.Context, service *ServiceInstance) error
}

// Discovery finds the ready instances of a service.
type Discovery interface {
	// GetService returns the ready instances of the named service, in a stable order.
	GetService(ctx context.Context, name string) ([]*ServiceInstance, error)
	// Watch returns a Watcher over the ready instances of the named service.
	Watch(ctx context.Context, name string) (Watcher, error)
}

// Catalog is a Discovery that also lists and watches every service it knows, as a dashboard, a
// gateway or a tool needs it. Both of this package's sources are catalogs: Registry (registered
// pods) and EndpointSliceDiscovery (plain Services).
type Catalog interface {
	Discovery
	// Services returns the names of the services that have at least one instance, sorted.
	Services(ctx context.Context) ([]string, error)
	// WatchServices returns a watcher of the whole catalog.
	WatchServices(ctx context.Context) (ServicesWatcher, error)
}

// Watcher is an iterator over the changing set of a service's ready instances.
type Watcher interface {
	// Next returns the current set on its first call, and afterwards blocks until the set differs
	// from the one it last returned. Once the watcher is stopped, its context is canceled or the
	// registry is closed, Next returns an error for which errors.Is(err, context.Canceled) is true.
	Next() ([]*ServiceInstance, error)
	// Stop ends the watcher and wakes a blocked Next. It is idempotent.
	Stop() error
}

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
