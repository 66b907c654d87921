package grpc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc/resolver"
)

// fakeDiscovery hands out fakeWatchers that the test drives.
type fakeDiscovery struct {
	watchErr error

	mu       sync.Mutex // guards the fields below
	names    []string
	contexts []context.Context
	watchers []*fakeWatcher
}

func (d *fakeDiscovery) GetService(context.Context, string) ([]*kuberegistry.ServiceInstance, error) {
	return nil, errors.New("not used")
}

func (d *fakeDiscovery) Watch(ctx context.Context, name string) (kuberegistry.Watcher, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names = append(d.names, name)
	d.contexts = append(d.contexts, ctx)
	if d.watchErr != nil {
		return nil, d.watchErr
	}
	w := &fakeWatcher{ctx: ctx, results: make(chan nextResult, 16), stopped: make(chan struct{})}
	d.watchers = append(d.watchers, w)
	return w, nil
}

func (d *fakeDiscovery) watcher(t *testing.T) *fakeWatcher {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.watchers) != 1 {
		t.Fatalf("%d watchers, want 1", len(d.watchers))
	}
	return d.watchers[0]
}

type nextResult struct {
	instances []*kuberegistry.ServiceInstance
	err       error
}

// fakeWatcher returns what the test sends, and ends like kuberegistry's watchers: with an error
// that matches context.Canceled once stopped or once its context ends.
type fakeWatcher struct {
	ctx      context.Context
	results  chan nextResult
	stopped  chan struct{}
	stopOnce sync.Once
}

func (w *fakeWatcher) send(instances ...*kuberegistry.ServiceInstance) {
	w.results <- nextResult{instances: instances}
}

func (w *fakeWatcher) Next() ([]*kuberegistry.ServiceInstance, error) {
	select {
	case r := <-w.results:
		return r.instances, r.err
	case <-w.stopped:
		return nil, context.Canceled
	case <-w.ctx.Done():
		return nil, w.ctx.Err()
	}
}

func (w *fakeWatcher) Stop() error {
	w.stopOnce.Do(func() { close(w.stopped) })
	return nil
}

// fakeClientConn records what a resolver tells gRPC, in order.
type fakeClientConn struct {
	resolver.ClientConn // nil: only the methods below are called
	events              chan ccEvent
}

// ccEvent is one call: an UpdateState (state set) or a ReportError (err set).
type ccEvent struct {
	state *resolver.State
	err   error
}

func newFakeClientConn() *fakeClientConn {
	return &fakeClientConn{events: make(chan ccEvent, 64)}
}

func (cc *fakeClientConn) UpdateState(s resolver.State) error {
	cc.events <- ccEvent{state: &s}
	if len(s.Endpoints) == 0 {
		return errors.New("bad resolver state") // what gRPC's balancers answer
	}
	return nil
}

func (cc *fakeClientConn) ReportError(err error) {
	cc.events <- ccEvent{err: err}
}

// next returns the next call, failing the test if none comes within five seconds.
func (cc *fakeClientConn) next(t *testing.T) ccEvent {
	t.Helper()
	select {
	case e := <-cc.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("the resolver told the ClientConn nothing within 5s")
		return ccEvent{}
	}
}

// none checks that no call comes within a short while.
func (cc *fakeClientConn) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-cc.events:
		t.Fatalf("unexpected call: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// addrs lists the addresses of an UpdateState, failing if the event is another call.
func addrs(t *testing.T, e ccEvent) []string {
	t.Helper()
	if e.state == nil {
		t.Fatalf("got ReportError(%v), want UpdateState", e.err)
	}
	out := []string{}
	for _, ep := range e.state.Endpoints {
		for _, a := range ep.Addresses {
			out = append(out, a.Addr)
		}
	}
	return out
}

func instance(id, endpoint string) *kuberegistry.ServiceInstance {
	return &kuberegistry.ServiceInstance{ID: id, Name: "greeter", Endpoints: []string{endpoint}}
}
