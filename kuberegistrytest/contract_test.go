package kuberegistrytest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// Both of kuberegistry's sources keep the Discovery contract.

func TestRegistryKeepsTheContract(t *testing.T) {
	kuberegistrytest.TestDiscovery(t, func(t *testing.T) *kuberegistrytest.Harness {
		client := fake.NewClientset()
		reg := kuberegistrytest.NewRegistry(t, client, "shop", "self")
		have := map[string]map[int]bool{} // service → the pods it has
		return &kuberegistrytest.Harness{
			Discovery: reg,
			Namespace: "shop",
			Close:     func() { _ = reg.Close() },
			SetInstances: func(t testing.TB, service string, ids ...int) {
				want := map[int]bool{}
				for _, id := range ids {
					want[id] = true
					if !have[service][id] {
						kuberegistrytest.ReadyPod(t, client, "shop", fmt.Sprintf("%s-%d", service, id),
							&kuberegistry.ServiceInstance{Name: service, Endpoints: []string{"grpc://:9000"}})
					}
				}
				for id := range have[service] {
					if !want[id] {
						err := client.CoreV1().Pods("shop").Delete(context.Background(), fmt.Sprintf("%s-%d", service, id), metav1.DeleteOptions{})
						if err != nil && !apierrors.IsNotFound(err) {
							t.Fatal(err)
						}
					}
				}
				have[service] = want
			},
		}
	})
}

func TestEndpointSliceDiscoveryKeepsTheContract(t *testing.T) {
	kuberegistrytest.TestDiscovery(t, func(t *testing.T) *kuberegistrytest.Harness {
		client := fake.NewClientset()
		d, err := kuberegistry.NewEndpointSliceDiscovery(client, kuberegistry.WithNamespace("shop"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		slices := client.DiscoveryV1().EndpointSlices("shop")
		return &kuberegistrytest.Harness{
			Discovery: d,
			Namespace: "shop",
			Close:     func() { _ = d.Close() },
			SetInstances: func(t testing.TB, service string, ids ...int) {
				slice := &discoveryv1.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Name: service + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports:       []discoveryv1.EndpointPort{{Name: new("grpc"), Port: new(int32(9000))}},
				}
				for _, id := range ids {
					slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.0.%d.%d", id/200, id%200+1)}})
				}
				ctx := context.Background()
				if _, err := slices.Update(ctx, slice, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
					_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
