package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry"
	kuberegistryprometheus "github.com/kuberegistry/kuberegistry/contrib/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes/fake"
)

// Wiring the collector into an HTTP mux, next to a health endpoint; in a cluster the registry
// comes from kuberegistry.NewForConfig.
func ExampleNewCollector() {
	reg, err := kuberegistry.New(fake.NewClientset(), kuberegistry.WithNamespace("shop"))
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	if err := reg.Start(context.Background()); err != nil {
		panic(err)
	}
	collector, err := kuberegistryprometheus.NewCollector(reg)
	if err != nil {
		panic(err)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collector)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := reg.Check(2 * time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	server := httptest.NewServer(mux)
	defer server.Close()

	resp, err := http.Get(server.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "kuberegistry_synced") || strings.HasPrefix(line, "kuberegistry_instances") {
			fmt.Println(line)
		}
	}
	// Output:
	// kuberegistry_instances 0
	// kuberegistry_synced 1
}
