package kuberegistrytest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
)

func TestReadyPod(t *testing.T) {
	tests := []struct {
		name     string
		instance *kuberegistry.ServiceInstance
		wantIPs  []string
		want     *kuberegistry.ServiceInstance // nil: the pod is not an instance
	}{
		{
			name: "IPv4 endpoint",
			instance: &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Version: "v1",
				Metadata: map[string]string{"zone": "a"}, Endpoints: []string{"grpc://10.1.0.1:9000", "http://10.1.0.1:8000?isSecure=true"}},
			wantIPs: []string{"10.1.0.1"},
			want: &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Version: "v1",
				Metadata: map[string]string{"zone": "a"}, Endpoints: []string{"http://10.1.0.1:8000?isSecure=true", "grpc://10.1.0.1:9000"}},
		},
		{
			name:     "dual stack",
			instance: &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Endpoints: []string{"grpc://10.1.0.2:9000", "grpc://[fd00::2]:9000"}},
			wantIPs:  []string{"10.1.0.2", "fd00::2"},
			want:     &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Endpoints: []string{"grpc://10.1.0.2:9000", "grpc://[fd00::2]:9000"}},
		},
		{
			name:     "no IP in the endpoints: a derived one",
			instance: &kuberegistry.ServiceInstance{Name: "cart", Version: "v1.2.3+build.7", Endpoints: []string{"grpc://:9000"}},
			want:     &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Version: "v1.2.3+build.7"},
		},
		{
			name: "no instance: running and Ready, not registered",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			pod := kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", tt.instance)
			assert.Equal(t, corev1.PodRunning, pod.Status.Phase)
			assert.Contains(t, pod.Status.Conditions, corev1.PodCondition{
				Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: pod.Status.Conditions[0].LastTransitionTime})
			require.NotEmpty(t, pod.Status.PodIPs)
			assert.Equal(t, pod.Status.PodIPs[0].IP, pod.Status.PodIP)
			if tt.wantIPs != nil {
				var ips []string
				for _, ip := range pod.Status.PodIPs {
					ips = append(ips, ip.IP)
				}
				assert.Equal(t, tt.wantIPs, ips)
			}

			reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
			if tt.want == nil {
				assert.Empty(t, pod.Labels[kuberegistry.LabelsKeyServiceName])
				return
			}
			got := kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0")[0]
			if tt.want.Endpoints == nil { // derived IP
				tt.want.Endpoints = []string{"grpc://" + pod.Status.PodIP + ":9000"}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadyPodDerivedIPsAreStableAndDistinct(t *testing.T) {
	ips := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("cart-%d", i)
		pod := kuberegistrytest.ReadyPod(t, fake.NewClientset(), "shop", name, nil)
		again := kuberegistrytest.ReadyPod(t, fake.NewClientset(), "shop", name, nil)
		require.Equal(t, pod.Status.PodIP, again.Status.PodIP, "the IP of %s is not stable", name)
		if other, ok := ips[pod.Status.PodIP]; ok {
			t.Errorf("%s and %s share IP %s", name, other, pod.Status.PodIP)
		}
		ips[pod.Status.PodIP] = name
	}
}

func TestReadyPodIsDeletedAtCleanup(t *testing.T) {
	client := fake.NewClientset()
	t.Run("inner", func(t *testing.T) {
		kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{Name: "cart", Endpoints: []string{"grpc://:9000"}})
	})
	_, err := client.CoreV1().Pods("shop").Get(context.Background(), "cart-0", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the pod outlived its test: %v", err)
}

func TestSetReadyAndTerminate(t *testing.T) {
	client := fake.NewClientset()
	for _, name := range []string{"cart-0", "cart-1"} {
		kuberegistrytest.ReadyPod(t, client, "shop", name, &kuberegistry.ServiceInstance{ID: name, Name: "cart", Endpoints: []string{"grpc://:9000"}})
	}
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
	kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0", "cart-1")

	steps := []struct {
		name string
		do   func()
		want []string // IDs served afterwards
	}{
		{"cart-0 not ready", func() { kuberegistrytest.SetReady(t, client, "shop", "cart-0", false) }, []string{"cart-1"}},
		{"cart-0 not ready again: no change", func() { kuberegistrytest.SetReady(t, client, "shop", "cart-0", false) }, []string{"cart-1"}},
		{"cart-0 ready", func() { kuberegistrytest.SetReady(t, client, "shop", "cart-0", true) }, []string{"cart-0", "cart-1"}},
		{"cart-1 terminating", func() { kuberegistrytest.Terminate(t, client, "shop", "cart-1") }, []string{"cart-0"}},
		// With no ready pod left, kuberegistry serves the terminating pods that are still Ready.
		{"cart-0 not ready: the terminating pod serves", func() { kuberegistrytest.SetReady(t, client, "shop", "cart-0", false) }, []string{"cart-1"}},
		{"cart-1 not ready either: none", func() { kuberegistrytest.SetReady(t, client, "shop", "cart-1", false) }, nil},
	}
	for _, s := range steps {
		s.do()
		t.Log(s.name)
		kuberegistrytest.WaitForInstances(t, reg, "cart", s.want...)
	}
	pod, err := client.CoreV1().Pods("shop").Get(context.Background(), "cart-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotNil(t, pod.DeletionTimestamp)
	assert.Equal(t, corev1.PodRunning, pod.Status.Phase, "a terminating pod still runs")
}

func TestNewRegistry(t *testing.T) {
	t.Run("creates its pod and reads its own writes", func(t *testing.T) {
		client := fake.NewClientset()
		reg := kuberegistrytest.NewRegistry(t, client, "shop", "cart-0")
		ctx := context.Background()
		require.NoError(t, reg.Register(ctx, &kuberegistry.ServiceInstance{ID: "x", Name: "cart", Endpoints: []string{"grpc://:9000"}}))
		got, err := reg.GetService(ctx, "cart")
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, "x", got[0].ID)
		require.NoError(t, reg.Deregister(ctx, nil))
		got, _ = reg.GetService(ctx, "cart")
		assert.Empty(t, got)
	})
	t.Run("keeps a pod that exists", func(t *testing.T) {
		client := fake.NewClientset()
		kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{Name: "cart", Endpoints: []string{"grpc://10.3.0.1:9000"}})
		reg := kuberegistrytest.NewRegistry(t, client, "shop", "cart-0")
		got := kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0")
		assert.Equal(t, []string{"grpc://10.3.0.1:9000"}, got[0].Endpoints)
	})
	t.Run("options after the defaults win", func(t *testing.T) {
		client := fake.NewClientset()
		kuberegistrytest.ReadyPod(t, client, "other", "cart-0", &kuberegistry.ServiceInstance{Name: "cart", Endpoints: []string{"grpc://10.3.0.2:9000"}})
		reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0", kuberegistry.WithNamespace("other"))
		kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0")
	})
}

