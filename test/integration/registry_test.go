package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startRegistry starts a registry on client, closed with the test. A client made by newClientset
// gives a registry built by NewForConfig from the same configuration, whose informers decode
// pods lean; tests that call kuberegistry.New themselves cover the typed client.
func startRegistry(t *testing.T, client kubernetes.Interface, opts ...kuberegistry.Option) *kuberegistry.Registry {
	t.Helper()
	var reg *kuberegistry.Registry
	var err error
	if cfg, ok := configs.Load(client); ok {
		reg, err = kuberegistry.NewForConfig(cfg.(*rest.Config), opts...)
	} else {
		reg, err = kuberegistry.New(client, opts...)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return reg
}

// registeredLabels are the labels of a pod of service registered by hand.
func registeredLabels(service, id string) map[string]string {
	return map[string]string{
		kuberegistry.LabelsKeyServiceName:    service,
		kuberegistry.LabelsKeyServiceID:      id,
		kuberegistry.LabelsKeyServiceVersion: "v1",
	}
}

func grpcProtocols() map[string]string {
	return map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc"}`}
}

// readyPod creates a pod of service that is running and ready at ip.
func readyPod(t *testing.T, ns, name, service, ip string) {
	t.Helper()
	createPod(t, ns, name, registeredLabels(service, name), grpcProtocols())
	setPodStatus(t, ns, name, corev1.PodRunning, true, ip)
}

// waitFor polls GetService until it returns the wanted endpoints, in any order of instances.
func waitFor(t *testing.T, reg kuberegistry.Discovery, service string, want ...string) []*kuberegistry.ServiceInstance {
	t.Helper()
	var got []*kuberegistry.ServiceInstance
	eventually(t, func() error {
		var err error
		got, err = reg.GetService(t.Context(), service)
		if err != nil {
			return err
		}
		if e := endpoints(got); e != strings.Join(sorted(want), " ") {
			return fmt.Errorf("service %s has endpoints %q, want %q", service, e, want)
		}
		return nil
	})
	return got
}

// endpoints renders the endpoints of a set of instances, sorted, space-separated.
func endpoints(instances []*kuberegistry.ServiceInstance) string {
	var all []string
	for _, in := range instances {
		all = append(all, in.Endpoints...)
	}
	return strings.Join(sorted(all), " ")
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// next calls w.Next with a deadline, so that a missing event fails the test instead of hanging it.
func next(t *testing.T, w kuberegistry.Watcher) []*kuberegistry.ServiceInstance {
	t.Helper()
	return within(t, w.Next, w.Stop)
}

// within calls next, failing the test if it returns an error or takes more than 30s; stop ends a
// call that hangs.
func within[T any](t *testing.T, next func() (T, error), stop func() error) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := next()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.v
	case <-time.After(30 * time.Second):
		_ = stop() // ends the goroutine above
		<-ch
		t.Fatal("Next did not return within 30s")
		var zero T
		return zero
	}
}

// 1. Register and Deregister round trip of the pod the registry runs in.
func TestRegisterDeregisterRoundTrip(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, "self", nil, nil)
	setPodStatus(t, ns, "self", corev1.PodRunning, true, "10.0.0.7")
	reg := startRegistry(t, adminClient(t), kuberegistry.WithPod(ns, "self"))

	in := &kuberegistry.ServiceInstance{
		ID: "self-1", Name: "cart", Version: "v1",
		Metadata:  map[string]string{"zone": "a"},
		Endpoints: []string{"grpc://10.0.0.7:9000", "http://10.0.0.7:8000?isSecure=true"},
	}
	if err := reg.Register(t.Context(), in); err != nil {
		t.Fatalf("Register: %v", err)
	}
	// Read-your-writes: no polling.
	got, err := reg.GetService(t.Context(), "cart")
	if err != nil || len(got) != 1 {
		t.Fatalf("GetService right after Register = %v, %v; want the pod", got, err)
	}
	want := "grpc://10.0.0.7:9000 http://10.0.0.7:8000?isSecure=true"
	if endpoints(got) != want || got[0].ID != "self-1" || got[0].Metadata["zone"] != "a" {
		t.Fatalf("got %+v, want endpoints %q", got[0], want)
	}

	if err := reg.Deregister(t.Context(), in); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if got, _ := reg.GetService(t.Context(), "cart"); len(got) != 0 {
		t.Fatalf("GetService right after Deregister = %v, want none", endpoints(got))
	}
	pod, err := adminClient(t).CoreV1().Pods(ns).Get(t.Context(), "self", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range pod.Labels {
		if strings.HasPrefix(k, "kratos-") {
			t.Errorf("label %s left on the pod", k)
		}
	}
	if len(pod.Annotations) != 0 {
		t.Errorf("annotations left on the pod: %v", pod.Annotations)
	}
	if err := reg.Deregister(t.Context(), in); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
}

