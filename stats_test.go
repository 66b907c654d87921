package kuberegistry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stats follows a registry's life: what it serves, its watchers, events, publishes, lists, pods
// by state and registration requests.
func TestStatsCountWhatHappens(t *testing.T) {
	broken := cartPod(3)
	broken.Annotations[AnnotationsKeyProtocolMap] = `{"not a port":"grpc"}`
	f := newFixture(t, cartPod(1), cartPod(2), broken)
	f.eventually(t, "cart", 2)
	s := f.reg.Stats()
	assert.Equal(t, 1, s.Services)
	assert.Equal(t, 2, s.Instances)
	assert.Equal(t, uint64(1), s.Lists)
	assert.Zero(t, s.Failures)
	assert.Equal(t, 2, s.PodsByState["ready"])
	assert.Equal(t, 1, s.PodsByState["malformed"])

	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	cw, err := f.reg.WatchServices(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, f.reg.Stats().Watchers)

	before := f.reg.Stats()
	notReady := cartPod(2)
	notReady.Status.Conditions[0].Status = "False"
	f.update(t, notReady)
	f.eventually(t, "cart", 1)
	after := f.reg.Stats()
	assert.Equal(t, before.Updates+1, after.Updates)
	assert.Equal(t, before.Publishes+1, after.Publishes)
	assert.Equal(t, 1, after.Instances)
	assert.Equal(t, 1, after.PodsByState["ready"])
	assert.Equal(t, 1, after.PodsByState["not-ready"])

	require.NoError(t, f.reg.Register(context.Background(), &ServiceInstance{Name: "cart", Endpoints: []string{"grpc://:9000"}}))
	require.Error(t, f.reg.Register(context.Background(), &ServiceInstance{Name: "not a name"}))
	s = f.reg.Stats()
	assert.Equal(t, uint64(2), s.Register.Calls)
	assert.Equal(t, uint64(1), s.Register.Failures)
	assert.Equal(t, uint64(2), s.Register.Buckets[len(LatencyBuckets)-1], "both took less than 10 s")
	assert.Positive(t, s.Register.Seconds)

	require.NoError(t, w.Stop())
	require.NoError(t, cw.Stop())
	require.Eventually(t, func() bool { return f.reg.Stats().Watchers == 0 }, 5*time.Second, time.Millisecond)
}
