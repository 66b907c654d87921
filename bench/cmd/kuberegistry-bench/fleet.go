package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// writeWorkers is how many requests create or delete pods at once.
const writeWorkers = 16

// schedulingGate keeps the benchmark's pods off every node of a real cluster: they exist only as
// API objects, whose status the benchmark writes as a kubelet would.
const schedulingGate = "kuberegistry.io/benchmark"

// createNamespace creates a namespace with a unique name, and the default service account a
// namespace controller would add (the ServiceAccount admission plugin, where enabled, rejects pods
// without it).
func createNamespace(ctx context.Context, client kubernetes.Interface) (string, error) {
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kuberegistry-bench-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating a namespace: %w", err)
	}
	_, err = client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return ns.Name, fmt.Errorf("creating the default service account of %s: %w", ns.Name, err)
	}
	return ns.Name, nil
}

// podMaker makes pod i of a fleet.
type podMaker func(namespace string, i int) *corev1.Pod

// chartPod is pod i of the chart's fleet, which grows through the chart's sizes: even pods are
// registered, ten to a service (pod i belongs to service i/20), odd pods are not, so that the
// first n pods (n a multiple of 20) hold n/2 registered pods in n/20 services whatever n is —
// chartScenario(n). The pods are the workload's otherwise.
func chartPod(namespace string, i int) *corev1.Pod {
	if i%2 == 1 {
		return workload.Scenario{Pods: i + 1, Registered: 0, Services: 1}.Pod(namespace, i)
	}
	pod := workload.Scenario{Pods: i + 1, Registered: i + 1, Services: 1}.Pod(namespace, i)
	pod.Labels[kuberegistry.LabelsKeyServiceName] = workload.Service(i / 20)
	return pod
}

// extensionPod returns the maker of the pods that take the main fleet s, once its unregistered
// pods are doubled (2·Pods−Registered pods), to chartScenario(2·Pods) when s is
// chartScenario(Pods): Registered more registered pods, in Services new services, as many in each
// as in the old ones.
func extensionPod(s workload.Scenario) podMaker {
	first := 2*s.Pods - s.Registered
	return func(namespace string, i int) *corev1.Pod {
		pod := workload.Scenario{Pods: i + 1, Registered: i + 1, Services: 1}.Pod(namespace, i)
		pod.Labels[kuberegistry.LabelsKeyServiceName] = workload.Service(s.Services + (i-first)%s.Services)
		return pod
	}
}

// restoreReadiness makes ready again, from this process, every pod the state says is not.
func restoreReadiness(ctx context.Context, client kubernetes.Interface, namespace string, state *fleetState) error {
	writer := newFlipper(client, namespace)
	for i, ready := range state.ready {
		if ready {
			continue
		}
		state.flip(i)
		if _, err := writer.flip(ctx, i, true); err != nil {
			return err
		}
	}
	return nil
}

// createPods creates pods [from, to) of a fleet in namespace, running and ready: each is created,
// then its status written through the status subresource (the API server drops the status of a
// created pod), as a kubelet would.
func createPods(ctx context.Context, client kubernetes.Interface, namespace string, makePod podMaker, from, to int) error {
	return createPodsWith(ctx, client, namespace, makePod, from, to, writeWorkers)
}

// createPodsWith is createPods with workers requests at a time.
func createPodsWith(ctx context.Context, client kubernetes.Interface, namespace string, makePod podMaker, from, to, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	indexes := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range indexes {
				if err := createPod(ctx, client, makePod(namespace, i), i); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		})
	}
	stopProgress := progress(fmt.Sprintf("creating pods %d..%d in %s", from, to-1, namespace), to-from, &done)
	func() {
		defer close(indexes)
		for i := from; i < to; i++ {
			select {
			case indexes <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func createPod(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, i int) error {
	namespace := pod.Namespace
	pods := client.CoreV1().Pods(namespace)
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: schedulingGate}}
	var created *corev1.Pod
	err := retry.OnError(retry.DefaultBackoff, transient, func() (err error) {
		created, err = pods.Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // a retried create that had succeeded
			created, err = pods.Get(ctx, pod.Name, metav1.GetOptions{})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating pod %s/%s: %w", namespace, pod.Name, err)
	}
	workload.SetStatus(created, i, true)
	err = retry.OnError(retry.DefaultBackoff, transient, func() error {
		_, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the status of pod %s/%s: %w", namespace, pod.Name, err)
	}
	return nil
}

// transient reports whether a failed request is worth retrying.
func transient(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)
}

// deleteNamespace deletes the pods of a namespace at once (grace period 0: no kubelet would
// confirm a graceful stop), then the namespace, and then clears its finalizer, the namespace
// controller's last step, because a bare control plane has no namespace controller.
func deleteNamespace(ctx context.Context, client kubernetes.Interface, namespace string) error {
	logf("deleting namespace %s and its pods", namespace)
	pods := client.CoreV1().Pods(namespace)
	list, err := pods.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("listing the pods of %s: %w", namespace, err)
	}
	var names chan string
	var errs []error
	var mu sync.Mutex // guards errs
	if list != nil {
		names = make(chan string, len(list.Items))
		for _, pod := range list.Items {
			names <- pod.Name
		}
		close(names)
		zero := int64(0)
		var wg sync.WaitGroup
		for range writeWorkers {
			wg.Go(func() {
				for name := range names {
					err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
					if err != nil && !apierrors.IsNotFound(err) {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
	}
	if len(errs) > 0 {
		return fmt.Errorf("deleting %d pods of %s, first: %w", len(errs), namespace, errs[0])
	}
	err = client.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", namespace, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ns.Spec.Finalizers = nil
		_, err = client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace %s: %w", namespace, err)
	}
	return nil
}

// progress reports done/total on stderr every few seconds until the returned func is called,
// which reports the total time.
func progress(what string, total int, done *atomic.Int64) func() {
	start := time.Now()
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(5 * time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				n := done.Load()
				logf("%s: %d/%d (%.0f/s)", what, n, total, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
		logf("%s: %d/%d in %s", what, done.Load(), total, time.Since(start).Round(time.Millisecond))
	}
}
