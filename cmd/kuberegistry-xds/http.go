package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newHTTPHandler serves the probes and the metrics:
//
//	/healthz  liveness: 200 while the process answers
//	/readyz   readiness: 200 once every source is synced and fresh and xDS is served; else 503
//	          and the reason (a *kuberegistry.PermissionError's text when RBAC refuses)
//	/metrics  Prometheus text: each source's kuberegistry_* series, the xDS server's
//	          kuberegistry_xds_* series, and the Go runtime's and the process's
func newHTTPHandler(p *probes, metrics *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", p.healthz)
	mux.HandleFunc("GET /readyz", p.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return mux
}
