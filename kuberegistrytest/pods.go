package kuberegistrytest

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// callTimeout bounds each call a helper makes, so that a stuck fake fails the test instead of
// hanging it.
const callTimeout = 10 * time.Second

// ReadyPod creates the pod namespace/name in client, running and Ready, and registers instance on
// it with kuberegistry's Register, as the process in that pod would: the pod carries exactly the
// labels and annotations a registered pod carries in a cluster (an instance without an ID is
// discovered with the pod's name as ID). A nil instance leaves the pod unregistered.
//
// The pod's IPs are the IP hosts of instance's endpoints, in order (an IPv4 and an IPv6 endpoint
// make a dual-stack pod); when no endpoint names an IP, as in "grpc://:9000", the pod gets an
// address in 10.0.0.0/8 derived from its name. The pod is deleted at cleanup. It returns the pod
// as stored.
func ReadyPod(tb testing.TB, client *fake.Clientset, namespace, name string, instance *kuberegistry.ServiceInstance) *corev1.Pod {
	tb.Helper()
	var ips []string
	if instance != nil {
		ips = endpointIPs(instance.Endpoints)
	}
	if len(ips) == 0 {
		ips = []string{derivedIP(namespace, name)}
	}
	createRunningPod(tb, client, namespace, name, ips)
	if instance != nil {
		register(tb, client, namespace, name, instance)
	}
	return getPod(tb, client, namespace, name)
}

// SetReady sets the Ready condition of pod namespace/name, as the kubelet does when the pod's
// readiness probe starts passing or failing. A pod that is not Ready is not an instance.
func SetReady(tb testing.TB, client *fake.Clientset, namespace, name string, ready bool) {
	tb.Helper()
	pod := getPod(tb, client, namespace, name)
	setReadyCondition(&pod.Status, ready)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := client.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		tb.Fatalf("kuberegistrytest: setting Ready=%v on pod %s/%s: %v", ready, namespace, name, err)
	}
}

// Terminate marks pod namespace/name as being deleted while it still runs, as the API server does
// for the grace period between a delete and the end of the pod's containers: it sets the pod's
// deletion timestamp and leaves it Running and Ready. kuberegistry stops serving it as long as its
// service has a ready pod (it serves out the grace period of terminating pods only when none is
// left). The fake clientset ignores finalizers and deletes at once, so Terminate sets the
// timestamp with an update instead of deleting.
func Terminate(tb testing.TB, client *fake.Clientset, namespace, name string) {
	tb.Helper()
	pod := getPod(tb, client, namespace, name)
	now := metav1.Now()
	grace := int64(30)
	pod.DeletionTimestamp = &now
	pod.DeletionGracePeriodSeconds = &grace
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := client.CoreV1().Pods(namespace).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		tb.Fatalf("kuberegistrytest: marking pod %s/%s terminating: %v", namespace, name, err)
	}
}

// createRunningPod creates a pod that is Running and Ready with the given IPs, deleted at cleanup.
// Like the kubelet, it writes the status through the status subresource after the create.
func createRunningPod(tb testing.TB, client *fake.Clientset, namespace, name string, ips []string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	pods := client.CoreV1().Pods(namespace)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("kuberegistrytest: creating pod %s/%s: %v", namespace, name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			tb.Errorf("kuberegistrytest: deleting pod %s/%s: %v", namespace, name, err)
		}
	})
	created.Status.Phase = corev1.PodRunning
	created.Status.PodIP = ips[0]
	for _, ip := range ips {
		created.Status.PodIPs = append(created.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	setReadyCondition(&created.Status, true)
	if _, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		tb.Fatalf("kuberegistrytest: writing the status of pod %s/%s: %v", namespace, name, err)
	}
}

// register writes instance on the pod with a registry that stands for the process in that pod.
// The registry is never started: Register needs no informer.
func register(tb testing.TB, client *fake.Clientset, namespace, name string, instance *kuberegistry.ServiceInstance) {
	tb.Helper()
	reg, err := kuberegistry.New(client, kuberegistry.WithPod(namespace, name),
		kuberegistry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		tb.Fatalf("kuberegistrytest: pod %s/%s: %v", namespace, name, err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := reg.Register(ctx, instance); err != nil {
		tb.Fatalf("kuberegistrytest: registering pod %s/%s: %v", namespace, name, err)
	}
}

func getPod(tb testing.TB, client *fake.Clientset, namespace, name string) *corev1.Pod {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		tb.Fatalf("kuberegistrytest: getting pod %s/%s: %v", namespace, name, err)
	}
	return pod
}

// setReadyCondition sets or adds the Ready condition, moving its transition time only when its
// status changes, as the kubelet does.
func setReadyCondition(status *corev1.PodStatus, ready bool) {
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	now := metav1.Now()
	for i := range status.Conditions {
		c := &status.Conditions[i]
		if c.Type == corev1.PodReady {
			if c.Status != want {
				c.Status, c.LastTransitionTime = want, now
			}
			return
		}
	}
	status.Conditions = append(status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: want, LastTransitionTime: now})
}

// endpointIPs returns the distinct IP hosts of the endpoints, in order.
func endpointIPs(endpoints []string) []string {
	var ips []string
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			continue // Register reports the bad endpoint
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil || a.Zone() != "" {
			continue
		}
		if ip := a.String(); !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}

// derivedIP gives a pod without an IP in its endpoints a stable address of its own in 10.0.0.0/8.
func derivedIP(namespace, name string) string {
	h := fnv.New32a()
	_, _ = io.WriteString(h, namespace+"/"+name)
	s := h.Sum32()
	return fmt.Sprintf("10.%d.%d.%d", byte(s>>16), byte(s>>8), byte(s)%254+1)
}
