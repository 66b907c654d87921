package kuberegistry

import (
	"context"
	"errors"
	"sync"
)

// errWatcherStopped is the cause recorded when Stop ends a watcher.
var errWatcherStopped = errors.New("Stop was called")

// wakeup is the part of a watcher the informer's handler holds: a way to wake it, never to block
// on it. The capacity of one of wake coalesces any burst of changes, so a slow or abandoned watcher
// holds O(1) memory and reads the latest state when it wakes.
type wakeup struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{} // capacity 1: "the state may have changed since you last looked"
}

func newWakeup(ctx context.Context) wakeup {
	ctx, cancel := context.WithCancelCause(ctx)
	return wakeup{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
}

// notify wakes a blocked Next without ever blocking the caller.
func (u *wakeup) notify() {
	select {
	case u.wake <- struct{}{}:
	default: // a wake-up is already pending: Next will read the latest state anyway
	}
}

// stopped returns the error Next returns once the watcher has ended, or nil.
func (u *wakeup) stopped() error {
	if u.ctx.Err() == nil {
		return nil
	}
	return &stoppedError{cause: context.Cause(u.ctx)}
}

// wait blocks until a wake-up or the end of the watcher.
func (u *wakeup) wait() {
	select {
	case <-u.wake:
	case <-u.ctx.Done():
	}
}

// Stop ends the watcher: a blocked Next returns at once with an error that matches
// context.Canceled. It is idempotent and always returns nil.
func (u *wakeup) Stop() error {
	u.cancel(errWatcherStopped)
	return nil
}

// watcher is the Watcher that Registry.Watch returns.
type watcher struct {
	wakeup
	catalog *catalog
	name    string // the name watched, a catalog key
	alt     string // the key name may also mean (see lifecycle.alternateKey); "" for none

	mu         sync.Mutex // serializes Next; guards last, lastSum, lastSummed and started
	last       []*ServiceInstance
	lastSum    uint64 // last's multiset hash, when lastSummed (see catalog.current)
	lastSummed bool
	started    bool
}

var _ Watcher = (*watcher)(nil)

func newWatcher(ctx context.Context, c *catalog, name, alt string) *watcher {
	return &watcher{wakeup: newWakeup(ctx), catalog: c, name: name, alt: alt}
}

// Next returns the current set on its first call; afterwards it blocks until the set differs
// from the one it returned last. It is safe to call from several goroutines, which then take turns.
// The returned slice and instances are shared: treat them as read-only.
func (w *watcher) Next() ([]*ServiceInstance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if err := w.stopped(); err != nil {
			return nil, err
		}
		current, sum, summed := w.catalog.resolve(w.name, w.alt)
		if !w.started || !sameSet(current, sum, summed, w.last, w.lastSum, w.lastSummed) {
			w.started, w.last, w.lastSum, w.lastSummed = true, current, sum, summed
			return current, nil
		}
		w.wait()
	}
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

// keys are the catalog keys the watcher reads.
func (w *watcher) keys() []string {
	if w.alt == "" {
		return []string{w.name}
	}
	return []string{w.name, w.alt}
}