// 2. Pods that cannot take traffic are never served; flipping Ready reaches watchers.
func TestReadiness(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	readyPod(t, ns, "ready", "cart", "10.0.1.1")

	createPod(t, ns, "not-ready", registeredLabels("cart", "not-ready"), grpcProtocols())
	setPodStatus(t, ns, "not-ready", corev1.PodRunning, false, "10.0.1.2")

	createPod(t, ns, "no-ip", registeredLabels("cart", "no-ip"), grpcProtocols())
	setPodStatus(t, ns, "no-ip", corev1.PodPending, false)

	createPod(t, ns, "succeeded", registeredLabels("cart", "succeeded"), grpcProtocols())
	setPodStatus(t, ns, "succeeded", corev1.PodSucceeded, false, "10.0.1.4")

	// A terminating pod: a finalizer keeps it, with its deletion timestamp, after the delete.
	term := createPod(t, ns, "terminating", registeredLabels("cart", "terminating"), grpcProtocols())
	term.Finalizers = []string{"kuberegistry.io/test"}
	if _, err := client.CoreV1().Pods(ns).Update(t.Context(), term, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	setPodStatus(t, ns, "terminating", corev1.PodRunning, true, "10.0.1.5")
	t.Cleanup(func() { removeFinalizers(t, client, ns, "terminating") })

	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns))
	waitFor(t, reg, "cart", "grpc://10.0.1.1:9000", "grpc://10.0.1.5:9000")
	w, err := reg.Watch(t.Context(), "cart")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)

	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "terminating", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := endpoints(next(t, w)); got != "grpc://10.0.1.1:9000" {
		t.Fatalf("after the delete the watcher saw %q, want only the ready pod", got)
	}

	setPodStatus(t, ns, "not-ready", corev1.PodRunning, true, "10.0.1.2")
	if got := endpoints(next(t, w)); got != "grpc://10.0.1.1:9000 grpc://10.0.1.2:9000" {
		t.Fatalf("after Ready=True the watcher saw %q", got)
	}
	setPodStatus(t, ns, "ready", corev1.PodRunning, false, "10.0.1.1")
	if got := endpoints(next(t, w)); got != "grpc://10.0.1.2:9000" {
		t.Fatalf("after Ready=False the watcher saw %q", got)
	}
}

func removeFinalizers(t *testing.T, client kubernetes.Interface, ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, err := client.CoreV1().Pods(ns).Patch(ctx, name, "application/merge-patch+json",
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Errorf("removing finalizers of %s/%s: %v", ns, name, err)
	}
}

// 4. Values that are not valid label values round-trip exactly through the real server.
func TestLosslessIdentity(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, "self", nil, nil)
	setPodStatus(t, ns, "self", corev1.PodRunning, true, "10.0.2.1")
	reg := startRegistry(t, adminClient(t), kuberegistry.WithPod(ns, "self"))
	id := strings.Repeat("0123456789", 10)
	if err := reg.Register(t.Context(), &kuberegistry.ServiceInstance{
		ID: id, Name: "cart", Version: "v1.2.3+build.7", Endpoints: []string{"grpc://:9000"},
	}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	got := waitFor(t, reg, "cart", "grpc://10.0.2.1:9000")
	if got[0].ID != id || got[0].Version != "v1.2.3+build.7" {
		t.Fatalf("got ID %q version %q, want %q and v1.2.3+build.7", got[0].ID, got[0].Version, id)
	}
}

