package xds

import (
	"context"

	"github.com/kuberegistry/kuberegistry"
)

// wakeup is the part of a watcher the stream's goroutine holds: a way to wake it, never to block
// on it. Its wake channel has room for one: any burst of changes coalesces into one wake-up, so a
// slow or abandoned watcher costs O(1) memory and reads the newest state when it wakes.
type wakeup struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{}
}

func newWakeup(ctx context.Context) wakeup {
	ctx, cancel := context.WithCancelCause(ctx)
	return wakeup{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
}

// notify wakes a blocked Next without ever blocking the caller.
func (u *wakeup) notify() {
	select {
	case u.wake <- struct{}{}:
	default: // a wake-up is pending: Next will read the newest state anyway
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

// watcher is the Watcher Discovery.Watch returns. Next is meant for one goroutine at a time.
type watcher struct {
	wakeup
	d    *Discovery
	name string
	// Owned by Next: what it returned last.
	started bool
	lastGen uint64
	last    []*kuberegistry.ServiceInstance
}

var _ kuberegistry.Watcher = (*watcher)(nil)

func newWatcher(ctx context.Context, d *Discovery, name string) *watcher {
	return &watcher{wakeup: newWakeup(ctx), d: d, name: name}
}

// Next returns the current set on its first call, and afterwards blocks until the set differs
// from the one it returned last. Once the watcher has ended, it returns an error matching
// context.Canceled.
func (w *watcher) Next() ([]*kuberegistry.ServiceInstance, error) {
	for {
		if err := w.stopped(); err != nil {
			return nil, err
		}
		w.d.mu.Lock()
		var instances []*kuberegistry.ServiceInstance
		var gen uint64
		if st := w.d.services[w.name]; st != nil {
			instances, gen = st.instances, st.gen
		}
		w.d.mu.Unlock()
		if !w.started || gen != w.lastGen && !sameInstances(w.last, instances) {
			w.started, w.lastGen, w.last = true, gen, instances
			return instances, nil
		}
		w.lastGen = gen
		w.wait()
	}
}

// servicesWatcher is the ServicesWatcher Discovery.WatchServices returns.
type servicesWatcher struct {
	wakeup
	d *Discovery
	// Owned by Next.
	started bool
	lastGen uint64
}

var _ kuberegistry.ServicesWatcher = (*servicesWatcher)(nil)

// Next returns the catalog (service → its instances) on its first call, and afterwards blocks
// until any service's instances change; changes made meanwhile coalesce into one catalog. The map
// is the caller's; the slices and instances in it are shared and read-only.
func (w *servicesWatcher) Next() (map[string][]*kuberegistry.ServiceInstance, error) {
	for {
		if err := w.stopped(); err != nil {
			return nil, err
		}
		w.d.mu.Lock()
		gen := w.d.catalogGen
		if !w.started || gen != w.lastGen {
			catalog := w.d.catalogLocked()
			w.d.mu.Unlock()
			w.started, w.lastGen = true, gen
			return catalog, nil
		}
		w.d.mu.Unlock()
		w.wait()
	}
}
