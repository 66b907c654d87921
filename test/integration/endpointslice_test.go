package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// There is no EndpointSlice controller in the test control plane: the tests write the slices it
// would write for a Service, and the API server validates them as it would the controller's.

// sliceNamespace creates a namespace for a test whose EndpointSlices are deleted with it.
func sliceNamespace(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	cs := adminClient(t)
	// Runs before newNamespace's own clean-up, which knows only pods.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := cs.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Errorf("deleting the EndpointSlices of namespace %s: %v", ns, err)
		}
	})
	return ns
}

// startSliceDiscovery starts an EndpointSliceDiscovery of ns on client, closed with the test.
func startSliceDiscovery(t *testing.T, client kubernetes.Interface, ns string) *kuberegistry.EndpointSliceDiscovery {
	t.Helper()
	d, err := kuberegistry.NewEndpointSliceDiscovery(client, kuberegistry.WithNamespace(ns))
	if err != nil {
		t.Fatalf("NewEndpointSliceDiscovery: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return d
}

// serviceSlice is an EndpointSlice of service as the EndpointSlice controller writes it: one port,
// named http, at 8080.
func serviceSlice(ns, name, service string, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	portName, port, protocol := "http", int32(8080), corev1.ProtocolTCP
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      name,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: service,
				discoveryv1.LabelManagedBy:   "kuberegistry-integration-test",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &protocol}},
		Endpoints:   endpoints,
	}
}

// podEndpoint is the endpoint of a pod at ip with the given conditions.
func podEndpoint(pod, ip string, ready, serving, terminating bool) discoveryv1.Endpoint {
	zone, node := "zone-a", "node-1"
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod},
		Zone:       &zone,
		NodeName:   &node,
	}
}

// readyEndpoint is a pod that is ready.
func readyEndpoint(pod, ip string) discoveryv1.Endpoint {
	return podEndpoint(pod, ip, true, true, false)
}

// notReadyEndpoint is a pod whose readiness probe fails.
func notReadyEndpoint(pod, ip string) discoveryv1.Endpoint {
	return podEndpoint(pod, ip, false, false, false)
}

// servingTerminatingEndpoint is a pod being deleted that still passes its readiness probe.
func servingTerminatingEndpoint(pod, ip string) discoveryv1.Endpoint {
	return podEndpoint(pod, ip, false, true, true)
}

// goneTerminatingEndpoint is a pod being deleted that no longer serves.
func goneTerminatingEndpoint(pod, ip string) discoveryv1.Endpoint {
	return podEndpoint(pod, ip, false, false, true)
}

func createSlice(t *testing.T, s *discoveryv1.EndpointSlice) {
	t.Helper()
	if _, err := adminClient(t).DiscoveryV1().EndpointSlices(s.Namespace).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating EndpointSlice %s/%s: %v", s.Namespace, s.Name, err)
	}
}

// updateSlice replaces a slice's endpoints, as the EndpointSlice controller does.
func updateSlice(t *testing.T, ns, name string, endpoints ...discoveryv1.Endpoint) {
	t.Helper()
	slices := adminClient(t).DiscoveryV1().EndpointSlices(ns)
	s, err := slices.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting EndpointSlice %s/%s: %v", ns, name, err)
	}
	s.Endpoints = endpoints
	if _, err := slices.Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating EndpointSlice %s/%s: %v", ns, name, err)
	}
}

func deleteSlice(t *testing.T, ns, name string) {
	t.Helper()
	if err := adminClient(t).DiscoveryV1().EndpointSlices(ns).Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting EndpointSlice %s/%s: %v", ns, name, err)
	}
}

// ipOf numbers the test addresses: 10.20.<i/200>.<i%200+1>.
func ipOf(i int) string { return fmt.Sprintf("10.20.%d.%d", i/200, i%200+1) }

func readyRange(from, to int) []discoveryv1.Endpoint {
	var eps []discoveryv1.Endpoint
	for i := from; i < to; i++ {
		eps = append(eps, readyEndpoint(fmt.Sprintf("web-%03d", i), ipOf(i)))
	}
	return eps
}

