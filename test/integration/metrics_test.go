package integration

import (
	"fmt"
	"sync"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	kuberegistryprometheus "github.com/kuberegistry/kuberegistry/contrib/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
)

// The collector scraped while pods churn on the real API server: lint-clean, and once the churn
// ends its gauges agree with GetService and its counters with what happened.
func TestMetricsWhilePodsChurn(t *testing.T) {
	ns := newNamespace(t)
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
	collector, err := kuberegistryprometheus.NewCollector(reg, kuberegistryprometheus.WithServiceInstances())
	if err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(collector)

	done := make(chan struct{})
	var wg sync.WaitGroup
	scrapes := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				if _, err := registry.Gather(); err != nil {
					t.Errorf("scrape: %v", err)
					return
				}
				scrapes++
			}
		}
	})
	for i := range 12 {
		readyPod(t, ns, fmt.Sprintf("cart-%d", i), "cart", fmt.Sprintf("10.50.0.%d", i+1))
	}
	for i := range 4 {
		setPodStatus(t, ns, fmt.Sprintf("cart-%d", i), corev1.PodRunning, false, fmt.Sprintf("10.50.0.%d", i+1))
	}
	close(done)
	wg.Wait()
	want := make([]string, 0, 8)
	for i := 4; i < 12; i++ {
		want = append(want, fmt.Sprintf("grpc://10.50.0.%d:9000", i+1))
	}
	waitFor(t, reg, "cart", want...)

	if problems, err := testutil.CollectAndLint(collector); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			values[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"kuberegistry_instances":                                   8,
		"kuberegistry_service_instances,service=cart":              8,
		"kuberegistry_pods,state=ready":                            8,
		"kuberegistry_pods,state=not-ready":                        4,
		"kuberegistry_synced":                                      1,
		"kuberegistry_list_watch_failures_total":                   0,
		"kuberegistry_lists_total":                                 1,
		"kuberegistry_watching,namespace=" + ns + ",resource=pods": 1,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if values["kuberegistry_events_total,type=update"] < 4 {
		t.Errorf("update events = %v, want at least the 4 readiness flips", values["kuberegistry_events_total,type=update"])
	}
	t.Logf("%d scrapes during the churn", scrapes)
}
