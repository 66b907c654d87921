package kratos

import (
	"context"
	"errors"
	"reflect"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/kuberegistry/kuberegistry"
)

// Backend is what the adapter registers and discovers with; *kuberegistry.Registry implements
// it.
type Backend interface {
	kuberegistry.Registrar
	kuberegistry.Discovery
}

// Registry is a go-kratos Registrar and Discovery backed by kuberegistry. It is safe for
// concurrent use, and holds no resource of its own: the Backend's owner closes the Backend.
type Registry struct {
	backend Backend
}

var (
	_ registry.Registrar = (*Registry)(nil)
	_ registry.Discovery = (*Registry)(nil)
)

// ErrNilBackend is returned by New without a Backend.
var ErrNilBackend = errors.New("kuberegistry/kratos: the backend is nil: pass the *kuberegistry.Registry made by kuberegistry.New")

// New returns a Registry that registers and discovers through b. Discovery needs a started
// backend (kuberegistry's Registry.Start); registering does not.
func New(b Backend) (*Registry, error) {
	if b == nil {
		return nil, ErrNilBackend
	}
	if v := reflect.ValueOf(b); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, ErrNilBackend
	}
	return &Registry{backend: b}, nil
}

// Register publishes service as the instance running in this pod (see kuberegistry's
// Registry.Register). kratos.App calls it once its servers listen.
func (r *Registry) Register(ctx context.Context, service *registry.ServiceInstance) error {
	return r.backend.Register(ctx, fromKratos(service))
}

// Deregister withdraws this pod's instance; the pod leaves discovery at once. kratos.App calls it
// first when it stops, before it stops its servers.
func (r *Registry) Deregister(ctx context.Context, service *registry.ServiceInstance) error {
	return r.backend.Deregister(ctx, fromKratos(service))
}

// GetService returns copies of the ready instances of the named service, which the caller owns.
func (r *Registry) GetService(ctx context.Context, name string) ([]*registry.ServiceInstance, error) {
	instances, err := r.backend.GetService(ctx, name)
	if err != nil {
		return nil, err
	}
	return toKratosAll(instances), nil
}

// Watch returns a Watcher over the ready instances of the named service. It ends when ctx ends,
// when Stop is called, or when the backend is closed.
func (r *Registry) Watch(ctx context.Context, name string) (registry.Watcher, error) {
	w, err := r.backend.Watch(ctx, name)
	if err != nil {
		return nil, err
	}
	return newWatcher(w), nil
}
