package kuberegistry

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Status is a snapshot of a discovery source's health, for a health endpoint or a log line.
type Status struct {
	// Synced reports whether Start has returned successfully and Close has not been called.
	Synced bool
	// Informers has one entry per informer: one per namespace in scope and resource listed.
	Informers []InformerStatus
}

// InformerStatus is the health of one informer: the list and watch of one resource in one
// namespace ("" for all namespaces).
type InformerStatus struct {
	Namespace string // "" for all namespaces
	Resource  string // "pods", "endpointslices.discovery.k8s.io", "services"
	// Watching reports whether the informer's last list succeeded and its watch is open: it
	// then hears of every change, however quiet the namespace.
	Watching bool
	// FailingSince is when listing or watching started to fail, zero while it does not.
	FailingSince time.Time
	// LastError is the last failure, nil once a watch is established again; a
	// *PermissionError, naming the verb and resource, when RBAC refused.
	LastError error
	// LastEvent is when the informer last heard from the API server: a list, a watch event or a
	// bookmark (which the API server sends on a quiet watch about once a minute).
	LastEvent time.Time
}

// informerHealth is what Check and Status know of one informer: its lists and watches report to
// it (see observe), and the reflector's error handler its failures.
type informerHealth struct {
	namespace, resource string
	wg                  *sync.WaitGroup // the lifecycle's: owns the watches' forwarding goroutines

	mu           sync.Mutex // guards watching, failingSince, lastError and lastVerb
	watching     bool
	failingSince time.Time
	lastError    error
	lastVerb     string       // what lastError failed to do: "list" or "watch"
	lastEvent    atomic.Int64 // unix nanoseconds of the last event; 0: none
	lists        uint64       // successful lists, guarded by mu
	failures     uint64       // failed lists and watches, guarded by mu

	// The watch an inline informer has open (see observeInline), guarded by mu but settled,
	// which every event reads.
	open        bool        // a watch is open
	generation  uint64      // counts the watches opened
	settled     atomic.Bool // the open watch has delivered an event or stayed open settleTime
	settleTimer *time.Timer // settles the open watch after settleTime
}

// counts returns the informer's successful lists and its failures, for Stats.
func (h *informerHealth) counts() (lists, failures uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lists, h.failures
}

func newInformerHealth(namespace, resource string) *informerHealth {
	return &informerHealth{namespace: namespace, resource: resource}
}

// observe makes lw report its lists and watches to h. The reflector does not tell its error
// handler of every failure: client-go retries a request whose connection is refused or reset
// (about ten times, a second apart), and a connection lost at the start of a watch gives an empty
// watch, which the reflector simply watches again. So a list counts when it succeeds, and a
// watch once it has settled: delivered an event or stayed open settleTime; one that closes before
// is a failure, as client-go's own "very short watch" is.
func (h *informerHealth) observe(lw *cache.ListWatch) *cache.ListWatch {
	list, watchFn := lw.ListWithContextFunc, lw.WatchFuncWithContext
	lw.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		obj, err := list(ctx, o)
		switch {
		case err == nil:
			h.listed()
		case ctx.Err() == nil:
			h.failed("list", err, time.Now())
		}
		return obj, err
	}
	lw.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		w, err := watchFn(ctx, o)
		if err != nil {
			if ctx.Err() == nil {
				h.failed("watch", err, time.Now())
			}
			return w, err
		}
		return h.follow(w), nil
	}
	return lw
}

// settleTime is how long a watch must stay open, without an event, to count as established.
const settleTime = time.Second

// errShortWatch is the failure recorded for a watch that closed before it settled.
var errShortWatch = fmt.Errorf("the watch closed within %v with no event: the API server is unreachable or closing connections", settleTime)

// follow forwards a watch's events to the reflector, recording them and whether the watch
// settled. Its goroutine ends when the watch closes or is stopped; the lifecycle waits for it.
func (h *informerHealth) follow(inner watch.Interface) watch.Interface {
	w := &followedWatch{inner: inner, out: make(chan watch.Event), done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(w.out)
		settle := time.NewTimer(settleTime)
		defer settle.Stop()
		settled := false
		for {
			select {
			case ev, ok := <-inner.ResultChan():
				if !ok {
					if settled {
						h.ended()
					} else {
						h.failed("watch", errShortWatch, time.Now())
					}
					return
				}
				h.lastEvent.Store(time.Now().UnixNano()) // bookmarks too: the stream is alive
				if !settled {
					settled = true
					h.recover(true)
				}
				select {
				case w.out <- ev:
				case <-w.done:
					return
				}
			case <-settle.C:
				if !settled {
					settled = true
					h.recover(true)
				}
			case <-w.done:
				return
			}
		}
	}()
	return w
}

// followedWatch is a watch whose events pass through follow's goroutine.
type followedWatch struct {
	inner watch.Interface
	out   chan watch.Event
	done  chan struct{} // closed by Stop
	once  sync.Once
}

func (w *followedWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *followedWatch) Stop() {
	w.once.Do(func() {
		close(w.done)
		w.inner.Stop()
	})
}

