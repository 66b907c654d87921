package kuberegistry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// servicePod is a ready pod of service at ip, registered with a grpc port, with extra labels.
func servicePod(namespace, name, service, ip string, labels ...string) *corev1.Pod {
	pod := runningPod(namespace, name)
	pod.UID = types.UID(namespace + "/" + name)
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Labels = map[string]string{kuberegistry.LabelsKeyServiceName: service}
	for i := 0; i+1 < len(labels); i += 2 {
		pod.Labels[labels[i]] = labels[i+1]
	}
	pod.Annotations = map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc"}`}
	pod.Spec.Containers = []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 9000}}}}
	return pod
}

// mustStart starts a registry over the pods, for the examples.
func mustStart(pods []*corev1.Pod, opts ...kuberegistry.Option) *kuberegistry.Registry {
	client := fake.NewClientset()
	for _, p := range pods {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	reg, err := kuberegistry.New(client, opts...)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		panic(err)
	}
	return reg
}

// Discover several namespaces, each with its own informer (a Role per namespace suffices), and
// pick one namespace's instances with "service.namespace".
func ExampleWithNamespaces() {
	reg := mustStart([]*corev1.Pod{
		servicePod("east", "cart-0", "cart", "10.0.1.1"),
		servicePod("west", "cart-0", "cart", "10.0.2.1"),
	}, kuberegistry.WithNamespaces("east", "west"))
	defer reg.Close()
	all, _ := reg.GetService(context.Background(), "cart")
	for _, in := range all {
		fmt.Println(in.Endpoints, in.Metadata[kuberegistry.MetadataKeyNamespace])
	}
	west, _ := reg.GetService(context.Background(), "cart.west")
	fmt.Println("cart.west:", west[0].Endpoints)
	// Output:
	// [grpc://10.0.1.1:9000] east
	// [grpc://10.0.2.1:9000] west
	// cart.west: [grpc://10.0.2.1:9000]
}

// List every service with at least one instance.
func ExampleRegistry_Services() {
	reg := mustStart([]*corev1.Pod{
		servicePod("shop", "web-0", "web", "10.0.0.1"),
		servicePod("shop", "cart-0", "cart", "10.0.0.2"),
	}, kuberegistry.WithNamespace("shop"))
	defer reg.Close()
	names, _ := reg.Services(context.Background())
	fmt.Println(names)
	// Output: [cart web]
}

// Watch the whole catalog: Next returns every service's instances whenever any of them changes.
func ExampleRegistry_WatchServices() {
	reg := mustStart([]*corev1.Pod{servicePod("shop", "web-0", "web", "10.0.0.1")}, kuberegistry.WithNamespace("shop"))
	defer reg.Close()
	w, _ := reg.WatchServices(context.Background())
	defer w.Stop()
	catalog, _ := w.Next()
	for name, instances := range catalog {
		fmt.Println(name, instances[0].Endpoints)
	}
	// Output: web [grpc://10.0.0.1:9000]
}

// Discover only the pods a label selector matches.
func ExampleWithLabelSelector() {
	reg := mustStart([]*corev1.Pod{
		servicePod("shop", "cart-stable", "cart", "10.0.0.1", "track", "stable"),
		servicePod("shop", "cart-canary", "cart", "10.0.0.2", "track", "canary"),
	}, kuberegistry.WithNamespace("shop"), kuberegistry.WithLabelSelector("track!=canary"))
	defer reg.Close()
	instances, _ := reg.GetService(context.Background(), "cart")
	fmt.Println(len(instances), instances[0].Endpoints)
	// Output: 1 [grpc://10.0.0.1:9000]
}

// Serve every live pod, ready or not.
func ExampleWithIncludeNotReady() {
	warming := servicePod("shop", "cart-1", "cart", "10.0.0.2")
	warming.Status.Conditions[0].Status = corev1.ConditionFalse
	reg := mustStart([]*corev1.Pod{servicePod("shop", "cart-0", "cart", "10.0.0.1"), warming},
		kuberegistry.WithNamespace("shop"), kuberegistry.WithIncludeNotReady())
	defer reg.Close()
	instances, _ := reg.GetService(context.Background(), "cart")
	fmt.Println(len(instances))
	// Output: 2
}

// Add the pod's labels and named ports to each instance's metadata.
func ExampleWithPortsMetadata() {
	reg := mustStart([]*corev1.Pod{servicePod("shop", "cart-0", "cart", "10.0.0.1", "tier", "backend")},
		kuberegistry.WithNamespace("shop"), kuberegistry.WithPortsMetadata(""), kuberegistry.WithPodLabelsMetadata("label."))
	defer reg.Close()
	instances, _ := reg.GetService(context.Background(), "cart")
	fmt.Println(instances[0].Metadata["port.grpc"], instances[0].Metadata["label.tier"])
	// Output: 9000 backend
}

// Mark the endpoints of chosen ports secure (default: 443 and 8443).
func ExampleWithSecurePorts() {
	reg := mustStart([]*corev1.Pod{servicePod("shop", "cart-0", "cart", "10.0.0.1")},
		kuberegistry.WithNamespace("shop"), kuberegistry.WithSecurePorts(9000))
	defer reg.Close()
	instances, _ := reg.GetService(context.Background(), "cart")
	fmt.Println(instances[0].Endpoints)
	// Output: [grpc://10.0.0.1:9000?isSecure=true]
}
