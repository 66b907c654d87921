package kuberegistry

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression: GetService and Watch take the same names. The catalog's key of one namespace's part
// of a service ("cart/shop") is no name: GetService used to serve it while Watch refused it.
func TestGetServiceRefusesInternalKeys(t *testing.T) {
	east, west := newPod(registered("cart", `{"9000":"grpc"}`)), newPod(registered("cart", `{"9000":"grpc"}`))
	east.Namespace, east.Name = "east", "cart-0"
	west.Namespace, west.Name, west.Status.PodIPs[0].IP, west.Status.PodIP = "west", "cart-0", "10.0.0.2", "10.0.0.2"
	f := newFixture(t, east, west)
	reg, err := New(f.client, WithNamespaces("east", "west"), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer reg.Close()
	require.NoError(t, reg.Start(context.Background()))

	got, err := reg.GetService(context.Background(), "cart.east")
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got))
	for _, name := range []string{"cart/east", "cart/west"} {
		_, err = reg.GetService(context.Background(), name)
		assert.ErrorIs(t, err, ErrInvalidName, "GetService(%q)", name)
		_, err = reg.Watch(context.Background(), name)
		assert.ErrorIs(t, err, ErrInvalidName, "Watch(%q)", name)
	}
}

// Regression: a Service with endpoints in two namespaces, all-namespace scope: the aggregated
// slice had spare capacity, so two callers who each appended to it wrote the same element.
func TestEndpointSliceResultsHaveNoSpareCapacity(t *testing.T) {
	shop := newSlice("web-a", "web", httpPorts, endpointAt("10.0.0.1"), endpointAt("10.0.0.2"), endpointAt("10.0.0.2"))
	pay := newSlice("web-b", "web", httpPorts, endpointAt("10.0.1.1"), endpointAt("10.0.1.2"), endpointAt("10.0.1.3"))
	pay.Namespace = "pay"
	f := newSliceFixture(t, []EndpointSliceOption{WithSliceNamespace("")}, shop, pay)
	f.eventually(t, "web", "10.0.0.1 http://10.0.0.1:8080", "10.0.0.2 http://10.0.0.2:8080",
		"10.0.1.1 http://10.0.1.1:8080", "10.0.1.2 http://10.0.1.2:8080", "10.0.1.3 http://10.0.1.3:8080")
	for _, name := range []string{"web", "web." + testNamespace, "web.pay"} {
		got, err := f.d.GetService(context.Background(), name)
		require.NoError(t, err)
		require.NotEmpty(t, got, name)
		assert.Equal(t, len(got), cap(got), "GetService(%q) has spare capacity", name)
	}
}

// Regression: "web.shop" names Service web of namespace shop for both sources, whatever their
// scope; a one-namespace EndpointSliceDiscovery used to resolve it to nothing, so the gRPC
// target kubernetes://shop/web found no instance.
func TestEndpointSliceQualifiedNameInOneNamespace(t *testing.T) {
	f := newSliceFixture(t, nil, newSlice("web-a", "web", httpPorts, endpointAt("10.0.0.1")))
	f.eventually(t, "web", "10.0.0.1 http://10.0.0.1:8080")
	got, err := f.d.GetService(context.Background(), "web."+testNamespace)
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1 http://10.0.0.1:8080"}, ids(got))
	w, err := f.d.Watch(context.Background(), "web."+testNamespace)
	require.NoError(t, err)
	defer w.Stop()
	got, err = w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1 http://10.0.0.1:8080"}, ids(got))
	got, err = f.d.GetService(context.Background(), "web.elsewhere")
	require.NoError(t, err)
	assert.Empty(t, got, "a namespace out of scope is part of the name")
}

// The Service source is a Catalog too: Services lists the Services with instances (never the
// internal per-namespace keys), and WatchServices follows them.
func TestEndpointSliceCatalog(t *testing.T) {
	pay := newSlice("db-a", "db", httpPorts, endpointAt("10.0.1.1"))
	pay.Namespace = "pay"
	f := newSliceFixture(t, []EndpointSliceOption{WithSliceNamespace("")},
		newSlice("web-a", "web", httpPorts, endpointAt("10.0.0.1")), pay)
	f.eventually(t, "db", "10.0.1.1 http://10.0.1.1:8080")
	var catalog Catalog = f.d
	names, err := catalog.Services(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"db", "web"}, names)

	w, err := catalog.WatchServices(context.Background())
	require.NoError(t, err)
	defer w.Stop()
	first, err := w.Next()
	require.NoError(t, err)
	assert.Len(t, first, 2)
	f.delete(t, "web-a")
	next, err := w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.1.1 http://10.0.1.1:8080"}, ids(next["db"]))
	assert.NotContains(t, next, "web")
}
