package grpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc/resolver"
)

// Backoff between two tries of a watcher whose Next failed; kuberegistry's watchers only fail
// once they end, but another Discovery may fail and recover.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 10 * time.Second
)

// kubeResolver pushes the sets a watcher reports into a ClientConn. One goroutine does all the
// work; Close ends it and waits for it, as grpc-go's dns resolver does.
type kubeResolver struct {
	cc      resolver.ClientConn
	w       kuberegistry.Watcher
	name    string   // the service, as given to Watch
	schemes []string // the endpoint schemes to dial, by preference

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watch loop
}

var _ resolver.Resolver = (*kubeResolver)(nil)

func startResolver(ctx context.Context, cancel context.CancelFunc, w kuberegistry.Watcher, cc resolver.ClientConn, name string, schemes []string) *kubeResolver {
	r := &kubeResolver{cc: cc, w: w, name: name, schemes: schemes, ctx: ctx, cancel: cancel}
	r.wg.Add(1)
	go r.watch()
	return r
}

// watch pushes every set the watcher returns, the first one included even when it is empty, so
// that RPCs fail fast instead of waiting for a first resolution that may never come.
func (r *kubeResolver) watch() {
	defer r.wg.Done()
	var last []resolver.Endpoint
	pushed := false
	states := newStateCache(r.schemes)
	delay := minRetryDelay
	for {
		instances, err := r.w.Next()
		if err != nil {
			if r.ctx.Err() != nil {
				return // Close
			}
			if errors.Is(err, context.Canceled) {
				// The watch ended on its own: the registry was closed. Keeping the last
				// addresses would send RPCs to pods nobody watches any more.
				_ = r.cc.UpdateState(resolver.State{})
				r.cc.ReportError(fmt.Errorf("kuberegistry/grpc: the watch of service %q ended: %w", r.name, err))
				return
			}
			r.cc.ReportError(fmt.Errorf("kuberegistry/grpc: watching service %q: %w", r.name, err))
			if !r.sleep(delay) {
				return
			}
			delay = min(2*delay, maxRetryDelay)
			continue
		}
		delay = minRetryDelay
		state := states.stateOf(instances)
		if pushed && sameEndpoints(last, state.Endpoints) {
			continue // a change in what this client does not dial, such as an HTTP port
		}
		pushed, last = true, state.Endpoints
		// An empty set makes the balancer return ErrBadResolverState, which asks a polling
		// resolver to try again; the watch reports the next change by itself.
		_ = r.cc.UpdateState(state)
		if len(state.Endpoints) == 0 {
			// Only for the message of failed RPCs: the empty update above already cleared
			// the addresses. pick_first shows this error; round_robin says "no children".
			r.cc.ReportError(fmt.Errorf("kuberegistry/grpc: service %q has no ready instance with a %v endpoint", r.name, r.schemes))
		}
	}
}

// sleep waits for d or Close, and reports whether the resolver is still open.
func (r *kubeResolver) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// ResolveNow does nothing: the resolver is told of every change as it happens.
func (r *kubeResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops the watch and waits for the resolver's goroutine to end. It is idempotent.
func (r *kubeResolver) Close() {
	r.cancel()
	_ = r.w.Stop()
	r.wg.Wait()
}
