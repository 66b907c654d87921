package kuberegistry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// startWith starts a registry with options over the given pods, closed with the test.
func startWith(t *testing.T, pods []*corev1.Pod, opts ...Option) (*Registry, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	for _, p := range pods {
		_, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	reg, err := New(client, append([]Option{WithLogger(discardLogger())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, reg.Start(ctx))
	return reg, client
}

// podOf is a ready pod of service at ip in namespace, registered with a grpc port.
func podOf(namespace, name, service, ip string, edit ...func(*podSpec)) *corev1.Pod {
	s := registered(service, `{"9000":"grpc"}`)
	s.name, s.ips = name, []string{ip}
	for _, e := range edit {
		e(&s)
	}
	p := newPod(s)
	p.Namespace = namespace
	p.UID = types.UID(namespace + "/" + name)
	return p
}

func TestQualifiedNameInOneNamespace(t *testing.T) {
	reg, _ := startWith(t, []*corev1.Pod{podOf(testNamespace, "cart-1", "cart", "10.0.0.1")}, WithNamespace(testNamespace))
	got, err := reg.GetService(context.Background(), "cart."+testNamespace)
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got))
	none, err := reg.GetService(context.Background(), "cart.elsewhere")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestServices(t *testing.T) {
	reg, _ := startWith(t, []*corev1.Pod{
		podOf(testNamespace, "b-1", "b", "10.0.0.1"),
		podOf(testNamespace, "a-1", "a", "10.0.0.2"),
		podOf(testNamespace, "c-1", "c", "10.0.0.3", func(s *podSpec) { s.notReady = true }),
	}, WithNamespace(testNamespace))
	names, err := reg.Services(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, names, "sorted, and only services with an instance")
}

func TestLabelSelector(t *testing.T) {
	_, err := New(fake.NewClientset(), WithLabelSelector("tier in (a,"))
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithLabelSelector")

	reg, _ := startWith(t, []*corev1.Pod{
		podOf(testNamespace, "canary", "cart", "10.0.0.1", func(s *podSpec) { s.labels["track"] = "canary" }),
		podOf(testNamespace, "stable", "cart", "10.0.0.2", func(s *podSpec) { s.labels["track"] = "stable" }),
	}, WithNamespace(testNamespace), WithLabelSelector("track!=canary"))
	got, err := reg.GetService(context.Background(), "cart")
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.0.2:9000"}, endpointsOf(got))
}

func TestReadinessPolicy(t *testing.T) {
	pods := []*corev1.Pod{
		podOf(testNamespace, "ready", "cart", "10.0.0.1"),
		podOf(testNamespace, "not-ready", "cart", "10.0.0.2", func(s *podSpec) { s.notReady = true }),
		podOf(testNamespace, "draining", "cart", "10.0.0.3", func(s *podSpec) { s.terminating = true }),
		podOf(testNamespace, "gone", "cart", "10.0.0.4", func(s *podSpec) { s.phase = corev1.PodSucceeded }),
		podOf(testNamespace, "last", "solo", "10.0.1.1", func(s *podSpec) { s.terminating = true }),
		podOf(testNamespace, "stopped", "solo", "10.0.1.2", func(s *podSpec) { s.terminating = true; s.notReady = true }),
	}
	t.Run("default: ready, else serving while terminating", func(t *testing.T) {
		reg, _ := startWith(t, pods, WithNamespace(testNamespace))
		got, _ := reg.GetService(context.Background(), "cart")
		assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(got))
		got, _ = reg.GetService(context.Background(), "solo")
		assert.Equal(t, []string{"grpc://10.0.1.1:9000"}, endpointsOf(got), "no ready pod: the terminating pod still ready serves")
	})
	t.Run("WithIncludeNotReady: every live pod", func(t *testing.T) {
		reg, _ := startWith(t, pods, WithNamespace(testNamespace), WithIncludeNotReady())
		got, _ := reg.GetService(context.Background(), "cart")
		assert.Equal(t, []string{"grpc://10.0.0.1:9000", "grpc://10.0.0.2:9000", "grpc://10.0.0.3:9000"}, endpointsOf(got))
	})
}

func TestMetadataEnrichment(t *testing.T) {
	pod := podOf(testNamespace, "cart-1", "cart", "10.0.0.1", func(s *podSpec) {
		s.labels["tier"] = "backend"
		s.annotations[AnnotationsKeyMetadata] = `{"tier":"registered wins"}`
		s.annotations["team"] = "checkout"
		s.ports = []corev1.ContainerPort{{Name: "grpc", ContainerPort: 9000}, {Name: "metrics", ContainerPort: 9090}, {ContainerPort: 7000}}
	})
	reg, _ := startWith(t, []*corev1.Pod{pod}, WithNamespace(testNamespace),
		WithPodLabelsMetadata(""), WithPodAnnotationsMetadata("annotation."), WithPortsMetadata(""))
	got, _ := reg.GetService(context.Background(), "cart")
	require.Len(t, got, 1)
	md := got[0].Metadata
	assert.Equal(t, "registered wins", md["tier"], "registered metadata is never overwritten")
	assert.Equal(t, "cart", md[LabelsKeyServiceName])
	assert.Equal(t, "checkout", md["annotation.team"])
	assert.Equal(t, "9000", md["port.grpc"])
	assert.Equal(t, "9090", md["port.metrics"])
	assert.NotContains(t, md, MetadataKeyNamespace, "one namespace: no namespace key")
}

func TestSecurePortsOption(t *testing.T) {
	_, err := New(fake.NewClientset(), WithSecurePorts(0))
	require.ErrorIs(t, err, ErrInvalidOption)
	pod := podOf(testNamespace, "cart-1", "cart", "10.0.0.1", func(s *podSpec) {
		s.annotations[AnnotationsKeyProtocolMap] = `{"443":"http","9443":"http"}`
	})
	reg, _ := startWith(t, []*corev1.Pod{pod}, WithNamespace(testNamespace), WithSecurePorts(9443))
	got, _ := reg.GetService(context.Background(), "cart")
	assert.Equal(t, []string{"http://10.0.0.1:443", "http://10.0.0.1:9443?isSecure=true"}, endpointsOf(got))
}

func TestSeveralNamespaces(t *testing.T) {
	_, err := New(fake.NewClientset(), WithNamespaces("a", "a"))
	require.ErrorIs(t, err, ErrInvalidOption)
	reg, client := startWith(t, []*corev1.Pod{
		podOf("east", "cart-1", "cart", "10.0.1.1"),
		podOf("west", "cart-1", "cart", "10.0.2.1"),
		podOf("north", "cart-1", "cart", "10.0.3.1"), // out of scope
	}, WithNamespaces("east", "west"))
	ctx := context.Background()
	all, err := reg.GetService(ctx, "cart")
	require.NoError(t, err)
	require.Equal(t, []string{"grpc://10.0.1.1:9000", "grpc://10.0.2.1:9000"}, endpointsOf(all))
	assert.Equal(t, "east", all[0].Metadata[MetadataKeyNamespace])
	assert.Equal(t, "west", all[1].Metadata[MetadataKeyNamespace])

	west, err := reg.GetService(ctx, "cart.west")
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.2.1:9000"}, endpointsOf(west))
	none, err := reg.GetService(ctx, "cart.north")
	require.NoError(t, err)
	assert.Empty(t, none, "a namespace out of scope")

	w, err := reg.Watch(ctx, "cart.east")
	require.NoError(t, err)
	defer w.Stop()
	got, err := w.Next()
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc://10.0.1.1:9000"}, endpointsOf(got))
	_, err = client.CoreV1().Pods("west").Create(ctx, podOf("west", "cart-2", "cart", "10.0.2.2"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, client.CoreV1().Pods("east").Delete(ctx, "cart-1", metav1.DeleteOptions{}))
	got, err = w.Next()
	require.NoError(t, err)
	assert.Empty(t, got, "the east watcher sees east only")
	require.Eventually(t, func() bool {
		west, _ := reg.GetService(ctx, "cart.west")
		return len(west) == 2
	}, 5*time.Second, time.Millisecond)
}

func TestWatchServices(t *testing.T) {
	reg, client := startWith(t, []*corev1.Pod{
		podOf(testNamespace, "cart-1", "cart", "10.0.0.1"),
		podOf(testNamespace, "shop-1", "shop", "10.0.1.1"),
	}, WithNamespace(testNamespace))
	ctx := context.Background()
	w, err := reg.WatchServices(ctx)
	require.NoError(t, err)
	catalog, err := w.Next()
	require.NoError(t, err)
	assert.Len(t, catalog, 2)

	// A pod replaced by another of the same name and content: the service's set is the same, but
	// the catalog reports the restart.
	pods := client.CoreV1().Pods(testNamespace)
	require.NoError(t, pods.Delete(ctx, "cart-1", metav1.DeleteOptions{}))
	restarted := podOf(testNamespace, "cart-1", "cart", "10.0.0.1")
	restarted.UID = "a-new-uid"
	_, err = pods.Create(ctx, restarted, metav1.CreateOptions{})
	require.NoError(t, err)
	for {
		catalog, err = w.Next()
		require.NoError(t, err)
		if len(catalog["cart"]) == 1 {
			break
		}
	}
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, endpointsOf(catalog["cart"]))

	next := make(chan error, 1)
	go func() {
		_, err := w.Next()
		next <- err
	}()
	require.NoError(t, w.Stop())
	select {
	case err := <-next:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Stop")
	}
	notStarted, err := New(fake.NewClientset())
	require.NoError(t, err)
	_, err = notStarted.WatchServices(ctx)
	require.ErrorIs(t, err, ErrNotStarted)
}
