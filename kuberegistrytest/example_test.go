package kuberegistrytest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A pod of service cart, running and Ready, registered in one call; a registry discovers it.
func ExampleReadyPod() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.done()

	client := fake.NewClientset()
	kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{
		ID:        "cart-0",
		Name:      "cart",
		Version:   "v1.2.3+build.7",
		Metadata:  map[string]string{"zone": "eu-1"},
		Endpoints: []string{"grpc://10.0.0.7:9000"},
	})
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
	for _, in := range kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0") {
		fmt.Println(in.ID, in.Version, in.Metadata, in.Endpoints)
	}
	// Output: cart-0 v1.2.3+build.7 map[zone:eu-1] [grpc://10.0.0.7:9000]
}

// A failing readiness probe takes a pod out of discovery; a passing one brings it back.
func ExampleSetReady() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.done()

	client := fake.NewClientset()
	for i := range 3 {
		kuberegistrytest.ReadyPod(t, client, "shop", fmt.Sprintf("cart-%d", i), &kuberegistry.ServiceInstance{
			Name: "cart", Endpoints: []string{fmt.Sprintf("grpc://10.0.0.%d:9000", i+1)},
		})
	}
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
	kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0", "cart-1", "cart-2")

	kuberegistrytest.SetReady(t, client, "shop", "cart-1", false)
	for _, in := range kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0", "cart-2") {
		fmt.Println(in.ID, in.Endpoints)
	}
	kuberegistrytest.SetReady(t, client, "shop", "cart-1", true)
	fmt.Println("ready again:", len(kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0", "cart-1", "cart-2")))
	// Output:
	// cart-0 [grpc://10.0.0.1:9000]
	// cart-2 [grpc://10.0.0.3:9000]
	// ready again: 3
}

// A terminating pod leaves discovery at once while its service has another ready pod, though
// it still runs and is still Ready.
func ExampleTerminate() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.done()

	client := fake.NewClientset()
	for _, name := range []string{"cart-0", "cart-1"} {
		kuberegistrytest.ReadyPod(t, client, "shop", name, &kuberegistry.ServiceInstance{
			ID: name, Name: "cart", Endpoints: []string{"grpc://:9000"},
		})
	}
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
	kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0", "cart-1")

	kuberegistrytest.Terminate(t, client, "shop", "cart-0")
	fmt.Println("served:", kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-1")[0].ID)
	pod, _ := client.CoreV1().Pods("shop").Get(context.Background(), "cart-0", metav1.GetOptions{})
	fmt.Println("cart-0 terminating:", pod.DeletionTimestamp != nil, "phase:", pod.Status.Phase)
	// Output:
	// served: cart-1
	// cart-0 terminating: true phase: Running
}

// The registry of a service under test: it runs in a fake pod, and reads its own writes.
func ExampleNewRegistry() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.done()

	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "cart-0") // creates the pod, starts, closes at cleanup

	ctx := context.Background()
	if err := reg.Register(ctx, &kuberegistry.ServiceInstance{ID: "cart-0", Name: "cart", Endpoints: []string{"grpc://:9000"}}); err != nil {
		fmt.Println(err)
		return
	}
	instances, _ := reg.GetService(ctx, "cart") // no waiting: Register returns once the cache has it
	fmt.Println(len(instances), instances[0].ID)

	// Deletes reach the registry too, however soon after NewRegistry they happen.
	_ = client.CoreV1().Pods("shop").Delete(ctx, "cart-0", metav1.DeleteOptions{})
	fmt.Println(len(kuberegistrytest.WaitForInstances(t, reg, "cart")))
	// Output:
	// 1 cart-0
	// 0
}

// A registry learns of changes through its informer, a moment after they are made:
// WaitForInstances waits on a watcher until the set holds exactly the given instance IDs.
func ExampleWaitForInstances() {
	t := newExampleT() // in a test: the test's *testing.T
	defer t.done()

	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "checkout-0")
	kuberegistrytest.ReadyPod(t, client, "shop", "cart-0", &kuberegistry.ServiceInstance{
		Name: "cart", Endpoints: []string{"http://10.0.0.9:8080"},
	})
	fmt.Println(kuberegistrytest.WaitForInstances(t, reg, "cart", "cart-0")[0].Endpoints)
	// Output: [http://10.0.0.9:8080]
}

// exampleT stands in for the *testing.T of a test, which an example does not have. Only the
// methods the helpers call are implemented; a failure panics, which fails the example.
type exampleT struct {
	testing.TB // nil; never reached
	cleanups   []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()                   {}
func (t *exampleT) Log(...any)                {}
func (t *exampleT) Logf(string, ...any)       {}
func (t *exampleT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (t *exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// done runs the cleanups, last registered first, as the testing package does.
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
