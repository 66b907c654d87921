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

// A multi-port Service, discovered as Spring Cloud Kubernetes does: the primary port's endpoints,
// the Service's named ports and labels in metadata. The EndpointSlice controller copies a
// Service's labels onto its slices, which is where they are read from.
func ExampleWithPrimaryPort() {
	slice := webSlice("web-abcde", webPod("web-7d9c-1", "10.0.0.11", true))
	admin, grpc := "admin", "grpc"
	slice.Ports = append(slice.Ports,
		discoveryv1.EndpointPort{Name: &grpc, Port: new(int32(9000))},
		discoveryv1.EndpointPort{Name: &admin, Port: new(int32(9901))})
	slice.Labels["team"] = "storefront"
	d, err := kuberegistry.NewEndpointSliceDiscovery(fake.NewClientset(slice),
		kuberegistry.WithNamespace("shop"),
		kuberegistry.WithPrimaryPort("grpc"),
		kuberegistry.WithPortsMetadata(""),
		kuberegistry.WithServiceLabelsMetadata("label."))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	instances, _ := d.GetService(context.Background(), "web")
	in := instances[0]
	fmt.Println(in.ID, in.Endpoints)
	for _, k := range []string{"port.http", "port.grpc", "port.admin", "label.team", kuberegistry.MetadataKeyZone} {
		fmt.Printf("%s=%s\n", k, in.Metadata[k])
	}
	// Output:
	// web-7d9c-1 [grpc://10.0.0.11:9000]
	// port.http=8080
	// port.grpc=9000
	// port.admin=9901
	// label.team=storefront
	// kuberegistry.io/zone=eu-1a
}

// A Service's annotations in its instances' metadata. They live on the Service only, so this
// option makes the discovery read Services too (grant list and watch on services); a Service
// annotated secured=true has its endpoints marked secure, as go-kratos expects.
func ExampleWithServiceAnnotationsMetadata() {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web",
		Annotations: map[string]string{"owner": "storefront", "secured": "true"}}}
	client := fake.NewClientset(svc, webSlice("web-abcde", webPod("web-7d9c-1", "10.0.0.11", true)))
	d, err := kuberegistry.NewEndpointSliceDiscovery(client,
		kuberegistry.WithNamespace("shop"), kuberegistry.WithServiceAnnotationsMetadata("annotation."))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	instances, _ := d.GetService(context.Background(), "web")
	fmt.Println(instances[0].Endpoints, instances[0].Metadata["annotation.owner"])
	// Output:
	// [http://10.0.0.11:8080?isSecure=true] storefront
}
