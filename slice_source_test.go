package kuberegistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

func slicePtr[T any](v T) *T { return &v }

// slicePort is a port of a test slice; "" leaves the name or appProtocol unset.
func slicePort(name string, port int32, appProtocol string) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: &port}
	if name != "" {
		p.Name = &name
	}
	if appProtocol != "" {
		p.AppProtocol = &appProtocol
	}
	return p
}

// httpPorts is the port list of most test slices: 8080, named http.
var httpPorts = []discoveryv1.EndpointPort{slicePort("http", 8080, "")}

// endpointAt is a test endpoint at addr: ready (conditions unset), the endpoint of no pod,
// unless edits say otherwise.
func endpointAt(addr string, edits ...func(*discoveryv1.Endpoint)) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{addr}}
	for _, edit := range edits {
		edit(&ep)
	}
	return ep
}

// ofPod sets the endpoint's targetRef to a pod.
func ofPod(name string) func(*discoveryv1.Endpoint) {
	return func(ep *discoveryv1.Endpoint) { ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: name} }
}

// withConditions sets the endpoint's conditions; nil leaves one unset.
func withConditions(ready, serving, terminating *bool) func(*discoveryv1.Endpoint) {
	return func(ep *discoveryv1.Endpoint) {
		ep.Conditions = discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}
	}
}

// The conditions the EndpointSlice controller writes for a pod's life.
var (
	notReady              = withConditions(slicePtr(false), slicePtr(false), slicePtr(false))
	servingTerminating    = withConditions(slicePtr(false), slicePtr(true), slicePtr(true))
	notServingTerminating = withConditions(slicePtr(false), slicePtr(false), slicePtr(true))
)

// newSlice builds an IPv4 slice of service in testNamespace; "" leaves the service label unset.
func newSlice(name, service string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: testNamespace, Name: name, Labels: map[string]string{}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
	if service != "" {
		s.Labels[discoveryv1.LabelServiceName] = service
	}
	return s
}

func ipv6Slice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	s.AddressType = discoveryv1.AddressTypeIPv6
	return s
}

// summary renders instances as "ID endpoints… {metadata}" lines, for exact comparisons.
func summary(instances []*ServiceInstance) []string {
	out := []string{}
	for _, in := range instances {
		out = append(out, fmt.Sprintf("%s %s %v", in.ID, strings.Join(in.Endpoints, " "), in.Metadata))
	}
	return out
}

// ids renders instances as "ID endpoints…" lines.
func ids(instances []*ServiceInstance) []string {
	out := []string{}
	for _, in := range instances {
		out = append(out, in.ID+" "+strings.Join(in.Endpoints, " "))
	}
	return out
}

func TestSchemeOfSlicePort(t *testing.T) {
	tests := []struct {
		name, portName, appProtocol string
		want                        string // "" for no scheme
	}{
		{"IANA appProtocol", "", "http", "http"},
		{"appProtocol in capitals", "", "HTTPS", "https"},
		{"grpc", "", "grpc", "grpc"},
		{"kubernetes.io/h2c", "", "kubernetes.io/h2c", "h2c"},
		{"kubernetes.io/ws", "", "kubernetes.io/ws", "ws"},
		{"kubernetes.io/wss", "", "kubernetes.io/wss", "wss"},
		{"implementation-defined prefix", "", "example.com/thrift", "thrift"},
		{"appProtocol wins over the name", "http", "grpc", "grpc"},
		{"unusable appProtocol falls back to the name", "grpc", "example.com/my_proto", "grpc"},
		{"empty appProtocol falls back to the name", "grpc", "", "grpc"},
		{"name with a suffix", "http-metrics", "", "http"},
		{"name that is no protocol", "web", "", ""},
		{"unnamed port", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme, ok := portScheme(slicePort(tt.portName, 80, tt.appProtocol))
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, scheme)
		})
	}
}

