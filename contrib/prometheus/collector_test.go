package prometheus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
)

func greeter(id string) *kuberegistry.ServiceInstance {
	return &kuberegistry.ServiceInstance{ID: id, Name: "greeter", Endpoints: []string{"grpc://:9000"}}
}

func TestCollectorPassesLintAndCounts(t *testing.T) {
	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "self")
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", greeter("greeter-0"))
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-1", greeter("greeter-1"))
	kuberegistrytest.WaitForInstances(t, reg, "greeter", "greeter-0", "greeter-1")
	require.NoError(t, reg.Register(context.Background(), greeter("self")))
	kuberegistrytest.WaitForInstances(t, reg, "greeter", "greeter-0", "greeter-1", "self")

	c, err := NewCollector(reg, WithConstLabels(prometheus.Labels{"source": "pods"}), WithServiceInstances())
	require.NoError(t, err)
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems, "metric names and help follow Prometheus conventions")

	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP kuberegistry_instances Instances served, over all services.
# TYPE kuberegistry_instances gauge
kuberegistry_instances{source="pods"} 3
# HELP kuberegistry_service_instances Instances of each service (WithServiceInstances).
# TYPE kuberegistry_service_instances gauge
kuberegistry_service_instances{service="greeter",source="pods"} 3
# HELP kuberegistry_pods Registered pods in scope, by state (a Registry only).
# TYPE kuberegistry_pods gauge
kuberegistry_pods{source="pods",state="malformed"} 0
kuberegistry_pods{source="pods",state="not-ready"} 0
kuberegistry_pods{source="pods",state="not-running"} 0
kuberegistry_pods{source="pods",state="ready"} 3
kuberegistry_pods{source="pods",state="serving-terminating"} 0
kuberegistry_pods{source="pods",state="terminating"} 0
# HELP kuberegistry_synced 1 when discovery has started and is not closed, else 0.
# TYPE kuberegistry_synced gauge
kuberegistry_synced{source="pods"} 1
`), "kuberegistry_instances", "kuberegistry_service_instances", "kuberegistry_pods", "kuberegistry_synced"))
	assert.Equal(t, 1.0, testutil.ToFloat64(filter(c, "kuberegistry_registration_requests_total", `operation="register"`)))
}

// Scrapes while pods churn: never a panic or a race, and once the churn ends the gauges agree
// with GetService.
func TestCollectorScrapedWhilePodsChurn(t *testing.T) {
	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "self")
	c, err := NewCollector(reg, WithServiceInstances())
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				testutil.CollectAndCount(c)
			}
		}
	})
	for i := range 20 {
		name := fmt.Sprintf("greeter-%d", i)
		kuberegistrytest.ReadyPod(t, client, "shop", name, greeter(name))
		if i%3 == 0 {
			kuberegistrytest.SetReady(t, client, "shop", name, false)
		}
	}
	close(done)
	wg.Wait()
	want := make([]string, 0, 13)
	for i := range 20 {
		if i%3 != 0 {
			want = append(want, fmt.Sprintf("greeter-%d", i))
		}
	}
	kuberegistrytest.WaitForInstances(t, reg, "greeter", want...)
	assert.Equal(t, 13.0, testutil.ToFloat64(filter(c, "kuberegistry_instances", "")))
	assert.Equal(t, 7.0, testutil.ToFloat64(filter(c, "kuberegistry_pods", `state="not-ready"`)))
}

func TestCollectorOnTheServiceSource(t *testing.T) {
	d, err := kuberegistry.NewEndpointSliceDiscovery(fake.NewClientset(), kuberegistry.WithNamespace("shop"))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.Start(context.Background()))
	c, err := NewCollector(d)
	require.NoError(t, err)
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Zero(t, testutil.CollectAndCount(c, "kuberegistry_pods", "kuberegistry_registration_requests_total"),
		"no pod or registration series for Services")
}

// statsOnly is a Source that is no Catalog.
type statsOnly struct{}

func (statsOnly) Stats() kuberegistry.Stats   { return kuberegistry.Stats{} }
func (statsOnly) Status() kuberegistry.Status { return kuberegistry.Status{} }

func TestNewCollectorRejectsBadInput(t *testing.T) {
	_, err := NewCollector(nil)
	assert.ErrorContains(t, err, "the source is nil")
	_, err = NewCollector(statsOnly{}, WithServiceInstances())
	assert.ErrorContains(t, err, "WithServiceInstances needs a kuberegistry.Catalog")
	_, err = NewCollector(statsOnly{}, nil)
	assert.ErrorContains(t, err, "an option is nil")
}

// filter is a collector of the series of c named name whose labels contain match.
func filter(c prometheus.Collector, name, match string) prometheus.Collector {
	return filtered{c, name, match}
}

type filtered struct {
	c           prometheus.Collector
	name, match string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.c.Collect(all)
		close(all)
	}()
	for m := range all {
		d := m.Desc().String()
		if strings.Contains(d, `"`+f.name+`"`) && (f.match == "" || strings.Contains(labelsOf(m), f.match)) {
			ch <- m
		}
	}
}
