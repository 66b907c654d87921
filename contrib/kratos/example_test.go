package kratos_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/kuberegistry/kuberegistry"
	kuberegistrykratos "github.com/kuberegistry/kuberegistry/contrib/kratos"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// runningPod is the pod this example pretends to run in: running, ready, at 10.0.0.7.
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

// kratos.App registers the instance it builds from its servers; clients discover it. In a
// cluster, the client comes from kubernetes.NewForConfig and the pod from the Downward API.
func Example() {
	client := fake.NewClientset(runningPod("shop", "greeter-0"))
	reg, err := kuberegistry.New(client, kuberegistry.WithPod("shop", "greeter-0"))
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		panic(err)
	}
	r, err := kuberegistrykratos.New(reg) // for kratos.Registrar(r) and the clients' WithDiscovery(r)
	if err != nil {
		panic(err)
	}

	// What kratos.App passes to Register: its servers' endpoints, with the host they listen on.
	err = r.Register(ctx, &registry.ServiceInstance{
		ID: "greeter-0", Name: "greeter", Version: "v1.0.0", Metadata: map[string]string{"zone": "eu-1"},
		Endpoints: []string{"grpc://0.0.0.0:9000", "http://0.0.0.0:8000"},
	})
	if err != nil {
		panic(err)
	}
	instances, err := r.GetService(ctx, "greeter")
	if err != nil {
		panic(err)
	}
	for _, in := range instances {
		fmt.Println(in.ID, in.Version, in.Metadata, in.Endpoints)
	}
	// Output: greeter-0 v1.0.0 map[zone:eu-1] [http://10.0.0.7:8000 grpc://10.0.0.7:9000]
}

// A watcher's Next blocks until the set changes; after Stop it fails with an error matching
// context.Canceled, which is what ends go-kratos's resolver loops.
func ExampleRegistry_Watch() {
	client := fake.NewClientset(runningPod("shop", "greeter-0"))
	reg, _ := kuberegistry.New(client, kuberegistry.WithPod("shop", "greeter-0"))
	defer reg.Close()
	ctx := context.Background()
	if err := reg.Start(ctx); err != nil {
		panic(err)
	}
	r, _ := kuberegistrykratos.New(reg)
	w, err := r.Watch(ctx, "greeter")
	if err != nil {
		panic(err)
	}
	instances, _ := w.Next()
	fmt.Println("instances:", len(instances))
	_ = r.Register(ctx, &registry.ServiceInstance{Name: "greeter", Endpoints: []string{"grpc://:9000"}})
	instances, _ = w.Next()
	fmt.Println("after Register:", instances[0].Endpoints)
	_ = w.Stop()
	_, err = w.Next()
	fmt.Println("after Stop:", errors.Is(err, context.Canceled))
	// Output:
	// instances: 0
	// after Register: [grpc://10.0.0.7:9000]
	// after Stop: true
}