func TestTranslateSlice(t *testing.T) {
	tests := []struct {
		name    string
		slice   *discoveryv1.EndpointSlice
		want    []string // "ID condition endpoints… {metadata}" per endpoint
		problem string   // a substring of the problem; "" for none
	}{
		{
			name: "pod endpoint with zone and node",
			slice: newSlice("cart-1", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("cart-0"), func(ep *discoveryv1.Endpoint) {
				ep.Zone, ep.NodeName = slicePtr("eu-1a"), slicePtr("node-3")
			})),
			want: []string{"cart-0 2 http://10.0.0.1:8080 map[kuberegistry.io/namespace:shop kuberegistry.io/node:node-3 kuberegistry.io/zone:eu-1a]"},
		},
		{
			name:  "no pod behind: the address is the ID",
			slice: newSlice("cart-1", "cart", httpPorts, endpointAt("10.0.0.1", func(ep *discoveryv1.Endpoint) { ep.TargetRef = &corev1.ObjectReference{Kind: "Node", Name: "n"} })),
			want:  []string{"10.0.0.1 2 http://10.0.0.1:8080 map[kuberegistry.io/namespace:shop]"},
		},
		{
			name:  "IPv6 in brackets, canonical",
			slice: ipv6Slice(newSlice("cart-1", "cart", httpPorts, endpointAt("fd00:0::1"))),
			want:  []string{"fd00::1 2 http://[fd00::1]:8080 map[kuberegistry.io/namespace:shop]"},
		},
		{
			name: "every usable port, secure ones marked, sorted",
			slice: newSlice("cart-1", "cart", []discoveryv1.EndpointPort{
				slicePort("grpc", 9000, ""),
				slicePort("", 8443, "https"),
				slicePort("tls-db", 5432, ""),
				slicePort("", 81, ""),               // unnamed: no scheme
				slicePort("metrics", 9090, ""),      // no protocol name
				{Name: slicePtr("http")},            // no port number
				slicePort("http-alt", 70000, "tcp"), // out of range
			}, endpointAt("10.0.0.1")),
			want: []string{"10.0.0.1 2 grpc://10.0.0.1:9000 https://10.0.0.1:8443?isSecure=true tls://10.0.0.1:5432?isSecure=true map[kuberegistry.io/namespace:shop]"},
		},
		{
			name:  "only the first address",
			slice: newSlice("cart-1", "cart", httpPorts, endpointAt("10.0.0.1", func(ep *discoveryv1.Endpoint) { ep.Addresses = append(ep.Addresses, "10.0.0.2") })),
			want:  []string{"10.0.0.1 2 http://10.0.0.1:8080 map[kuberegistry.io/namespace:shop]"},
		},
		{
			name: "conditions, with the API's defaults",
			slice: newSlice("cart-1", "cart", httpPorts,
				endpointAt("10.0.0.1"), // all unset: ready
				endpointAt("10.0.0.2", notReady),
				endpointAt("10.0.0.3", servingTerminating),
				endpointAt("10.0.0.4", notServingTerminating),
				endpointAt("10.0.0.5", withConditions(slicePtr(false), nil, slicePtr(true))), // serving unset: true
				endpointAt("10.0.0.6", withConditions(slicePtr(true), nil, slicePtr(true))),  // ready wins
				endpointAt("10.0.0.7", withConditions(slicePtr(false), slicePtr(true), nil)), // serving, not terminating
			),
			want: []string{
				"10.0.0.1 2 http://10.0.0.1:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.2 0 http://10.0.0.2:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.3 1 http://10.0.0.3:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.4 0 http://10.0.0.4:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.5 1 http://10.0.0.5:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.6 2 http://10.0.0.6:8080 map[kuberegistry.io/namespace:shop]",
				"10.0.0.7 0 http://10.0.0.7:8080 map[kuberegistry.io/namespace:shop]",
			},
		},
		{
			name: "malformed endpoints are skipped, the others kept",
			slice: newSlice("cart-1", "cart", httpPorts,
				endpointAt("not-an-ip"),
				endpointAt("fd00::1"),
				endpointAt("fe80::1%eth0"),
				endpointAt("10.0.0.1"),
				discoveryv1.Endpoint{},
			),
			want:    []string{"10.0.0.1 2 http://10.0.0.1:8080 map[kuberegistry.io/namespace:shop]"},
			problem: `endpoints[0] has address "not-an-ip", which is not an IPv4 address (and 3 more endpoints skipped)`,
		},
		{
			name:    "no usable port",
			slice:   newSlice("cart-1", "cart", []discoveryv1.EndpointPort{slicePort("", 80, ""), slicePort("", 81, "")}, endpointAt("10.0.0.1")),
			problem: "no port gives an endpoint: none has a number and an appProtocol or a name",
		},
		{
			name:  "the only port, of no known protocol, is served as tcp",
			slice: newSlice("cart-1", "cart", []discoveryv1.EndpointPort{slicePort("", 5432, "")}, endpointAt("10.0.0.1")),
			want:  []string{"10.0.0.1 2 tcp://10.0.0.1:5432 map[kuberegistry.io/namespace:shop]"},
		},
		{
			name:  "no port and no endpoint: nothing to say",
			slice: newSlice("cart-1", "cart", nil),
		},
		{
			name: "FQDN",
			slice: func() *discoveryv1.EndpointSlice {
				s := newSlice("cart-1", "cart", httpPorts, endpointAt("cart.example.com"))
				s.AddressType = discoveryv1.AddressTypeFQDN
				return s
			}(),
			problem: `addressType "FQDN" is not supported`,
		},
		{
			name:  "a slice of no Service",
			slice: newSlice("cart-1", "", httpPorts, endpointAt("10.0.0.1")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			si := translateSlice(tt.slice)
			got := []string{}
			for _, ep := range si.endpoints {
				in := ep.instance
				got = append(got, fmt.Sprintf("%s %d %s %v", in.ID, ep.condition, strings.Join(in.Endpoints, " "), in.Metadata))
				assert.Equal(t, tt.slice.Labels[discoveryv1.LabelServiceName], in.Name)
				assert.Empty(t, in.Version)
			}
			if tt.want == nil {
				tt.want = []string{}
			}
			assert.Equal(t, tt.want, got)
			if tt.problem == "" {
				assert.Empty(t, si.problem)
			} else {
				assert.Contains(t, si.problem, tt.problem)
			}
		})
	}
}

