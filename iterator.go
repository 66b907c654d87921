package kuberegistry

import (
	"context"
	"errors"
	"sync"
)

// errWatcherStopped is the cause recorded when Stop ends a watcher.
var errWatcherStopped = errors.New("Stop was called")

// watcher is the Watcher that Registry.Watch returns. The informer's handler never blocks on it:
// it only drops a token in wake, whose capacity of one coalesces any burst of changes, so a slow
// or abandoned watcher holds O(1) memory and Next always reads the latest set.
type watcher struct {
	catalog *catalog
	name    string
	ctx     context.Context
	cancel  context.CancelCauseFunc
	wake    chan struct{} // capacity 1: "the set may have changed since you last looked"

	mu      sync.Mutex // serializes Next; guards last and started
	last    []*ServiceInstance
	started bool
}

var _ Watcher = (*watcher)(nil)

func newWatcher(ctx context.Context, c *catalog, name string) *watcher {
	ctx, cancel := context.WithCancelCause(ctx)
	return &watcher{catalog: c, name: name, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
}

// notify wakes a blocked Next without ever blocking the caller.
func (w *watcher) notify() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending: Next will read the latest set anyway
	}
}

// Next returns the current set on its first call; afterwards it blocks until the set differs
// from the one it returned last. It is safe to call from several goroutines, which then take turns.
// The returned slice and instances are shared: treat them as read-only.
func (w *watcher) Next() ([]*ServiceInstance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.ctx.Err() != nil {
			return nil, &stoppedError{cause: context.Cause(w.ctx)}
		}
		current := w.catalog.instances(w.name)
		if !w.started || !sameInstances(current, w.last) {
			w.started, w.last = true, current
			return current, nil
		}
		select {
		case <-w.wake:
		case <-w.ctx.Done():
		}
	}
}

// Stop ends the watcher: a blocked Next returns at once with an error that matches
// context.Canceled. It is idempotent and always returns nil.
func (w *watcher) Stop() error {
	w.cancel(errWatcherStopped)
	return nil
}
