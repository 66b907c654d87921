package grpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/resolver"
)

// build starts a resolver for target over a fake Discovery, closed with the test.
func build(t *testing.T, targetURL string) (*fakeDiscovery, *fakeClientConn, resolver.Resolver) {
	t.Helper()
	d := &fakeDiscovery{}
	b, err := NewBuilder(d)
	require.NoError(t, err)
	cc := newFakeClientConn()
	r, err := b.Build(target(t, targetURL), cc, resolver.BuildOptions{})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return d, cc, r
}

func TestResolverPushesEveryChange(t *testing.T) {
	d, cc, _ := build(t, "kubernetes:///greeter")
	assert.Equal(t, []string{"greeter"}, d.names)
	w := d.watcher(t)

	w.send(instance("a", "grpc://10.0.0.1:9000"))
	assert.Equal(t, []string{"10.0.0.1:9000"}, addrs(t, cc.next(t)))

	w.send(instance("a", "grpc://10.0.0.1:9000"), instance("b", "grpc://10.0.0.2:9000"))
	assert.Equal(t, []string{"10.0.0.1:9000", "10.0.0.2:9000"}, addrs(t, cc.next(t)))

	// A change this client does not dial (an HTTP port) is not pushed.
	b := instance("b", "grpc://10.0.0.2:9000")
	b.Endpoints = append(b.Endpoints, "http://10.0.0.2:8000")
	w.send(instance("a", "grpc://10.0.0.1:9000"), b)
	cc.none(t)

	w.send(instance("b", "grpc://10.0.0.2:9000"))
	assert.Equal(t, []string{"10.0.0.2:9000"}, addrs(t, cc.next(t)))
}

func TestResolverPushesTheEmptySet(t *testing.T) {
	d, cc, _ := build(t, "kubernetes:///greeter")
	w := d.watcher(t)

	// The first set is pushed even when empty, so that RPCs fail at once.
	w.send()
	assert.Empty(t, addrs(t, cc.next(t)))
	e := cc.next(t)
	assert.ErrorContains(t, e.err, `service "greeter" has no ready instance`)

	w.send(instance("a", "grpc://10.0.0.1:9000"))
	assert.Equal(t, []string{"10.0.0.1:9000"}, addrs(t, cc.next(t)))

	// The last instance goes: an empty update, not only an error, so that balancers drop it.
	w.send()
	assert.Empty(t, addrs(t, cc.next(t)))
	assert.Error(t, cc.next(t).err)

	// Instances without a gRPC endpoint are no better than none.
	w.send(instance("h", "http://10.0.0.3:8000"))
	cc.none(t)
}

func TestResolverQualifiesTheNameWithTheNamespace(t *testing.T) {
	d, cc, _ := build(t, "kubernetes://shop/greeter")
	assert.Equal(t, []string{"greeter.shop"}, d.names)
	d.watcher(t).send(instance("a", "grpc://10.0.0.1:9000"))
	assert.Equal(t, []string{"10.0.0.1:9000"}, addrs(t, cc.next(t)))
}

func TestResolverRetriesAfterAnError(t *testing.T) {
	d, cc, _ := build(t, "kubernetes:///greeter")
	w := d.watcher(t)
	w.results <- nextResult{err: errors.New("etcd hiccup")}
	e := cc.next(t)
	assert.ErrorContains(t, e.err, "etcd hiccup")
	w.send(instance("a", "grpc://10.0.0.1:9000"))
	assert.Equal(t, []string{"10.0.0.1:9000"}, addrs(t, cc.next(t)), "the resolver tries again after a backoff")
}

func TestResolverClearsTheStateWhenTheWatchEndsByItself(t *testing.T) {
	d, cc, _ := build(t, "kubernetes:///greeter")
	w := d.watcher(t)
	w.send(instance("a", "grpc://10.0.0.1:9000"))
	addrs(t, cc.next(t))

	// The registry is closed under the ClientConn: its watchers end with context.Canceled.
	require.NoError(t, w.Stop())
	assert.Empty(t, addrs(t, cc.next(t)), "stale addresses are dropped")
	e := cc.next(t)
	assert.ErrorIs(t, e.err, context.Canceled)
	assert.ErrorContains(t, e.err, `the watch of service "greeter" ended`)
	cc.none(t)
}

func TestResolverCloseEndsTheWatch(t *testing.T) {
	d, cc, r := build(t, "kubernetes:///greeter")
	w := d.watcher(t)
	w.send(instance("a", "grpc://10.0.0.1:9000"))
	addrs(t, cc.next(t))

	done := make(chan struct{})
	go func() {
		r.Close() // the watch loop is blocked in Next
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	assert.ErrorIs(t, d.contexts[0].Err(), context.Canceled, "the Watch context ends at Close")
	cc.none(t) // nothing told to gRPC after Close
	r.Close()  // idempotent
	r.ResolveNow(resolver.ResolveNowOptions{})
}
