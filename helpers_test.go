package kuberegistry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// testNamespace is where the unit tests' pods live.
const testNamespace = "shop"

// podSpec describes a test pod; zero values make a ready pod with one IP.
type podSpec struct {
	name        string
	service     string
	labels      map[string]string
	annotations map[string]string
	ports       []corev1.ContainerPort
	phase       corev1.PodPhase
	notReady    bool
	terminating bool
	ips         []string
}

// newPod builds a pod literal: a ready, running pod of spec.service unless told otherwise.
func newPod(spec podSpec) *corev1.Pod {
	labels := map[string]string{}
	if spec.service != "" {
		labels[LabelsKeyServiceName] = spec.service
	}
	for k, v := range spec.labels {
		labels[k] = v
	}
	phase := spec.phase
	if phase == "" {
		phase = corev1.PodRunning
	}
	ready := corev1.ConditionTrue
	if spec.notReady {
		ready = corev1.ConditionFalse
	}
	ips := spec.ips
	if ips == nil {
		ips = []string{"10.0.0.1"}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: spec.name, Labels: labels, Annotations: spec.annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Ports: spec.ports}}},
		Status: corev1.PodStatus{
			Phase:      phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
		},
	}
	for _, ip := range ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		pod.Status.PodIP = ips[0]
	}
	if spec.terminating {
		now := metav1.Now()
		pod.DeletionTimestamp = &now
	}
	return pod
}

// registered returns the labels and annotations of a go-kratos registration.
func registered(service, protocols string) podSpec {
	return podSpec{
		service:     service,
		labels:      map[string]string{LabelsKeyServiceID: service + "-id", LabelsKeyServiceVersion: "v1"},
		annotations: map[string]string{AnnotationsKeyProtocolMap: protocols},
	}
}

// logBuffer collects what a registry logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixture is a started registry on a fake clientset, standing in for pod testNamespace/self.
type fixture struct {
	client *fake.Clientset
	reg    *Registry
	logs   *logBuffer
}

// newFixture creates the pods, then starts a registry over them; everything ends with the test.
func newFixture(t *testing.T, pods ...*corev1.Pod) *fixture {
	t.Helper()
	client := fake.NewClientset()
	self := newPod(podSpec{name: "self", ips: []string{"10.9.9.9"}})
	for _, p := range append([]*corev1.Pod{self}, pods...) {
		_, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// The fake clientset loses a delete made between the informer's list and its watch: tests
	// write only once the watch is open.
	watching := make(chan struct{})
	var once sync.Once
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		once.Do(func() { close(watching) })
		return false, nil, nil
	})
	logs := &logBuffer{}
	reg, err := New(client, WithPod(testNamespace, "self"), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, reg.Start(ctx))
	select {
	case <-watching:
	case <-ctx.Done():
		t.Fatal("the registry's informer never opened its watch")
	}
	return &fixture{client: client, reg: reg, logs: logs}
}

func (f *fixture) create(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	_, err := f.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (f *fixture) update(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	_, err := f.client.CoreV1().Pods(pod.Namespace).Update(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func (f *fixture) delete(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, f.client.CoreV1().Pods(testNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}))
}

// eventually waits, with a deadline rather than a fixed sleep, until GetService returns n instances.
func (f *fixture) eventually(t *testing.T, service string, n int) []*ServiceInstance {
	t.Helper()
	var got []*ServiceInstance
	require.Eventually(t, func() bool {
		var err error
		got, err = f.reg.GetService(context.Background(), service)
		return err == nil && len(got) == n
	}, 10*time.Second, time.Millisecond, "service %s never had %d instances (last: %v)", service, n, describe(got))
	return got
}

// describe renders instances for failure messages.
func describe(instances []*ServiceInstance) string {
	var b bytes.Buffer
	for _, in := range instances {
		fmt.Fprintf(&b, "{%s %s %v} ", in.ID, in.Version, in.Endpoints)
	}
	return b.String()
}

// nextResult is what a Next call running in the background returned.
type nextResult struct {
	instances []*ServiceInstance
	err       error
}

// nextAsync runs w.Next in a goroutine the test waits for.
func nextAsync(t *testing.T, w Watcher) <-chan nextResult {
	t.Helper()
	ch := make(chan nextResult, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in, err := w.Next()
		ch <- nextResult{in, err}
	}()
	t.Cleanup(func() {
		_ = w.Stop()
		wg.Wait()
	})
	return ch
}

// receive waits for a background Next, failing the test after a deadline.
func receive(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return within 10s")
		return nextResult{}
	}
}

// toPodEntry is the default translation's transform.
func toPodEntry(obj any) (any, error) { return defaultTranslation.toPodEntry(obj, nil) }

// translatePod turns a pod into an instance with the default translation.
func translatePod(pod *corev1.Pod) podInstance {
	return defaultTranslation.translate(pod, nil)
}

// toSliceEntry is the default translation's transform.
func toSliceEntry(obj any) (any, error) { return defaultSliceTranslation.toEntry(obj) }

// translateSlice translates a slice with the default translation.
func translateSlice(s *discoveryv1.EndpointSlice) sliceInstances {
	return defaultSliceTranslation.translate(s)
}
