package kuberegistry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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
	f := newSliceFixture(t, []Option{WithNamespace("")}, shop, pay)
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
	f := newSliceFixture(t, []Option{WithNamespace("")},
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

// One Option type serves both sources; what makes no sense for Services is refused by name.
func TestEndpointSliceRefusesRegistryOnlyOptions(t *testing.T) {
	_, err := NewEndpointSliceDiscovery(fake.NewClientset(), WithPod("shop", "self"), WithPodLabelsMetadata("l."), WithNamespace("shop"))
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithPod, WithPodLabelsMetadata: only a Registry takes it")
	_, err = NewEndpointSliceDiscovery(fake.NewClientset(), WithNamespaces())
	require.ErrorIs(t, err, ErrInvalidOption)
}

// The options both sources take mean the same for Services: namespaces (one informer each), a
// label selector (on the Services' labels, which their slices carry), not-ready endpoints and
// secure ports.
func TestEndpointSliceOptions(t *testing.T) {
	in := func(ns string, s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		s.Namespace = ns
		return s
	}
	labelled := func(s *discoveryv1.EndpointSlice, k, v string) *discoveryv1.EndpointSlice {
		s.Labels[k] = v
		return s
	}
	tlsPorts := []discoveryv1.EndpointPort{slicePort("http", 8080, ""), slicePort("admin", 9443, "http")}
	f := newSliceFixture(t, []Option{WithNamespaces("east", "west"), WithLabelSelector("tier=backend"),
		WithIncludeNotReady(), WithSecurePorts(9443)},
		labelled(in("east", newSlice("web-a", "web", tlsPorts, endpointAt("10.0.0.1"), endpointAt("10.0.0.2", notReady))), "tier", "backend"),
		labelled(in("west", newSlice("web-b", "web", httpPorts, endpointAt("10.0.1.1"))), "tier", "backend"),
		labelled(in("west", newSlice("db-a", "db", httpPorts, endpointAt("10.0.1.9"))), "tier", "data"),
		in("north", newSlice("web-c", "web", httpPorts, endpointAt("10.0.2.1"))))
	f.eventually(t, "web",
		"10.0.0.1 http://10.0.0.1:8080 http://10.0.0.1:9443?isSecure=true",
		"10.0.0.2 http://10.0.0.2:8080 http://10.0.0.2:9443?isSecure=true", // not ready, served
		"10.0.1.1 http://10.0.1.1:8080")
	assert.Equal(t, []string{"web"}, mustServices(t, f.d), "db is not selected; north is out of scope")
	west, err := f.d.GetService(context.Background(), "web.west")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.1.1 http://10.0.1.1:8080"}, ids(west))
	assert.Equal(t, []string{"east", "west"}, f.d.life.namespaces)
}

func mustServices(t *testing.T, c Catalog) []string {
	t.Helper()
	names, err := c.Services(context.Background())
	require.NoError(t, err)
	return names
}

// The Service source at parity with Spring Cloud Kubernetes: ports and labels in metadata (below
// this package's own keys), zone hints, the secured label, and a primary port.
func TestSliceTranslationParity(t *testing.T) {
	multi := []discoveryv1.EndpointPort{slicePort("http", 8080, ""), slicePort("admin", 9000, ""), slicePort("metrics", 9090, "http")}
	slice := func() *discoveryv1.EndpointSlice {
		s := newSlice("web-a", "web", multi, endpointAt("10.0.0.1", func(ep *discoveryv1.Endpoint) {
			ep.Zone, ep.NodeName = new("eu-1a"), new("node-1")
			ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "eu-1a"}, {Name: "eu-1b"}}}
		}))
		s.Labels["tier"] = "front"
		s.Labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
		s.Labels["kuberegistry.io/zone"] = "a label that must not win"
		return s
	}
	prefix, empty := "port.", ""
	tests := []struct {
		name      string
		t         sliceTranslation
		edit      func(*discoveryv1.EndpointSlice)
		endpoints []string
		metadata  map[string]string
	}{
		{
			name:      "defaults: the ports named after a protocol",
			t:         defaultSliceTranslation,
			endpoints: []string{"http://10.0.0.1:8080", "http://10.0.0.1:9090"},
			metadata: map[string]string{MetadataKeyNamespace: testNamespace, MetadataKeyZone: "eu-1a",
				MetadataKeyNode: "node-1", MetadataKeyZoneHints: "eu-1a,eu-1b"},
		},
		{
			name:      "ports and labels in metadata; ours first",
			t:         sliceTranslation{portsPrefix: &prefix, labelsPrefix: &empty},
			endpoints: []string{"http://10.0.0.1:8080", "http://10.0.0.1:9090"},
			metadata: map[string]string{MetadataKeyNamespace: testNamespace, MetadataKeyZone: "eu-1a",
				MetadataKeyNode: "node-1", MetadataKeyZoneHints: "eu-1a,eu-1b",
				"port.http": "8080", "port.admin": "9000", "port.metrics": "9090", "tier": "front"},
		},
		{
			name:      "the primary port only, whatever its name says",
			t:         sliceTranslation{primaryPort: "admin"},
			endpoints: []string{"tcp://10.0.0.1:9000"},
		},
		{
			name:      "a primary port the Service lacks changes nothing",
			t:         sliceTranslation{primaryPort: "grpc"},
			endpoints: []string{"http://10.0.0.1:8080", "http://10.0.0.1:9090"},
		},
		{
			name:      "secured=true marks every endpoint",
			t:         defaultSliceTranslation,
			edit:      func(s *discoveryv1.EndpointSlice) { s.Labels[ServiceLabelSecured] = "true" },
			endpoints: []string{"http://10.0.0.1:8080?isSecure=true", "http://10.0.0.1:9090?isSecure=true"},
		},
		{
			name:      "secure ports mark theirs",
			t:         sliceTranslation{securePorts: []int32{9090}},
			endpoints: []string{"http://10.0.0.1:8080", "http://10.0.0.1:9090?isSecure=true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := slice()
			if tt.edit != nil {
				tt.edit(s)
			}
			si := tt.t.translate(s)
			require.Empty(t, si.problem)
			require.Len(t, si.endpoints, 1)
			in := si.endpoints[0].instance
			assert.Equal(t, tt.endpoints, in.Endpoints)
			if tt.metadata != nil {
				assert.Equal(t, tt.metadata, in.Metadata)
			}
		})
	}
}

