package kuberegistry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// runningPod is the pod this example process pretends to run in: running, ready, at 10.0.0.7.
func runningPod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIPs:     []corev1.PodIP{{IP: "10.0.0.7"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

// A service registers the pod it runs in; a client discovers it. In a cluster, the client comes
// from kubernetes.NewForConfig and the pod identity from the Downward API, so WithPod is not needed.
func Example() {
	// In a cluster: kuberegistry.NewForConfig(cfg), then reg.Start(ctx).
	reg := mustStart([]*corev1.Pod{runningPod("shop", "cart-0")}, kuberegistry.WithPod("shop", "cart-0"))
	defer reg.Close()
	ctx := context.Background()

	err := reg.Register(ctx, &kuberegistry.ServiceInstance{
		ID:        "cart-0",
		Name:      "cart",
		Version:   "v1.2.3+build.7", // not a valid label value: stored losslessly
		Endpoints: []string{"grpc://10.0.0.7:9000", "http://10.0.0.7:8000?isSecure=true"},
	})
	if err != nil {
		panic(err)
	}
	instances, err := reg.GetService(ctx, "cart")
	if err != nil {
		panic(err)
	}
	for _, in := range instances {
		fmt.Println(in.ID, in.Version, in.Endpoints)
	}
	// Output: cart-0 v1.2.3+build.7 [http://10.0.0.7:8000?isSecure=true grpc://10.0.0.7:9000]
}

// A watcher's first Next returns the current set; each later Next blocks until the set changes.
func ExampleRegistry_Watch() {
	reg := mustStart([]*corev1.Pod{runningPod("shop", "cart-0")}, kuberegistry.WithPod("shop", "cart-0"))
	defer reg.Close()
	ctx := context.Background()
	w, err := reg.Watch(ctx, "cart")
	if err != nil {
		panic(err)
	}
	defer w.Stop()

	instances, _ := w.Next()
	fmt.Println("before:", len(instances))
	_ = reg.Register(ctx, &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Endpoints: []string{"grpc://:9000"}})
	instances, _ = w.Next()
	fmt.Println("after register:", instances[0].Endpoints)
	_ = reg.Deregister(ctx, nil)
	instances, _ = w.Next()
	fmt.Println("after deregister:", len(instances))
	// Output:
	// before: 0
	// after register: [grpc://10.0.0.7:9000]
	// after deregister: 0
}

// Bad input is refused before any request, with an error that says what to fix.
func ExampleRegistry_Register_invalid() {
	reg, _ := kuberegistry.New(fake.NewClientset(), kuberegistry.WithPod("shop", "cart-0"))
	defer reg.Close()
	err := reg.Register(context.Background(), &kuberegistry.ServiceInstance{Name: "shop/cart"})
	fmt.Println(err)
	// Output: kuberegistry: invalid service instance: name "shop/cart": it holds '/'; a service name is a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit
}

// A health endpoint: discovery keeps serving its last instances when the API server is gone, and
// Check says when that has lasted longer than the process may tolerate.
func ExampleRegistry_Check() {
	reg, err := kuberegistry.New(fake.NewClientset(), kuberegistry.WithNamespace("shop"))
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	healthz := func(w http.ResponseWriter, _ *http.Request) {
		if err := reg.Check(2 * time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	probe := func() {
		rec := httptest.NewRecorder()
		healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	probe() // not started yet
	if err := reg.Start(context.Background()); err != nil {
		panic(err)
	}
	probe()
	// Output:
	// 503 kuberegistry: not started: call Start before GetService or Watch
	// 200 ok
}
