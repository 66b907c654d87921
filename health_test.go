package kuberegistry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// Check and Status over a registry's life, on the fake clientset.
func TestCheckAndStatusFollowTheLifecycle(t *testing.T) {
	r, err := New(fake.NewClientset(cartPod(1)), WithNamespace(testNamespace), WithLogger(discardLogger()))
	require.NoError(t, err)
	require.ErrorIs(t, r.Check(time.Minute), ErrNotStarted)
	assert.False(t, r.Status().Synced)

	require.NoError(t, r.Start(context.Background()))
	require.NoError(t, r.Check(0), "a started registry whose watch is open is in sync")
	require.Eventually(t, func() bool {
		s := r.Status()
		return s.Synced && len(s.Informers) == 1 && s.Informers[0].Watching
	}, 5*time.Second, time.Millisecond)
	s := r.Status().Informers[0]
	assert.Equal(t, testNamespace, s.Namespace)
	assert.Equal(t, "pods", s.Resource)
	assert.True(t, s.FailingSince.IsZero())
	assert.False(t, s.LastEvent.IsZero(), "the initial list delivered cart-1")

	require.NoError(t, r.Close())
	require.ErrorIs(t, r.Check(time.Minute), ErrClosed)
}

// The rules of Check, on health records set by hand at known times.
func TestCheckReportsFailuresOlderThanMaxStale(t *testing.T) {
	d, err := NewEndpointSliceDiscovery(fake.NewClientset(), WithNamespaces("east", "west"), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.Start(context.Background()))
	east, west := d.life.health[0], d.life.health[1]
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

	west.failed("list", errors.New("connection refused"), t0)
	west.failed("watch", errors.New("connection reset"), t0.Add(5*time.Second)) // the run began at t0
	assert.NoError(t, d.life.check(time.Minute, t0.Add(59*time.Second)), "younger than maxStale")
	err = d.life.check(time.Minute, t0.Add(61*time.Second))
	require.ErrorIs(t, err, ErrStale)
	assert.ErrorContains(t, err, `namespace "west" has failed since 2026-11-29T12:00:00Z (1m1s ago)`)
	assert.ErrorContains(t, err, "connection reset")

	west.listed()
	assert.Error(t, d.life.check(0, t0.Add(time.Hour)), "a list alone ends no failure: the watch may still fail")
	west.recover(true)
	assert.NoError(t, d.life.check(0, t0.Add(time.Hour)), "a watch that settles ends the failure")

	east.failed("list", apierrors.NewForbidden(podsResource, "", errors.New("RBAC: access denied")), t0)
	err = d.life.check(0, t0)
	var perm *PermissionError
	require.ErrorAs(t, err, &perm, "a refusal is a PermissionError")
	assert.Equal(t, "list", perm.Verb)
	assert.Equal(t, endpointSlicesResource, perm.Resource)
	assert.Equal(t, "east", perm.Namespace)
	assert.ErrorIs(t, err, ErrStale)
}

// An inline informer's watch settles at its first event, or once open settleTime; one that ends
// unsettled (the informer watches again) is a failure, and a settled one that ends is not.
func TestInlineHealthFollowsWatchesWithoutAGoroutine(t *testing.T) {
	h := newInformerHealth("shop", "pods")
	lw := h.observeInline(&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &corev1.PodList{}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			return watch.NewFake(), nil
		},
	})
	defer h.stopTimer()
	ctx := context.Background()
	_, err := lw.ListWithContext(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	_, err = lw.WatchWithContext(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.False(t, h.status().Watching, "not settled yet")
	h.sawEvent()
	s := h.status()
	assert.True(t, s.Watching)
	assert.False(t, s.LastEvent.IsZero())

	_, err = lw.WatchWithContext(ctx, metav1.ListOptions{}) // the settled watch ended
	require.NoError(t, err)
	s = h.status()
	assert.False(t, s.Watching)
	assert.True(t, s.FailingSince.IsZero(), "a settled watch that ends is no failure")

	_, err = lw.WatchWithContext(ctx, metav1.ListOptions{}) // and this one ended unsettled
	require.NoError(t, err)
	s = h.status()
	assert.False(t, s.FailingSince.IsZero())
	assert.ErrorIs(t, s.LastError, errShortWatch)

	require.Eventually(t, func() bool { return h.status().Watching }, 5*settleTime, 10*time.Millisecond,
		"a quiet watch settles after settleTime")
	assert.True(t, h.status().FailingSince.IsZero())
}
