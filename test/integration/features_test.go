package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The discovery features of issue 6, each against the real API server.

func TestServicesList(t *testing.T) {
	ns := newNamespace(t)
	readyPod(t, ns, "b-0", "b", "10.3.0.1")
	readyPod(t, ns, "a-0", "a", "10.3.0.2")
	createPod(t, ns, "c-0", registeredLabels("c", "c-0"), grpcProtocols())
	setPodStatus(t, ns, "c-0", corev1.PodRunning, false, "10.3.0.3")
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
	waitFor(t, reg, "b", "grpc://10.3.0.1:9000")
	names, err := reg.Services(t.Context())
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("Services = %v, %v; want [a b]", names, err)
	}
}

// Several namespaces with only a Role in each: one informer per namespace needs nothing more.
func TestSeveralNamespacesWithNamespacedRoles(t *testing.T) {
	east, west := newNamespace(t), newNamespace(t)
	readyPod(t, east, "cart-0", "cart", "10.3.1.1")
	readyPod(t, west, "cart-0", "cart", "10.3.2.1")
	for _, ns := range []string{east, west} {
		grant(t, ns, "multi", exampleRole(t, "discovery"))
	}
	user := userClient(t, "multi")
	eventually(t, func() error {
		_, err := user.CoreV1().Pods(west).List(t.Context(), metav1.ListOptions{})
		return err
	})
	reg := startRegistry(t, user, kuberegistry.WithNamespaces(east, west))
	all := waitFor(t, reg, "cart", "grpc://10.3.1.1:9000", "grpc://10.3.2.1:9000")
	for _, in := range all {
		if ns := in.Metadata[kuberegistry.MetadataKeyNamespace]; ns != east && ns != west {
			t.Errorf("instance %v carries namespace %q", in.Endpoints, ns)
		}
	}
	waitFor(t, reg, "cart."+west, "grpc://10.3.2.1:9000")
	w, err := reg.Watch(t.Context(), "cart."+east)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := endpoints(next(t, w)); got != "grpc://10.3.1.1:9000" {
		t.Fatalf("east watcher saw %q", got)
	}
	setPodStatus(t, west, "cart-0", corev1.PodRunning, false, "10.3.2.1") // west only: east sees nothing
	setPodStatus(t, east, "cart-0", corev1.PodRunning, false, "10.3.1.1")
	if got := endpoints(next(t, w)); got != "" {
		t.Fatalf("east watcher saw %q after its pod turned not ready", got)
	}
}

func TestLabelSelectorFilter(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	for i, track := range []string{"stable", "canary"} {
		labels := registeredLabels("cart", track)
		labels["track"] = track
		createPod(t, ns, track, labels, grpcProtocols())
		setPodStatus(t, ns, track, corev1.PodRunning, true, fmt.Sprintf("10.3.3.%d", i+1))
	}
	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns), kuberegistry.WithLabelSelector("track notin (canary)"))
	waitFor(t, reg, "cart", "grpc://10.3.3.1:9000")
}

func TestTerminatingFallbackAndIncludeNotReady(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	pod := createPod(t, ns, "last", registeredLabels("solo", "last"), grpcProtocols())
	pod.Finalizers = []string{"kuberegistry.io/test"}
	if _, err := client.CoreV1().Pods(ns).Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeFinalizers(t, client, ns, "last") })
	setPodStatus(t, ns, "last", corev1.PodRunning, true, "10.3.4.1")
	createPod(t, ns, "warming", registeredLabels("solo", "warming"), grpcProtocols())
	setPodStatus(t, ns, "warming", corev1.PodRunning, false, "10.3.4.2")

	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns))
	all := startRegistry(t, client, kuberegistry.WithNamespace(ns), kuberegistry.WithIncludeNotReady())
	waitFor(t, all, "solo", "grpc://10.3.4.1:9000", "grpc://10.3.4.2:9000")
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "last", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// No ready pod is left: the terminating pod that is still ready serves out its grace period.
	waitFor(t, reg, "solo", "grpc://10.3.4.1:9000")
	// The moment another pod is ready, the terminating one is dropped.
	setPodStatus(t, ns, "warming", corev1.PodRunning, true, "10.3.4.2")
	waitFor(t, reg, "solo", "grpc://10.3.4.2:9000")
}

func TestMetadataEnrichmentAndSecureEndpoints(t *testing.T) {
	ns := newNamespace(t)
	labels := registeredLabels("cart", "cart-0")
	labels["tier"] = "backend"
	annotations := map[string]string{
		kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc","8443":"http","7443":"http"}`,
		kuberegistry.AnnotationsKeyMetadata:    `{"tier":"registered"}`,
		"team":                                 "checkout",
	}
	createPod(t, ns, "cart-0", labels, annotations,
		corev1.ContainerPort{Name: "grpc", ContainerPort: 9000}, corev1.ContainerPort{Name: "https-admin", ContainerPort: 7443})
	setPodStatus(t, ns, "cart-0", corev1.PodRunning, true, "10.3.5.1")
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns),
		kuberegistry.WithPodLabelsMetadata("label."), kuberegistry.WithPodAnnotationsMetadata("annotation."), kuberegistry.WithPortsMetadata(""))
	got := waitFor(t, reg, "cart", "grpc://10.3.5.1:9000", "http://10.3.5.1:8443?isSecure=true", "http://10.3.5.1:7443?isSecure=true")[0]
	want := map[string]string{"tier": "registered", "label.tier": "backend", "annotation.team": "checkout", "port.grpc": "9000", "port.https-admin": "7443"}
	for k, v := range want {
		if got.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, got.Metadata[k], v, got.Metadata)
		}
	}
}

// The catalog watch reports a pod that restarted under the same name, as a StatefulSet's does.
func TestWatchServicesSeesRestartUnderTheSameName(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	readyPod(t, ns, "db-0", "db", "10.3.6.1")
	readyPod(t, ns, "web-0", "web", "10.3.6.2")
	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns))
	// The informer lists from the API server's watch cache, which may not have the pods' last
	// status write yet: wait until both are served.
	waitFor(t, reg, "db", "grpc://10.3.6.1:9000")
	waitFor(t, reg, "web", "grpc://10.3.6.2:9000")
	w, err := reg.WatchServices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	first := nextCatalog(t, w)
	if len(first) != 2 {
		t.Fatalf("catalog = %v, want db and web", first)
	}
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "db-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	readyPod(t, ns, "db-0", "db", "10.3.6.1") // same name, same address, new pod
	// Every change reaches the watcher, coalesced; it ends on the restarted pod.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := nextCatalog(t, w)
		if endpoints(got["db"]) == "grpc://10.3.6.1:9000" && len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog never came back whole: %v", got)
		}
	}
}

// nextCatalog calls ServicesWatcher.Next with a deadline.
func nextCatalog(t *testing.T, w kuberegistry.ServicesWatcher) map[string][]*kuberegistry.ServiceInstance {
	t.Helper()
	return within(t, w.Next, w.Stop)
}
