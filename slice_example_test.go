package kuberegistry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// webSlice is an EndpointSlice as the EndpointSlice controller writes it for Service "web" in
// namespace "shop", whose port 80 is named "http" and targets the pods' port 8080.
func webSlice(name string, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	portName, port := "http", int32(8080)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop",
			Name:      name,
			Labels:    map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
		Endpoints:   endpoints,
	}
}

// webPod is the endpoint of a pod of Service "web"; ready is its ready condition.
func webPod(pod, ip string, ready bool) discoveryv1.Endpoint {
	zone := "eu-1a"
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: pod},
		Zone:       &zone,
	}
}

// A client discovers a plain Kubernetes Service, an ordinary Deployment that never registered,
// from its EndpointSlices. In a cluster, the client comes from kubernetes.NewForConfig and the
// namespace defaults to the pod's own.
func ExampleNewEndpointSliceDiscovery() {
	client := fake.NewClientset(
		webSlice("web-abcde", webPod("web-7d9c-1", "10.0.0.11", true), webPod("web-7d9c-2", "10.0.0.12", false)),
		webSlice("web-fghij", webPod("web-7d9c-3", "10.0.0.13", true)),
	)
	d, err := kuberegistry.NewEndpointSliceDiscovery(client, kuberegistry.WithNamespace("shop"))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		panic(err)
	}

	instances, err := d.GetService(ctx, "web") // the ready endpoints of every slice
	if err != nil {
		panic(err)
	}
	for _, in := range instances {
		fmt.Println(in.ID, in.Endpoints, in.Metadata[kuberegistry.MetadataKeyZone])
	}
	// Output:
	// web-7d9c-1 [http://10.0.0.11:8080] eu-1a
	// web-7d9c-3 [http://10.0.0.13:8080] eu-1a
}

// A watcher over a Service follows its EndpointSlices: here a pod turns not ready.
func ExampleEndpointSliceDiscovery_Watch() {
	client := fake.NewClientset(webSlice("web-abcde", webPod("web-7d9c-1", "10.0.0.11", true), webPod("web-7d9c-2", "10.0.0.12", true)))
	d, err := kuberegistry.NewEndpointSliceDiscovery(client, kuberegistry.WithNamespace("shop"))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		panic(err)
	}
	w, err := d.Watch(ctx, "web")
	if err != nil {
		panic(err)
	}
	defer w.Stop()

	instances, _ := w.Next() // at once: the current set
	fmt.Println("before:", len(instances))
	_, err = client.DiscoveryV1().EndpointSlices("shop").Update(ctx,
		webSlice("web-abcde", webPod("web-7d9c-1", "10.0.0.11", true), webPod("web-7d9c-2", "10.0.0.12", false)),
		metav1.UpdateOptions{})
	if err != nil {
		panic(err)
	}
	instances, _ = w.Next() // blocks until the set changes
	fmt.Println("after:", len(instances), instances[0].ID)
	// Output:
	// before: 2
	// after: 1 web-7d9c-1
}
