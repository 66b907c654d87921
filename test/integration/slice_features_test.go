package integration

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// sliceReader is the Role a client of plain Services needs (the README's): list and watch
// EndpointSlices, nothing on pods or Services.
var sliceReader = &rbacv1.Role{
	ObjectMeta: metav1.ObjectMeta{Name: "endpointslice-reader"},
	Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{discoveryv1.GroupName}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"},
	}},
}

// createService creates a Service as a user would; the test writes its slices itself, as the
// EndpointSlice controller (absent here) would, with the Service's labels copied onto them.
func createService(t *testing.T, ns, name string, labels map[string]string, headless bool) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	if _, err := adminClient(t).CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Service %s/%s: %v", ns, name, err)
	}
}

// labelled copies a Service's labels onto its slice, as the EndpointSlice controller does.
func labelled(s *discoveryv1.EndpointSlice, labels map[string]string) *discoveryv1.EndpointSlice {
	maps.Copy(s.Labels, labels)
	return s
}

func port(name string, number int32, appProtocol string) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: &number}
	if name != "" {
		p.Name = &name
	}
	if appProtocol != "" {
		p.AppProtocol = &appProtocol
	}
	return p
}

// The Service source at parity with Spring Cloud Kubernetes, on the real API server: several
// namespaces with namespaced Roles only, a label selector on Services, ports and labels in
// metadata, zone hints, the secured label, a headless Service without a selector whose only port
// has no known protocol, an empty slice that must not blank its Service out, and a primary port.
func TestServiceSourceParity(t *testing.T) {
	east, west := sliceNamespace(t), sliceNamespace(t)
	front := map[string]string{"tier": "front"}
	secured := map[string]string{"tier": "front", "secured": "true"}
	createService(t, east, "web", front, false)
	createService(t, west, "web", secured, false)
	createService(t, east, "db", map[string]string{"tier": "data"}, false)
	createService(t, east, "legacy", front, true)

	web := serviceSlice(east, "web-a", "web", readyEndpoint("web-0", "10.30.0.1"))
	web.Ports = []discoveryv1.EndpointPort{port("http", 8080, ""), port("admin", 9000, ""), port("metrics", 9090, "http")}
	web.Endpoints[0].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-a"}}}
	createSlice(t, labelled(web, front))
	empty := serviceSlice(east, "web-empty", "web") // no endpoints, no ports: as for a Service with none
	empty.Ports = nil
	createSlice(t, labelled(empty, front))
	createSlice(t, labelled(serviceSlice(west, "web-b", "web", readyEndpoint("web-1", "10.30.1.1"), notReadyEndpoint("web-2", "10.30.1.2")), secured))
	createSlice(t, labelled(serviceSlice(east, "db-a", "db", readyEndpoint("db-0", "10.30.0.9")), map[string]string{"tier": "data"}))
	legacy := serviceSlice(east, "legacy-1", "legacy", discoveryv1.Endpoint{Addresses: []string{"192.0.2.7"}})
	legacy.Labels[discoveryv1.LabelManagedBy] = "staff" // a slice written by hand for a Service without a selector
	legacy.Ports = []discoveryv1.EndpointPort{port("", 5432, "")}
	createSlice(t, labelled(legacy, front))

	for _, ns := range []string{east, west} {
		grant(t, ns, "services-client", sliceReader)
	}
	user := userClient(t, "services-client")
	eventually(t, func() error {
		_, err := user.DiscoveryV1().EndpointSlices(west).List(t.Context(), metav1.ListOptions{})
		return err
	})
	start := func(opts ...kuberegistry.Option) *kuberegistry.EndpointSliceDiscovery {
		d, err := kuberegistry.NewEndpointSliceDiscovery(user, append([]kuberegistry.Option{
			kuberegistry.WithNamespaces(east, west), kuberegistry.WithLabelSelector("tier=front")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := d.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		return d
	}

	d := start(kuberegistry.WithPortsMetadata(""), kuberegistry.WithServiceLabelsMetadata("label."), kuberegistry.WithSecurePorts(9090))
	all := waitFor(t, d, "web", "http://10.30.0.1:8080", "http://10.30.0.1:9090?isSecure=true", "http://10.30.1.1:8080?isSecure=true")
	var eastWeb *kuberegistry.ServiceInstance
	for _, in := range all {
		if in.Metadata[kuberegistry.MetadataKeyNamespace] == east {
			eastWeb = in
		}
	}
	want := map[string]string{
		kuberegistry.MetadataKeyNamespace: east, kuberegistry.MetadataKeyZone: "zone-a", kuberegistry.MetadataKeyNode: "node-1",
		kuberegistry.MetadataKeyZoneHints: "zone-a", "port.http": "8080", "port.admin": "9000", "port.metrics": "9090",
		"label.tier": "front",
	}
	if eastWeb == nil || !maps.Equal(eastWeb.Metadata, want) {
		t.Errorf("east's web instance: %+v, want metadata %v", eastWeb, want)
	}
	waitFor(t, d, "web."+west, "http://10.30.1.1:8080?isSecure=true")
	waitFor(t, d, "legacy", "tcp://192.0.2.7:5432")
	names, err := d.Services(t.Context())
	if err != nil || !slices.Equal(names, []string{"legacy", "web"}) {
		t.Errorf("Services = %v, %v; want legacy and web (db is not tier=front)", names, err)
	}

	everyone := start(kuberegistry.WithIncludeNotReady())
	waitFor(t, everyone, "web."+west, "http://10.30.1.1:8080?isSecure=true", "http://10.30.1.2:8080?isSecure=true")

	primary := start(kuberegistry.WithPrimaryPort("admin"))
	waitFor(t, primary, "web."+east, "tcp://10.30.0.1:9000")
	waitFor(t, primary, "web."+west, "http://10.30.1.1:8080?isSecure=true") // it has no port admin

	// Annotations live on the Service only: reading them needs list and watch on Services, and
	// a client without that permission is told so at Start.
	if _, err := adminClient(t).CoreV1().Services(east).Patch(t.Context(), "web", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"owner":"storefront","secured":"true"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	notes, err := kuberegistry.NewEndpointSliceDiscovery(user, kuberegistry.WithNamespaces(east, west),
		kuberegistry.WithServiceAnnotationsMetadata("note."))
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var perm *kuberegistry.PermissionError
	if err := notes.Start(ctx); !errors.As(err, &perm) || perm.Resource != "services" || perm.Verb != "list" {
		t.Fatalf("Start without permission on Services = %v; want a PermissionError for list services", err)
	}
	t.Logf("Start said: %v", perm)
	serviceReader := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "service-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}}},
	}
	for _, ns := range []string{east, west} {
		grant(t, ns, "services-client", serviceReader)
	}
	eventually(t, func() error {
		_, err := user.CoreV1().Services(west).List(t.Context(), metav1.ListOptions{})
		return err
	})
	annotated := start(kuberegistry.WithServiceAnnotationsMetadata("note."))
	got := waitFor(t, annotated, "web."+east, "http://10.30.0.1:8080?isSecure=true", "http://10.30.0.1:9090?isSecure=true")
	if got[0].Metadata["note.owner"] != "storefront" {
		t.Errorf("metadata %v lacks the Service's annotation note.owner", got[0].Metadata)
	}
}
