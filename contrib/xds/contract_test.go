package xds

import (
	"context"
	"fmt"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// Discovery keeps the kuberegistry.Discovery contract: a Registry on the fake clientset, served
// by a Server on a loopback port, read by a Discovery over ADS.
func TestDiscoveryKeepsTheContract(t *testing.T) {
	kuberegistrytest.TestDiscovery(t, func(t *testing.T) *kuberegistrytest.Harness {
		client := fake.NewClientset()
		reg := kuberegistrytest.NewRegistry(t, client, "shop", "self")
		tr := startTier(t, "127.0.0.1:0", reg)
		d := newDiscovery(t, tr.addr)
		have := map[string]map[int]bool{} // service → the pods it has
		return &kuberegistrytest.Harness{
			Discovery: d,
			Namespace: "shop",
			Close:     func() { _ = d.Close() },
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
