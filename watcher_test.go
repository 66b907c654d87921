package kuberegistry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// cartPod is a ready pod of service cart at 10.0.0.<n>.
func cartPod(n int) *corev1.Pod {
	s := registered("cart", `{"9000":"grpc"}`)
	s.name, s.ips = fmt.Sprintf("cart-%d", n), []string{fmt.Sprintf("10.0.0.%d", n)}
	return newPod(s)
}

func endpointsOf(instances []*ServiceInstance) []string {
	var out []string
	for _, in := range instances {
		out = append(out, in.Endpoints...)
	}
	return out
}

func TestWatchFirstNextReturnsCurrentSetAtOnce(t *testing.T) {
	f := newFixture(t, cartPod(1))
	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	defer w.Stop()
	got, err := w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got))

	empty, err := f.reg.Watch(context.Background(), "nobody")
	require.NoError(t, err)
	defer empty.Stop()
	got, err = empty.Next()
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestWatchWakesOnlyWhenTheSetChanges(t *testing.T) {
	f := newFixture(t, cartPod(1))
	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	_, err = w.Next()
	require.NoError(t, err)
	next := nextAsync(t, w)

	// Neither a change to another service, nor a change to a field discovery ignores, nor a pod
	// that is not ready changes the set: the pending Next must skip them all.
	f.create(t, newPod(podSpec{name: "other-1", service: "other"}))
	relabelled := cartPod(1)
	relabelled.Labels["team"] = "checkout"
	f.update(t, relabelled)
	notReady := cartPod(2)
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	f.create(t, notReady)
	f.create(t, cartPod(3))

	got := receive(t, next)
	require.NoError(t, got.err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000", "grpc://10.0.0.3:9000"}, endpointsOf(got.instances))
}

func TestWatchFollowsReadinessAndDeletion(t *testing.T) {
	f := newFixture(t, cartPod(1), cartPod(2))
	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	defer w.Stop()
	got, err := w.Next()
	require.NoError(t, err)
	require.Len(t, got, 2)

	notReady := cartPod(1)
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	f.update(t, notReady)
	got, err = w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.2:9000"}, endpointsOf(got))

	f.delete(t, "cart-2")
	got, err = w.Next()
	require.NoError(t, err)
	assert.Empty(t, got)

	f.update(t, cartPod(1))
	got, err = w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got))
}

func TestWatchCoalescesBursts(t *testing.T) {
	f := newFixture(t)
	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	defer w.Stop()
	_, err = w.Next()
	require.NoError(t, err)
	for i := 1; i <= 50; i++ {
		f.create(t, cartPod(i))
	}
	f.eventually(t, "cart", 50)
	got, err := w.Next()
	require.NoError(t, err)
	assert.Len(t, got, 50, "Next jumps to the latest set")
}

func TestWatchEnds(t *testing.T) {
	tests := []struct {
		name  string
		end   func(f *fixture, w Watcher, cancel context.CancelFunc)
		cause error
	}{
		{"Stop", func(_ *fixture, w Watcher, _ context.CancelFunc) { _ = w.Stop() }, errWatcherStopped},
		{"context canceled", func(_ *fixture, _ Watcher, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"registry closed", func(f *fixture, _ Watcher, _ context.CancelFunc) { _ = f.reg.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, cartPod(1))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := f.reg.Watch(ctx, "cart")
			require.NoError(t, err)
			_, err = w.Next()
			require.NoError(t, err)
			next := nextAsync(t, w)
			tt.end(f, w, cancel)
			got := receive(t, next)
			require.ErrorIs(t, got.err, context.Canceled, "go-kratos resolvers exit on context.Canceled")
			require.ErrorIs(t, got.err, tt.cause)
			_, err = w.Next()
			require.ErrorIs(t, err, context.Canceled, "a stopped watcher stays stopped")
			require.NoError(t, w.Stop())
			// The watcher left the catalog: nothing will wake it again.
			require.Eventually(t, func() bool {
				f.reg.catalog.mu.RLock()
				defer f.reg.catalog.mu.RUnlock()
				s := f.reg.catalog.services["cart"]
				return s == nil || len(s.watchers) == 0
			}, 5*time.Second, time.Millisecond)
		})
	}
}

func TestWatchDeadlineMatchesCanceledToo(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	w, err := f.reg.Watch(ctx, "cart")
	require.NoError(t, err)
	_, err = w.Next()
	require.NoError(t, err)
	_, err = w.Next()
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestWatchRejectsBadNames(t *testing.T) {
	f := newFixture(t)
	_, err := f.reg.Watch(context.Background(), "")
	require.ErrorIs(t, err, ErrInvalidName)
}

// TestHandlerTakesTombstones feeds the handler a deleted-object tombstone, as the informer does when
// it missed a delete during a watch outage.
func TestHandlerTakesTombstones(t *testing.T) {
	f := newFixture(t, cartPod(1), cartPod(2))
	f.eventually(t, "cart", 2)
	h := newPodEvents(f.reg)
	kept, err := toPodEntry(cartPod(1))
	require.NoError(t, err)
	gone, err := toPodEntry(cartPod(2))
	require.NoError(t, err)
	h.OnAdd(kept, true)
	h.OnAdd(gone, true)
	h.flush()
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/cart-2", Obj: gone})
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(f.reg.catalog.instances("cart")))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/x", Obj: "not an entry"})
	h.OnDelete(nil)
}

func TestStoppedErrorMessage(t *testing.T) {
	err := error(&stoppedError{cause: errors.New("boom")})
	assert.Equal(t, "kuberegistry: watcher stopped: boom", err.Error())
}