// observeInline is observe for an informer that reports each event to h itself (sawEvent), in
// the goroutine that reads the watch, as podInformer does: it costs no goroutine, and no hand-off
// per event. A watch's end is seen when the reflector lists or watches again, which it does at once.
func (h *informerHealth) observeInline(lw *cache.ListWatch) *cache.ListWatch {
	list, watchFn := lw.ListWithContextFunc, lw.WatchFuncWithContext
	lw.ListWithContextFunc = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		h.endWatch()
		obj, err := list(ctx, o)
		switch {
		case err == nil:
			h.listed()
		case ctx.Err() == nil:
			h.failed("list", err, time.Now())
		}
		return obj, err
	}
	lw.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		h.endWatch()
		w, err := watchFn(ctx, o)
		if err != nil {
			if ctx.Err() == nil {
				h.failed("watch", err, time.Now())
			}
			return w, err
		}
		h.openWatch()
		return w, nil
	}
	return lw
}

// openWatch records a watch just opened: settled by its first event, or by a timer.
func (h *informerHealth) openWatch() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = true
	h.generation++
	h.settled.Store(false)
	generation := h.generation
	h.settleTimer = time.AfterFunc(settleTime, func() { h.settle(generation) })
}

// sawEvent records an event (or a bookmark) of the open watch.
func (h *informerHealth) sawEvent() {
	h.lastEvent.Store(time.Now().UnixNano())
	if !h.settled.Load() {
		h.mu.Lock()
		generation := h.generation
		h.mu.Unlock()
		h.settle(generation)
	}
}

// settle records that watch number generation settled, if it is still the open one.
func (h *informerHealth) settle(generation uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open || h.generation != generation || h.settled.Load() {
		return
	}
	h.settled.Store(true)
	h.watching, h.failingSince, h.lastError, h.lastVerb = true, time.Time{}, nil, ""
}

// endWatch records the end of the open watch, if any: a failure if it never settled.
func (h *informerHealth) endWatch() {
	h.mu.Lock()
	open, settled := h.open, h.settled.Load()
	h.open = false
	if h.settleTimer != nil {
		h.settleTimer.Stop()
	}
	h.mu.Unlock()
	switch {
	case !open:
	case settled:
		h.ended()
	default:
		h.failed("watch", errShortWatch, time.Now())
	}
}

// stopTimer stops the settle timer of an inline informer's last watch, at Close.
func (h *informerHealth) stopTimer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settleTimer != nil {
		h.settleTimer.Stop()
	}
}

// ended records that a settled watch closed; the reflector watches again at once.
func (h *informerHealth) ended() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watching = false
}

// listed records a successful list. It ends no failure: only a watch that settles does, so that
// an informer whose lists succeed but whose watches fail stays reported.
func (h *informerHealth) listed() {
	h.lastEvent.Store(time.Now().UnixNano())
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lists++
	h.watching = false // the watch is not open yet
}

// recover records a watch that settled: the informer hears of every change again.
func (h *informerHealth) recover(watching bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watching, h.failingSince, h.lastError, h.lastVerb = watching, time.Time{}, nil, ""
}

// failed records a failure to list or watch (verb); the first of a run sets failingSince.
func (h *informerHealth) failed(verb string, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() {
		h.failingSince = now
	}
	h.watching, h.lastError, h.lastVerb = false, err, verb
	h.failures++
}

func (h *informerHealth) status() InformerStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := InformerStatus{Namespace: h.namespace, Resource: h.resource, Watching: h.watching,
		FailingSince: h.failingSince, LastError: h.lastError}
	if apierrors.IsForbidden(s.LastError) || apierrors.IsUnauthorized(s.LastError) {
		s.LastError = &PermissionError{Verb: h.lastVerb, Resource: h.resource, Namespace: h.namespace, Err: s.LastError}
	}
	if ns := h.lastEvent.Load(); ns != 0 {
		s.LastEvent = time.Unix(0, ns)
	}
	return s
}

// status is the source's Status.
func (l *lifecycle) status() Status {
	l.mu.Lock()
	health := l.health
	l.mu.Unlock()
	s := Status{Synced: l.started() == nil}
	for _, h := range health {
		s.Informers = append(s.Informers, h.status())
	}
	return s
}

// check is the source's Check at time now.
func (l *lifecycle) check(maxStale time.Duration, now time.Time) error {
	if err := l.started(); err != nil {
		return err
	}
	for _, s := range l.status().Informers {
		if s.FailingSince.IsZero() || now.Sub(s.FailingSince) < maxStale {
			continue
		}
		scope := fmt.Sprintf("namespace %q", s.Namespace)
		if s.Namespace == "" {
			scope = "all namespaces"
		}
		cause := s.LastError // a *PermissionError when RBAC refused: see status
		return fmt.Errorf("%w: listing and watching %s in %s has failed since %s (%s ago); serving the last known instances: %w",
			ErrStale, s.Resource, scope, s.FailingSince.Format(time.RFC3339), now.Sub(s.FailingSince).Round(time.Second), cause)
	}
	return nil
}
