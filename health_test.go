package kuberegistry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/fake"
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
