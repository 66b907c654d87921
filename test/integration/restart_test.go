package integration

import (
	"fmt"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// 8. kube-apiserver restarts (same etcd) under open watchers: changes made while the informer
// reconnects, and after, reach every watcher; nothing leaks once the registry is closed.
func TestAPIServerRestart(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	readyPod(t, ns, "cart-0", "cart", "10.2.0.1")
	readyPod(t, ns, "cart-1", "cart", "10.2.0.2")
	before := goroutineBaseline(t)

	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var watchers []kuberegistry.Watcher
	for range 5 {
		w, err := reg.Watch(t.Context(), "cart")
		if err != nil {
			t.Fatal(err)
		}
		if got := endpoints(next(t, w)); got != "grpc://10.2.0.1:9000 grpc://10.2.0.2:9000" {
			t.Fatalf("before the restart: %q", got)
		}
		watchers = append(watchers, w)
	}

	restartAPIServer(t)
	// The informer's watch broke; these land while it reconnects.
	setPodStatus(t, ns, "cart-0", corev1.PodRunning, false, "10.2.0.1")
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "cart-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	readyPod(t, ns, "cart-2", "cart", "10.2.0.3")
	for i, w := range watchers {
		waitForSet(t, w, "grpc://10.2.0.3:9000", fmt.Sprintf("watcher %d after the restart", i))
	}
	// And after.
	setPodStatus(t, ns, "cart-0", corev1.PodRunning, true, "10.2.0.1")
	for i, w := range watchers {
		waitForSet(t, w, "grpc://10.2.0.1:9000 grpc://10.2.0.3:9000", fmt.Sprintf("watcher %d later", i))
	}

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	before.verifyNoLeaks(t)
}

// waitForSet reads a watcher until it returns the wanted set.
func waitForSet(t *testing.T, w kuberegistry.Watcher, want, what string) {
	t.Helper()
	for {
		got := endpoints(next(t, w))
		if got == want {
			return
		}
		t.Logf("%s: passing through %q", what, got)
	}
}
