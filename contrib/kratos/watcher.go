package kratos

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/kuberegistry/kuberegistry"
)

// watcher is the go-kratos Watcher that Registry.Watch returns. It converts each set Next
// returns, and makes sure that once it is stopped, Next fails with an error matching
// context.Canceled, whatever the backend's watcher returns: go-kratos's resolvers leave their
// loop on that error only.
type watcher struct {
	w        kuberegistry.Watcher
	stopped  chan struct{} // closed by Stop
	stopOnce sync.Once

	mu     sync.Mutex                                                  // serializes Next; guards copies
	copies map[*kuberegistry.ServiceInstance]*registry.ServiceInstance // of the last set Next returned
}

var _ registry.Watcher = (*watcher)(nil)

func newWatcher(w kuberegistry.Watcher) *watcher {
	return &watcher{w: w, stopped: make(chan struct{})}
}

// Next returns the current set on its first call, possibly empty, and afterwards blocks until
// the set changes. The slice is the caller's; its instances are copies of the registry's, made
// once per instance: an instance that did not change since the last Next is the same copy as
// then, so that an update of a large service copies only what changed. go-kratos's resolvers only
// read them; copy one before changing it.
func (w *watcher) Next() ([]*registry.ServiceInstance, error) {
	if w.isStopped() {
		return nil, errStopped
	}
	instances, err := w.w.Next()
	if err != nil {
		if w.isStopped() && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("%w: %w", errStopped, err)
		}
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if instances == nil {
		w.copies = nil // nothing to reuse
		return nil, nil
	}
	out := make([]*registry.ServiceInstance, len(instances))
	copies := make(map[*kuberegistry.ServiceInstance]*registry.ServiceInstance, len(instances))
	for i, in := range instances {
		c, ok := w.copies[in]
		if !ok {
			c = toKratos(in)
		}
		out[i], copies[in] = c, c
	}
	w.copies = copies
	return out, nil
}

// Stop ends the watcher and wakes a blocked Next. It is idempotent.
func (w *watcher) Stop() error {
	var err error
	w.stopOnce.Do(func() {
		close(w.stopped)
		err = w.w.Stop()
	})
	return err
}

func (w *watcher) isStopped() bool {
	select {
	case <-w.stopped:
		return true
	default:
		return false
	}
}

// errStopped is what Next returns after Stop when the backend's watcher does not say so itself.
var errStopped = fmt.Errorf("kuberegistry/kratos: watcher stopped: %w", context.Canceled)
