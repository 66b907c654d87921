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
}

var _ registry.Watcher = (*watcher)(nil)

func newWatcher(w kuberegistry.Watcher) *watcher {
	return &watcher{w: w, stopped: make(chan struct{})}
}

// Next returns the current set on its first call, possibly empty, and afterwards blocks until
// the set changes. The instances are copies the caller owns.
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
	return toKratosAll(instances), nil
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