// 5. A dual-stack pod has one endpoint per address family.
func TestDualStack(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, "dual", registeredLabels("cart", "dual"), grpcProtocols())
	setPodStatus(t, ns, "dual", corev1.PodRunning, true, "10.0.3.1", "fd00::3:1")
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
	waitFor(t, reg, "cart", "grpc://10.0.3.1:9000", "grpc://[fd00::3:1]:9000")
}

// 9. Malformed pods cost only themselves, and are logged once each.
func TestBadDataBesideHealthyPods(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	readyPod(t, ns, "healthy-1", "cart", "10.0.4.1")
	readyPod(t, ns, "healthy-2", "cart", "10.0.4.2")
	bad := map[string]map[string]string{
		"bad-metadata":  {kuberegistry.AnnotationsKeyMetadata: `{"zone": `, kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc"}`},
		"bad-protocols": {kuberegistry.AnnotationsKeyProtocolMap: `"grpc"`},
		"bad-port":      {kuberegistry.AnnotationsKeyProtocolMap: `{"99999":"grpc"}`},
		"huge":          {kuberegistry.AnnotationsKeyMetadata: `{"blob":"` + strings.Repeat("x", 200<<10) + `"}`, kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc"}`},
	}
	i := 10
	for name, annotations := range bad {
		createPod(t, ns, name, registeredLabels("cart", name), annotations)
		setPodStatus(t, ns, name, corev1.PodRunning, true, fmt.Sprintf("10.0.4.%d", i))
		i++
	}
	logs := &syncBuffer{}
	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	waitFor(t, reg, "cart", "grpc://10.0.4.1:9000", "grpc://10.0.4.2:9000")

	// Churn on the bad pods must not log them again.
	for name := range bad {
		setPodStatus(t, ns, name, corev1.PodRunning, true, "10.0.4.99")
	}
	// A change after the churn, once seen, proves the churn was processed.
	setPodStatus(t, ns, "healthy-2", corev1.PodRunning, true, "10.0.4.3")
	waitFor(t, reg, "cart", "grpc://10.0.4.1:9000", "grpc://10.0.4.3:9000")
	for name := range bad {
		if n := strings.Count(logs.String(), "pod="+name+" "); n != 1 {
			t.Errorf("pod %s logged %d times, want once:\n%s", name, n, logs.String())
		}
	}
}

// 10. Close under load: every open watcher ends with context.Canceled and no goroutine is left.
func TestCloseUnderLoad(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	for i := range 5 {
		readyPod(t, ns, fmt.Sprintf("cart-%d", i), "cart", fmt.Sprintf("10.0.5.%d", i+1))
	}
	before := goroutineBaseline(t)
	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const watchers = 20
	errs := make(chan error, watchers)
	for range watchers {
		w, err := reg.Watch(context.Background(), "cart")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := w.Next(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Load: readiness flaps while Close runs.
	stop := make(chan struct{})
	flapped := make(chan struct{})
	go func() {
		defer close(flapped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			setPodStatus(t, ns, fmt.Sprintf("cart-%d", i%5), corev1.PodRunning, i%2 == 0, fmt.Sprintf("10.0.5.%d", i%5+1))
		}
	}()
	time.Sleep(200 * time.Millisecond) // let some churn reach the watchers
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-flapped
	for range watchers {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) || !errors.Is(err, kuberegistry.ErrClosed) {
				t.Errorf("Next after Close = %v, want context.Canceled and ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a watcher's Next did not return after Close")
		}
	}
	before.verifyNoLeaks(t)
}

// syncBuffer collects a registry's log lines from the informer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakBaseline remembers the goroutines running before a test starts a registry.
type leakBaseline struct{ opts []goleak.Option }

func goroutineBaseline(t *testing.T) leakBaseline {
	t.Helper()
	return leakBaseline{opts: []goleak.Option{
		goleak.IgnoreCurrent(),
		// Connections the HTTP transport keeps open for reuse belong to the transport.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
		// envtest waits on the kube-apiserver process that restartAPIServer starts anew.
		goleak.IgnoreAnyFunction("sigs.k8s.io/controller-runtime/pkg/internal/testing/process.(*State).Start.func1"),
	}}
}

func (b leakBaseline) verifyNoLeaks(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t, b.opts...)
}

// quietLogger drops what a registry logs, for tests that provoke errors on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