// Options that only one source takes are refused by the other, by name.
func TestRegistryRefusesSliceOnlyOptions(t *testing.T) {
	_, err := New(fake.NewClientset(), WithPrimaryPort("grpc"), WithServiceLabelsMetadata("l."))
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithPrimaryPort, WithServiceLabelsMetadata: only an EndpointSliceDiscovery takes it")
	_, err = NewEndpointSliceDiscovery(fake.NewClientset(), WithPrimaryPort("Bad_Name"))
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), `WithPrimaryPort("Bad_Name")`)
}

// With WithServiceAnnotationsMetadata the Service source reads Services too: their annotations
// come last in metadata, "secured" marks endpoints secure, and a change to them republishes.
func TestEndpointSliceServiceAnnotations(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web", Annotations: map[string]string{
		"team": "storefront", "tier": "an annotation below the label", lastApplied: "{…}",
	}}}
	slice := newSlice("web-a", "web", httpPorts, endpointAt("10.0.0.1"))
	slice.Labels["tier"] = "front"
	client := fake.NewClientset(svc, slice)
	d, err := NewEndpointSliceDiscovery(client, WithNamespace(testNamespace),
		WithServiceLabelsMetadata(""), WithServiceAnnotationsMetadata(""), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.Start(context.Background()))
	got, err := d.GetService(context.Background(), "web")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "storefront", got[0].Metadata["team"])
	assert.Equal(t, "front", got[0].Metadata["tier"], "a label wins over an annotation")
	assert.NotContains(t, got[0].Metadata, lastApplied)
	assert.Equal(t, []string{"http://10.0.0.1:8080"}, got[0].Endpoints)

	svc.Annotations[ServiceLabelSecured] = "true"
	_, err = client.CoreV1().Services(testNamespace).Update(context.Background(), svc, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, _ := d.GetService(context.Background(), "web")
		return len(got) == 1 && got[0].Endpoints[0] == "http://10.0.0.1:8080?isSecure=true"
	}, 5*time.Second, 10*time.Millisecond, "the secured annotation marks the endpoints")

	_, err = New(fake.NewClientset(), WithServiceAnnotationsMetadata(""))
	require.ErrorIs(t, err, ErrInvalidOption)
}

func TestMarkedSecure(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1:80":                    "http://10.0.0.1:80?isSecure=true",
		"grpc://10.0.0.1:9000?a=b":              "grpc://10.0.0.1:9000?a=b&isSecure=true",
		"https://10.0.0.1:443?isSecure=true":    "https://10.0.0.1:443?isSecure=true",
		"http://10.0.0.1:80?x=1&isSecure=false": "http://10.0.0.1:80?x=1&isSecure=false",
		"http://10.0.0.1:80?":                   "http://10.0.0.1:80?isSecure=true",
	} {
		assert.Equal(t, want, markedSecure(in), in)
	}
}

// Regression: a Watch on a dotted name used to choose, once and for good, between the service of
// that name and the namespace form. A watcher started before the service had a ready pod (as a
// gRPC client starting before its servers) followed the wrong key and never woke. Now both keys
// are read at every Next, by GetService's rule: the exact name while it has instances.
func TestWatchOfADottedNameFollowsWhatItMeans(t *testing.T) {
	f := newFixture(t)
	all, err := New(f.client, WithNamespace(""), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer all.Close()
	require.NoError(t, all.Start(context.Background()))
	w, err := all.Watch(context.Background(), "greeter.v1")
	require.NoError(t, err)
	defer w.Stop()
	first, err := w.Next()
	require.NoError(t, err)
	assert.Empty(t, first)

	pod := newPod(registered("greeter.v1", `{"9000":"grpc"}`))
	pod.Name = "greeter-0"
	f.create(t, pod)
	got := receive(t, nextAsync(t, w))
	require.NoError(t, got.err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got.instances), "the service greeter.v1 came up")

	// One namespace: "web.shop" means service web until a service is called web.shop.
	web := newPod(registered("web", `{"8080":"http"}`))
	web.Name = "web-0"
	f.create(t, web)
	f.eventually(t, "web", 1)
	one := f.reg
	ws, err := one.Watch(context.Background(), "web."+testNamespace)
	require.NoError(t, err)
	defer ws.Stop()
	set, err := ws.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"http://10.0.0.1:8080"}, endpointsOf(set))
	exact := newPod(registered("web."+testNamespace, `{"9000":"grpc"}`))
	exact.Name, exact.Status.PodIPs[0].IP, exact.Status.PodIP = "webshop-0", "10.0.0.2", "10.0.0.2"
	f.create(t, exact)
	got = receive(t, nextAsync(t, ws))
	require.NoError(t, got.err)
	assert.Equal(t, []string{"grpc://10.0.0.2:9000"}, endpointsOf(got.instances), "the exact name wins once it has instances")
}
