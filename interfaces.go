package kuberegistry

import "context"

// ServiceInstance is one running instance of a service: in this package, one pod.
//
// Instances returned by GetService and Watcher.Next are shared with the registry's cache and with
// other callers: treat them as read-only, and call Clone for a copy you may change.
type ServiceInstance struct {
	// ID identifies the instance. Several pods may share one ID when a Deployment labels them by
	// hand; a pod registered without an ID is discovered with its pod name as ID.
	ID string `json:"id"`
	// Name is the service name: the value of the kratos-service-app label.
	Name string `json:"name"`
	// Version is the service version, stored losslessly even when it is not a valid label value.
	Version string `json:"version"`
	// Metadata is free-form data registered with the instance.
	Metadata map[string]string `json:"metadata"`
	// Endpoints are URLs such as "grpc://10.1.2.3:9000" or "http://[fd00::1]:8000?isSecure=true":
	// one per registered port and per pod IP.
	Endpoints []string `json:"endpoints"`
}

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

// Clone returns a deep copy of the instance that the caller owns.
func (s *ServiceInstance) Clone() *ServiceInstance {
	if s == nil {
		return nil
	}
	c := *s
	if s.Metadata != nil {
		c.Metadata = make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
	}
	if s.Endpoints != nil {
		c.Endpoints = append([]string(nil), s.Endpoints...)
	}
	return &c
}

// equal reports whether two instances carry the same data.
func (s *ServiceInstance) equal(o *ServiceInstance) bool {
	if s == o {
		return true
	}
	if s.ID != o.ID || s.Name != o.Name || s.Version != o.Version ||
		len(s.Metadata) != len(o.Metadata) || len(s.Endpoints) != len(o.Endpoints) {
		return false
	}
	for k, v := range s.Metadata {
		if ov, ok := o.Metadata[k]; !ok || ov != v {
			return false
		}
	}
	for i := range s.Endpoints {
		if s.Endpoints[i] != o.Endpoints[i] {
			return false
		}
	}
	return true
}