// The pitfall NewRegistry handles: a delete right after the registry started must reach it.
// Without waiting for the watch, a few runs in a hundred lose the delete (see the package doc).
func TestNewRegistrySeesDeletesRightAway(t *testing.T) {
	for i := range 60 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			client := fake.NewClientset()
			kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{Name: "cart", Endpoints: []string{"grpc://:9000"}})
			reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
			require.NoError(t, client.CoreV1().Pods("shop").Delete(context.Background(), "cart-0", metav1.DeleteOptions{}))
			kuberegistrytest.WaitForInstances(t, reg, "cart")
		})
	}
}

// TestFakeTrackerForgetsDeletes pins down what the package doc says of client-go's fake
// clientset, so that a client-go upgrade that changes it fails here: a watch from a list's
// resource version replays creates and updates made since as Added events, but not deletes.
func TestFakeTrackerForgetsDeletes(t *testing.T) {
	ctx := context.Background()
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
	}
	client := fake.NewClientset(pod("updated"), pod("deleted"))
	pods := client.CoreV1().Pods("shop")
	list, err := pods.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, list.ResourceVersion, "the fake no longer versions lists")

	// Between the list and the watch:
	_, err = pods.Create(ctx, pod("created"), metav1.CreateOptions{})
	require.NoError(t, err)
	updated := pod("updated")
	updated.Labels = map[string]string{"changed": "yes"}
	_, err = pods.Update(ctx, updated, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, pods.Delete(ctx, "deleted", metav1.DeleteOptions{}))

	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	defer w.Stop()
	var got []string
	for done := false; !done; {
		select {
		case e := <-w.ResultChan():
			got = append(got, fmt.Sprintf("%s %s", e.Type, e.Object.(*corev1.Pod).Name))
		default: // the replay is written before Watch returns
			done = true
		}
	}
	assert.ElementsMatch(t, []string{string(watch.Added) + " created", string(watch.Added) + " updated"}, got,
		"the fake's replay changed: revisit the package doc and NewRegistry")
}

func TestFailuresNameTheProblem(t *testing.T) {
	tests := []struct {
		name string
		do   func(tb testing.TB, client *fake.Clientset)
		want string
	}{
		{"invalid instance", func(tb testing.TB, client *fake.Clientset) {
			kuberegistrytest.ReadyPod(tb, client, "shop", "cart-0", &kuberegistry.ServiceInstance{Name: "shop/cart"})
		}, `registering pod shop/cart-0: kuberegistry: invalid service instance: name "shop/cart"`},
		{"pod exists", func(tb testing.TB, client *fake.Clientset) {
			kuberegistrytest.ReadyPod(tb, client, "shop", "cart-0", nil)
			kuberegistrytest.ReadyPod(tb, client, "shop", "cart-0", nil)
		}, "creating pod shop/cart-0"},
		{"no such pod to flip", func(tb testing.TB, client *fake.Clientset) {
			kuberegistrytest.SetReady(tb, client, "shop", "nope", true)
		}, `getting pod shop/nope: pods "nope" not found`},
		{"no such pod to terminate", func(tb testing.TB, client *fake.Clientset) {
			kuberegistrytest.Terminate(tb, client, "shop", "nope")
		}, `getting pod shop/nope`},
		{"bad pod name", func(tb testing.TB, client *fake.Clientset) {
			kuberegistrytest.NewRegistry(tb, client, "shop", "Not_A_Name")
		}, `kuberegistry: invalid option: WithPod name "Not_A_Name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fatalMessage(t, func(tb testing.TB) { tt.do(tb, fake.NewClientset()) })
			assert.Contains(t, msg, tt.want)
		})
	}
}

// fatalMessage runs f with a testing.TB whose Fatalf records the message and ends f, as
// t.Fatalf ends a test; other calls go to t. It returns the message, failing if there was none.
func fatalMessage(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f(r)
	}()
	wg.Wait()
	if r.msg == "" {
		t.Fatal("the helper did not fail")
	}
	return r.msg
}

type fatalRecorder struct {
	testing.TB
	msg string // written before Goexit, read after wg.Wait
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	if !strings.HasPrefix(r.msg, "kuberegistrytest: ") {
		r.TB.Errorf("message without the package prefix: %s", r.msg)
	}
	runtime.Goexit()
}