func TestTranslateSliceNeverPanics(t *testing.T) {
	s := newSlice("cart-1", "cart", []discoveryv1.EndpointPort{{}, {Name: slicePtr("")}, {AppProtocol: slicePtr("")}},
		discoveryv1.Endpoint{Addresses: []string{""}}, discoveryv1.Endpoint{Addresses: nil})
	assert.NotPanics(t, func() { translateSlice(s) })
	s.AddressType = ""
	assert.NotPanics(t, func() { translateSlice(s) })
	assert.Contains(t, translateSlice(s).problem, "addressType")
}

// entriesOf translates slices as the informer's transform does.
func entriesOf(t *testing.T, slices ...*discoveryv1.EndpointSlice) []*sliceEntry {
	t.Helper()
	out := make([]*sliceEntry, 0, len(slices))
	for _, s := range slices {
		e, err := toSliceEntry(s)
		require.NoError(t, err)
		out = append(out, e.(*sliceEntry))
	}
	return out
}

func TestAggregateSlices(t *testing.T) {
	v6 := func(name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return ipv6Slice(newSlice(name, "cart", httpPorts, eps...))
	}
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   []string // "ID endpoints…"
	}{
		{
			name: "all slices of a Service",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2"))),
				newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"))),
			},
			want: []string{"p1 http://10.0.0.1:8080", "p2 http://10.0.0.2:8080", "p3 http://10.0.0.3:8080"},
		},
		{
			name: "only ready endpoints while there is one",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"), notReady), endpointAt("10.0.0.2", ofPod("p2"), servingTerminating)),
				newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"))),
			},
			want: []string{"p3 http://10.0.0.3:8080"},
		},
		{
			name: "no ready endpoint: those serving while terminating",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"), notReady), endpointAt("10.0.0.2", ofPod("p2"), servingTerminating)),
				newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"), notServingTerminating), endpointAt("10.0.0.4", ofPod("p4"), servingTerminating)),
			},
			want: []string{"p2 http://10.0.0.2:8080", "p4 http://10.0.0.4:8080"},
		},
		{
			name: "nothing serving",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", notReady), endpointAt("10.0.0.3", notServingTerminating)),
			},
			want: []string{},
		},
		{
			name: "an endpoint in two slices during a rewrite: once, from the ready copy",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"), notReady), endpointAt("10.0.0.2", ofPod("p2"))),
				newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2"))),
			},
			want: []string{"p1 http://10.0.0.1:8080", "p2 http://10.0.0.2:8080"},
		},
		{
			name: "an address without a pod in two slices: once",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")),
				newSlice("cart-b", "cart", []discoveryv1.EndpointPort{slicePort("grpc", 9000, "")}, endpointAt("10.0.0.1")),
			},
			want: []string{"10.0.0.1 grpc://10.0.0.1:9000 http://10.0.0.1:8080"},
		},
		{
			name: "an address claimed by two pods: served once, by the first slice",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("new"))),
				newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("old"))),
			},
			want: []string{"old http://10.0.0.1:8080"},
		},
		{
			name: "a dual-stack pod is one instance",
			slices: []*discoveryv1.EndpointSlice{
				newSlice("cart-v4", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"))),
				v6("cart-v6", endpointAt("fd00::1", ofPod("p1")), endpointAt("fd00::2", ofPod("p2"), notReady)),
			},
			want: []string{"p1 http://10.0.0.1:8080 http://[fd00::1]:8080"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := entriesOf(t, tt.slices...)
			before := summary(entryInstances(entries))
			got := aggregateSlices(entries, false)
			assert.Equal(t, tt.want, ids(got))
			assert.ElementsMatch(t, before, summary(entryInstances(entries)), "the entries' instances are not changed")
			for _, in := range got {
				assert.Equal(t, "cart", in.Name)
			}
		})
	}
}