// A Service of 150 endpoints spans two slices, as the EndpointSlice controller splits it at 100:
// discovery returns it whole, as soon as Start returns.
func TestEndpointSliceServiceSpanningTwoSlices(t *testing.T) {
	ns := sliceNamespace(t)
	createSlice(t, serviceSlice(ns, "web-abcde", "web", readyRange(0, 100)...))
	createSlice(t, serviceSlice(ns, "web-fghij", "web", readyRange(100, 150)...))
	// Neither another Service's slice nor a slice of no Service is part of it.
	createSlice(t, serviceSlice(ns, "api-abcde", "api", readyEndpoint("api-0", "10.30.0.1")))
	orphan := serviceSlice(ns, "orphan", "web", readyEndpoint("orphan-0", "10.30.0.2"))
	delete(orphan.Labels, discoveryv1.LabelServiceName)
	createSlice(t, orphan)

	d := startSliceDiscovery(t, adminClient(t), ns)
	got, err := d.GetService(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 {
		t.Fatalf("GetService returned %d instances right after Start, want 150", len(got))
	}
	seen := map[string]bool{}
	for _, in := range got {
		seen[in.ID] = true
		if in.Name != "web" || len(in.Endpoints) != 1 || in.Metadata[kuberegistry.MetadataKeyNamespace] != ns ||
			in.Metadata[kuberegistry.MetadataKeyZone] != "zone-a" || in.Metadata[kuberegistry.MetadataKeyNode] != "node-1" {
			t.Fatalf("unexpected instance %+v", in)
		}
	}
	for i := range 150 {
		if !seen[fmt.Sprintf("web-%03d", i)] {
			t.Fatalf("pod web-%03d is missing", i)
		}
	}
	if got, _ := d.GetService(t.Context(), "api"); endpoints(got) != "http://10.30.0.1:8080" {
		t.Fatalf("api = %q", endpoints(got))
	}

	// A slice added later joins the Service.
	createSlice(t, serviceSlice(ns, "web-klmno", "web", readyRange(150, 160)...))
	eventually(t, func() error {
		if got, _ := d.GetService(t.Context(), "web"); len(got) != 160 {
			return fmt.Errorf("web has %d instances, want 160", len(got))
		}
		return nil
	})
}

// Ready endpoints are served; a Service left with none falls back to those serving while
// terminating; not-ready ones, and terminating ones that no longer serve, never are.
func TestEndpointSliceConditions(t *testing.T) {
	ns := sliceNamespace(t)
	createSlice(t, serviceSlice(ns, "cart-a", "cart",
		readyEndpoint("cart-1", "10.40.0.1"),
		notReadyEndpoint("cart-2", "10.40.0.2"),
		servingTerminatingEndpoint("cart-3", "10.40.0.3"),
	))
	createSlice(t, serviceSlice(ns, "cart-b", "cart",
		readyEndpoint("cart-4", "10.40.0.4"),
		goneTerminatingEndpoint("cart-5", "10.40.0.5"),
	))
	d := startSliceDiscovery(t, adminClient(t), ns)
	waitFor(t, d, "cart", "http://10.40.0.1:8080", "http://10.40.0.4:8080")

	// The last ready pods go: the one still serving while it terminates takes over.
	updateSlice(t, ns, "cart-a", notReadyEndpoint("cart-1", "10.40.0.1"), notReadyEndpoint("cart-2", "10.40.0.2"),
		servingTerminatingEndpoint("cart-3", "10.40.0.3"))
	updateSlice(t, ns, "cart-b", goneTerminatingEndpoint("cart-4", "10.40.0.4"), goneTerminatingEndpoint("cart-5", "10.40.0.5"))
	waitFor(t, d, "cart", "http://10.40.0.3:8080")

	// A pod turns ready again: only it is served.
	updateSlice(t, ns, "cart-a", notReadyEndpoint("cart-1", "10.40.0.1"), readyEndpoint("cart-2", "10.40.0.2"),
		servingTerminatingEndpoint("cart-3", "10.40.0.3"))
	waitFor(t, d, "cart", "http://10.40.0.2:8080")

	// The same pod in two slices, as during a rewrite by the controller, is served once.
	createSlice(t, serviceSlice(ns, "cart-c", "cart", notReadyEndpoint("cart-2", "10.40.0.2")))
	updateSlice(t, ns, "cart-b", readyEndpoint("cart-2", "10.40.0.2"))
	got := waitFor(t, d, "cart", "http://10.40.0.2:8080")
	if len(got) != 1 || got[0].ID != "cart-2" {
		t.Fatalf("got %+v, want one instance, cart-2", got)
	}
}

// A watcher sees an endpoint turn not ready in an updated slice, then a slice deleted.
func TestEndpointSliceWatch(t *testing.T) {
	ns := sliceNamespace(t)
	createSlice(t, serviceSlice(ns, "cart-a", "cart", readyEndpoint("cart-1", "10.50.0.1"), readyEndpoint("cart-2", "10.50.0.2")))
	createSlice(t, serviceSlice(ns, "cart-b", "cart", readyEndpoint("cart-3", "10.50.0.3")))
	base := goroutineBaseline(t)
	func() {
		d := startSliceDiscovery(t, adminClient(t), ns)
		defer d.Close()
		w, err := d.Watch(t.Context(), "cart")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if got := endpoints(next(t, w)); got != "http://10.50.0.1:8080 http://10.50.0.2:8080 http://10.50.0.3:8080" {
			t.Fatalf("first Next = %q", got)
		}

		updateSlice(t, ns, "cart-a", readyEndpoint("cart-1", "10.50.0.1"), notReadyEndpoint("cart-2", "10.50.0.2"))
		if got := endpoints(next(t, w)); got != "http://10.50.0.1:8080 http://10.50.0.3:8080" {
			t.Fatalf("after cart-2 turned not ready, Next = %q", got)
		}

		deleteSlice(t, ns, "cart-b")
		if got := endpoints(next(t, w)); got != "http://10.50.0.1:8080" {
			t.Fatalf("after cart-b was deleted, Next = %q", got)
		}

		deleteSlice(t, ns, "cart-a")
		if got := next(t, w); len(got) != 0 {
			t.Fatalf("after every slice was deleted, Next = %q", endpoints(got))
		}

		// Close ends a blocked Next with an error matching context.Canceled.
		errs := make(chan error, 1)
		go func() {
			_, err := w.Next()
			errs <- err
		}()
		_ = d.Close()
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) || !errors.Is(err, kuberegistry.ErrClosed) {
				t.Fatalf("Next after Close = %v, want context.Canceled and ErrClosed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Next did not return after Close")
		}
	}()
	base.verifyNoLeaks(t)
}

