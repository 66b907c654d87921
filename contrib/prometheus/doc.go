// Package prometheus exports a kuberegistry discovery source's health and counters as Prometheus
// metrics. NewCollector reads the source's Stats and Status at scrape time: nothing is pushed from
// the informers' event path, and a scrape costs the same however many pods and services there are
// (unless WithServiceInstances asks for one series per service).
//
//	reg, _ := kuberegistry.NewForConfig(cfg)
//	collector, _ := kuberegistryprometheus.NewCollector(reg)
//	prometheus.MustRegister(collector)
//	http.Handle("/metrics", promhttp.Handler())
//
// The package is named prometheus, like the client library: import it under another name.
package prometheus