func entryInstances(entries []*sliceEntry) []*ServiceInstance {
	var out []*ServiceInstance
	for _, e := range entries {
		for _, ep := range e.endpoints {
			out = append(out, ep.instance)
		}
	}
	return out
}

func TestAggregateSlicesIsStableWhateverTheOrder(t *testing.T) {
	a := newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("old")), endpointAt("10.0.0.2"))
	b := newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("new")), endpointAt("10.0.0.3"))
	want := aggregateSlices(entriesOf(t, a, b), false)
	assert.Equal(t, summary(want), summary(aggregateSlices(entriesOf(t, b, a), false)))
}

// sliceFixture is a started EndpointSliceDiscovery over testNamespace on a fake clientset.
type sliceFixture struct {
	client *fake.Clientset
	d      *EndpointSliceDiscovery
	logs   *logBuffer
}

// newSliceFixture creates the slices, then starts a discovery over them; everything ends with the test.
func newSliceFixture(t *testing.T, opts []Option, slices ...*discoveryv1.EndpointSlice) *sliceFixture {
	t.Helper()
	client := fake.NewClientset()
	for _, s := range slices {
		_, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	logs := &logBuffer{}
	opts = append([]Option{WithNamespace(testNamespace), WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	d, err := NewEndpointSliceDiscovery(client, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Start(ctx))
	return &sliceFixture{client: client, d: d, logs: logs}
}

func (f *sliceFixture) create(t *testing.T, s *discoveryv1.EndpointSlice) {
	t.Helper()
	_, err := f.client.DiscoveryV1().EndpointSlices(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (f *sliceFixture) update(t *testing.T, s *discoveryv1.EndpointSlice) {
	t.Helper()
	_, err := f.client.DiscoveryV1().EndpointSlices(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func (f *sliceFixture) delete(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, f.client.DiscoveryV1().EndpointSlices(testNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}))
}

// eventually waits until GetService(name) returns the wanted "ID endpoints…" lines.
func (f *sliceFixture) eventually(t *testing.T, name string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	var got []string
	require.Eventually(t, func() bool {
		in, err := f.d.GetService(context.Background(), name)
		got = ids(in)
		return err == nil && fmt.Sprint(got) == fmt.Sprint(want)
	}, 10*time.Second, time.Millisecond, "service %s never was %q (last: %q)", name, want, got)
}

// manyEndpoints returns n ready pod endpoints from 10.1.<i/250>.<i%250+1>.
func manyEndpoints(from, n int) []discoveryv1.Endpoint {
	eps := make([]discoveryv1.Endpoint, 0, n)
	for i := from; i < from+n; i++ {
		eps = append(eps, endpointAt(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), ofPod(fmt.Sprintf("web-%03d", i))))
	}
	return eps
}

func TestEndpointSliceDiscoveryAggregatesAService(t *testing.T) {
	f := newSliceFixture(t, nil,
		newSlice("web-a", "web", httpPorts, manyEndpoints(0, 100)...),
		newSlice("web-b", "web", httpPorts, manyEndpoints(100, 50)...),
		newSlice("api-a", "api", httpPorts, endpointAt("10.2.0.1")),
		newSlice("orphan", "", httpPorts, endpointAt("10.3.0.1")),
	)
	got, err := f.d.GetService(context.Background(), "web")
	require.NoError(t, err, "Start returned: every service is published")
	require.Len(t, got, 150)
	seen := map[string]bool{}
	for _, in := range got {
		require.Len(t, in.Endpoints, 1)
		seen[in.ID] = true
		assert.Equal(t, testNamespace, in.Metadata[MetadataKeyNamespace])
	}
	assert.Len(t, seen, 150)
	again, _ := f.d.GetService(context.Background(), "web")
	assert.Same(t, &got[0], &again[0], "a prebuilt snapshot")

	got, err = f.d.GetService(context.Background(), "api")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.2.0.1 http://10.2.0.1:8080"}, ids(got))
	got, err = f.d.GetService(context.Background(), "nobody")
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = f.d.GetService(context.Background(), "Bad Name")
	require.ErrorIs(t, err, ErrInvalidName)
}

func TestEndpointSliceDiscoveryFollowsConditions(t *testing.T) {
	f := newSliceFixture(t, nil, newSlice("cart-a", "cart", httpPorts,
		endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2"))))
	f.eventually(t, "cart", "p1 http://10.0.0.1:8080", "p2 http://10.0.0.2:8080")

	// A rollout's end: one pod terminates (still serving), the other is gone.
	f.update(t, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"), servingTerminating)))
	f.eventually(t, "cart", "p1 http://10.0.0.1:8080")

	// A new pod is ready: the terminating one is no longer served.
	f.create(t, newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"))))
	f.eventually(t, "cart", "p3 http://10.0.0.3:8080")

	f.update(t, newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"), notReady)))
	f.eventually(t, "cart", "p1 http://10.0.0.1:8080")
	f.update(t, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1"), notServingTerminating)))
	f.eventually(t, "cart")
}

func TestEndpointSliceMovingServicesRefreshesBoth(t *testing.T) {
	f := newSliceFixture(t, nil,
		newSlice("s1", "blue", httpPorts, endpointAt("10.0.0.1")),
		newSlice("s2", "blue", httpPorts, endpointAt("10.0.0.2")))
	f.eventually(t, "blue", "10.0.0.1 http://10.0.0.1:8080", "10.0.0.2 http://10.0.0.2:8080")
	f.update(t, newSlice("s2", "green", httpPorts, endpointAt("10.0.0.2")))
	f.eventually(t, "blue", "10.0.0.1 http://10.0.0.1:8080")
	f.eventually(t, "green", "10.0.0.2 http://10.0.0.2:8080")
	// Losing the label leaves every Service.
	f.update(t, newSlice("s1", "", httpPorts, endpointAt("10.0.0.1")))
	f.eventually(t, "blue")
}

func TestEndpointSliceWatch(t *testing.T) {
	f := newSliceFixture(t, nil,
		newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2"))))
	w, err := f.d.Watch(context.Background(), "cart")
	require.NoError(t, err)
	defer w.Stop()
	got, err := w.Next()
	require.NoError(t, err, "the first Next returns at once")
	assert.Equal(t, []string{"p1 http://10.0.0.1:8080", "p2 http://10.0.0.2:8080"}, ids(got))

	next := nextAsync(t, w)
	// Neither another Service, nor a change discovery ignores, nor a not-ready endpoint changes the set.
	f.create(t, newSlice("other", "other", httpPorts, endpointAt("10.9.0.1")))
	relabelled := newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2")))
	relabelled.Labels["team"] = "checkout"
	f.update(t, relabelled)
	f.create(t, newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.3", ofPod("p3"), notReady)))
	f.update(t, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")), endpointAt("10.0.0.2", ofPod("p2"), notReady)))
	r := receive(t, next)
	require.NoError(t, r.err)
	assert.Equal(t, []string{"p1 http://10.0.0.1:8080"}, ids(r.instances))

	f.delete(t, "cart-a")
	got, err = w.Next()
	require.NoError(t, err)
	assert.Empty(t, got)

	empty, err := f.d.Watch(context.Background(), "nobody")
	require.NoError(t, err)
	defer empty.Stop()
	got, err = empty.Next()
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestEndpointSliceLifecycle(t *testing.T) {
	client := fake.NewClientset(newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")))
	d, err := NewEndpointSliceDiscovery(client, WithNamespace(testNamespace), WithLogger(discardLogger()))
	require.NoError(t, err)
	_, err = d.GetService(context.Background(), "cart")
	require.ErrorIs(t, err, ErrNotStarted)
	_, err = d.Watch(context.Background(), "cart")
	require.ErrorIs(t, err, ErrNotStarted)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Start(ctx))
	require.ErrorIs(t, d.Start(ctx), ErrAlreadyStarted)
	_, err = d.Watch(context.Background(), "")
	require.ErrorIs(t, err, ErrInvalidName)

	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	_, err = d.GetService(context.Background(), "cart")
	require.ErrorIs(t, err, ErrClosed)
	_, err = d.Watch(context.Background(), "cart")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, d.Start(ctx), ErrClosed)
}

func TestNewEndpointSliceDiscoveryRejectsBadInput(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"bad namespace", []Option{WithNamespace("Shop_1")}, `WithNamespace("Shop_1")`},
		{"nil logger", []Option{WithLogger(nil)}, "WithLogger(nil)"},
		{"nil option", []Option{nil}, "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEndpointSliceDiscovery(client, tt.opts...)
			require.ErrorIs(t, err, ErrInvalidOption)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := NewEndpointSliceDiscovery(nil)
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), "client is nil")
}

func TestEndpointSliceDefaultNamespace(t *testing.T) {
	env := func(namespace string) environment {
		return environment{
			getenv: func(k string) string {
				if k == "POD_NAMESPACE" {
					return namespace
				}
				return ""
			},
			readFile: func(string) ([]byte, error) { return nil, errors.New("no such file") },
		}
	}
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"in a pod", []Option{withEnvironment(env("shop"))}, "shop"},
		{"outside a pod", []Option{withEnvironment(env(""))}, "default"},
		{"set", []Option{withEnvironment(env("shop")), WithNamespace("billing")}, "billing"},
		{"all namespaces", []Option{withEnvironment(env("shop")), WithNamespace("")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewEndpointSliceDiscovery(fake.NewClientset(), tt.opts...)
			require.NoError(t, err)
			defer d.Close()
			assert.Equal(t, []string{tt.want}, d.namespaces)
			assert.Equal(t, []string{tt.want}, d.life.namespaces, "the scope names are resolved in")
		})
	}
}

func TestEndpointSliceAllNamespaces(t *testing.T) {
	inNamespace := func(ns string, s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		s.Namespace = ns
		return s
	}
	f := newSliceFixture(t, []Option{WithNamespace("")},
		inNamespace("east", newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1", ofPod("p1")))),
		inNamespace("west", newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.2", ofPod("p1")), endpointAt("10.0.0.3", servingTerminating))),
		inNamespace("west", newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.4", notReady))),
	)
	f.eventually(t, "cart", "p1 http://10.0.0.1:8080", "p1 http://10.0.0.2:8080")
	f.eventually(t, "cart.east", "p1 http://10.0.0.1:8080")
	f.eventually(t, "cart.west", "p1 http://10.0.0.2:8080")
	got, _ := f.d.GetService(context.Background(), "cart.east")
	assert.Equal(t, "east", got[0].Metadata[MetadataKeyNamespace])

	// Each namespace's Service falls back on its own.
	f.update(t, inNamespace("west", newSlice("cart-a", "cart", httpPorts,
		endpointAt("10.0.0.2", ofPod("p1"), notReady), endpointAt("10.0.0.3", servingTerminating))))
	f.eventually(t, "cart.west", "10.0.0.3 http://10.0.0.3:8080")
	f.eventually(t, "cart", "p1 http://10.0.0.1:8080", "10.0.0.3 http://10.0.0.3:8080")

	require.NoError(t, f.client.DiscoveryV1().EndpointSlices("east").Delete(context.Background(), "cart-a", metav1.DeleteOptions{}))
	f.eventually(t, "cart.east")
	f.eventually(t, "cart", "10.0.0.3 http://10.0.0.3:8080")
}

func TestEndpointSliceProblemsAreLoggedOncePerSlice(t *testing.T) {
	fqdn := newSlice("cart-fqdn", "cart", httpPorts, endpointAt("cart.example.com"))
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	f := newSliceFixture(t, nil, fqdn, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")))
	f.eventually(t, "cart", "10.0.0.1 http://10.0.0.1:8080")
	for i := range 3 {
		fqdn.Labels["churn"] = strings.Repeat("x", i+1)
		f.update(t, fqdn)
	}
	// An update after the FQDN slice's proves the handler has seen them.
	f.update(t, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.2")))
	f.eventually(t, "cart", "10.0.0.2 http://10.0.0.2:8080")
	assert.Equal(t, 1, strings.Count(f.logs.String(), "endpointslice=cart-fqdn"), f.logs.String())
	assert.Contains(t, f.logs.String(), "FQDN")
	assert.NotContains(t, f.logs.String(), "endpointslice=cart-a")
}

func TestEndpointSliceStartFailsFastWhenForbidden(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, "", errors.New("RBAC: access denied"))
	})
	d, err := NewEndpointSliceDiscovery(client, WithNamespace(testNamespace), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = d.Start(ctx)
	var perm *PermissionError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, "list", perm.Verb)
	assert.Equal(t, "endpointslices.discovery.k8s.io", perm.Resource)
	assert.Contains(t, err.Error(), `namespace "shop"`)
	require.NoError(t, ctx.Err(), "Start did not wait for its context")
}

func TestEndpointSliceStartMayBeRetried(t *testing.T) {
	client := fake.NewClientset(newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")))
	var down atomic.Bool
	down.Store(true)
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	d, err := NewEndpointSliceDiscovery(client, WithNamespace(testNamespace), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = d.Start(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "connection refused")
	_, err = d.GetService(context.Background(), "cart")
	require.ErrorIs(t, err, ErrNotStarted)

	down.Store(false)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Start(ctx))
	got, err := d.GetService(context.Background(), "cart")
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

// TestEndpointSliceHandlerTakesTombstones feeds the handler a deleted-object tombstone, as the
// informer does when it missed a delete during a watch outage, and objects it does not know.
func TestEndpointSliceHandlerTakesTombstones(t *testing.T) {
	f := newSliceFixture(t, nil,
		newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")),
		newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.2")))
	f.eventually(t, "cart", "10.0.0.1 http://10.0.0.1:8080", "10.0.0.2 http://10.0.0.2:8080")
	indexer := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, cache.Indexers{serviceIndex: indexSliceByService})
	h := newSliceEvents(f.d, []cache.Indexer{indexer})
	h.flush() // as Start does once the initial list is in
	entries := entriesOf(t, newSlice("cart-a", "cart", httpPorts, endpointAt("10.0.0.1")), newSlice("cart-b", "cart", httpPorts, endpointAt("10.0.0.2")))
	require.NoError(t, indexer.Add(entries[0]))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/cart-b", Obj: entries[1]})
	assert.Equal(t, []string{"10.0.0.1 http://10.0.0.1:8080"}, ids(f.d.catalog.instances("cart")))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "shop/x", Obj: "not an entry"})
	h.OnDelete(nil)
	h.OnAdd("not an entry", false)
	h.OnUpdate(nil, entries[0])
}