// A dual-stack pod appears in an IPv4 and an IPv6 slice: it is one instance with both addresses.
func TestEndpointSliceDualStackPod(t *testing.T) {
	ns := sliceNamespace(t)
	createSlice(t, serviceSlice(ns, "cart-v4", "cart", readyEndpoint("cart-1", "10.60.0.1")))
	v6 := serviceSlice(ns, "cart-v6", "cart", readyEndpoint("cart-1", "fd00:60::1"))
	v6.AddressType = discoveryv1.AddressTypeIPv6
	createSlice(t, v6)
	d := startSliceDiscovery(t, adminClient(t), ns)
	got := waitFor(t, d, "cart", "http://10.60.0.1:8080", "http://[fd00:60::1]:8080")
	if len(got) != 1 || got[0].ID != "cart-1" {
		t.Fatalf("got %+v, want one instance, cart-1", got)
	}
}

// Without RBAC permission on EndpointSlices, Start fails at once with a *PermissionError that names
// the resource; with a Role that grants list and watch, discovery works.
func TestEndpointSlicePermissions(t *testing.T) {
	ns := sliceNamespace(t)
	createSlice(t, serviceSlice(ns, "cart-a", "cart", readyEndpoint("cart-1", "10.70.0.1")))
	user := userClient(t, "slice-reader")

	d, err := kuberegistry.NewEndpointSliceDiscovery(user, kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = d.Start(ctx)
	var perm *kuberegistry.PermissionError
	if !errors.As(err, &perm) || perm.Resource != "endpointslices.discovery.k8s.io" || perm.Namespace != ns {
		t.Fatalf("Start without permission = %v, want a *PermissionError on endpointslices.discovery.k8s.io in %s", err, ns)
	}
	if ctx.Err() != nil {
		t.Fatal("Start waited for its context instead of failing fast")
	}

	grant(t, ns, "slice-reader", &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "endpointslice-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{discoveryv1.GroupName},
			Resources: []string{"endpointslices"},
			Verbs:     []string{"list", "watch"},
		}},
	})
	eventually(t, func() error {
		_, err := user.DiscoveryV1().EndpointSlices(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})
	// A failed Start may be tried again.
	if err := d.Start(ctx); err != nil {
		t.Fatalf("Start with the Role: %v", err)
	}
	waitFor(t, d, "cart", "http://10.70.0.1:8080")
}
