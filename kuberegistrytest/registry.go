package kuberegistrytest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// NewRegistry returns a started registry that runs in pod namespace/name, closed at cleanup: its
// Register and Deregister patch that pod, and it discovers the pods of namespace unless opts say
// otherwise. The pod is created, running and Ready but not registered, when client does not hold
// it yet. The registry logs to tb.
//
// It returns once the registry's cache is synced and its watch is established, so every write
// made through client afterwards, deletes included, reaches the registry (see the package
// documentation for why that needs waiting for).
func NewRegistry(tb testing.TB, client *fake.Clientset, namespace, name string, opts ...kuberegistry.Option) *kuberegistry.Registry {
	tb.Helper()
	ensurePod(tb, client, namespace, name)
	watching := notifyOnRegistryWatch(client)

	opts = append([]kuberegistry.Option{
		kuberegistry.WithPod(namespace, name),
		kuberegistry.WithLogger(slog.New(slog.NewTextHandler(tbWriter{tb}, nil))),
	}, opts...)
	reg, err := kuberegistry.New(client, opts...)
	if err != nil {
		tb.Fatalf("kuberegistrytest: %v", err)
	}
	tb.Cleanup(func() { _ = reg.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		tb.Fatalf("kuberegistrytest: starting the registry of pod %s/%s: %v", namespace, name, err)
	}
	select {
	case <-watching:
	case <-ctx.Done():
		tb.Fatalf("kuberegistrytest: the registry of pod %s/%s did not watch pods within %v", namespace, name, callTimeout)
	}
	return reg
}

// ensurePod creates a running, Ready, unregistered pod unless client already holds it.
func ensurePod(tb testing.TB, client *fake.Clientset, namespace, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		createRunningPod(tb, client, namespace, name, []string{derivedIP(namespace, name)})
	default:
		tb.Fatalf("kuberegistrytest: getting pod %s/%s: %v", namespace, name, err)
	}
}

// notifyOnRegistryWatch returns a channel closed at the next watch of pods that selects on the
// service label, which is what a registry's informer asks for. The reactor only observes: it
// lets the fake's own reactor serve the watch. The fake runs its whole reactor chain under the
// lock its writes take, so a write made after the channel is closed reaches the new watch.
//
// Reactors cannot be removed; once fired, this one costs a look at the selector of each watch.
func notifyOnRegistryWatch(client *fake.Clientset) <-chan struct{} {
	fired := make(chan struct{})
	var once sync.Once
	client.PrependWatchReactor("pods", func(action k8stesting.Action) (bool, watch.Interface, error) {
		if a, ok := action.(k8stesting.WatchAction); ok && selectsOnServiceLabel(a) {
			once.Do(func() { close(fired) })
		}
		return false, nil, nil
	})
	return fired
}

func selectsOnServiceLabel(a k8stesting.WatchAction) bool {
	selector := a.GetWatchRestrictions().Labels
	if selector == nil {
		return false
	}
	requirements, _ := selector.Requirements()
	for _, r := range requirements {
		if r.Key() == kuberegistry.LabelsKeyServiceName {
			return true
		}
	}
	return false
}

// WaitForInstances waits until discovery serves exactly the instances with the given IDs (in any
// order; none for an empty set) of service, and returns them; it fails the test when that does
// not happen within ten seconds. It waits on a watcher, not by polling. Waiting for a set rather
// than a count matters: a change that swaps one instance for another keeps the count. The
// instances are shared snapshots: read-only.
func WaitForInstances(tb testing.TB, d kuberegistry.Discovery, service string, ids ...string) []*kuberegistry.ServiceInstance {
	tb.Helper()
	want := slices.Sorted(slices.Values(ids))
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	w, err := d.Watch(ctx, service)
	if err != nil {
		tb.Fatalf("kuberegistrytest: watching service %s: %v", service, err)
	}
	defer w.Stop()
	var last []*kuberegistry.ServiceInstance
	for {
		instances, err := w.Next()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				tb.Fatalf("kuberegistrytest: service %s did not have the instances %q within %v; the last set was %s",
					service, want, callTimeout, describe(last))
			} else {
				tb.Fatalf("kuberegistrytest: watching service %s: %v", service, err)
			}
			return nil
		}
		got := make([]string, 0, len(instances))
		for _, in := range instances {
			got = append(got, in.ID)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return instances
		}
		last = instances
	}
}

// describe renders instances for a failure message.
func describe(instances []*kuberegistry.ServiceInstance) string {
	if len(instances) == 0 {
		return "empty"
	}
	parts := make([]string, 0, len(instances))
	for _, in := range instances {
		parts = append(parts, in.ID+" "+strings.Join(in.Endpoints, " "))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// tbWriter sends what a registry logs to the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
