package main

import (
	"fmt"

	kuberegistryprometheus "github.com/kuberegistry/kuberegistry/contrib/prometheus"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newMetrics returns the registry /metrics serves: each source's kuberegistry_* series, labelled
// source="pods" or source="services" (both sources have the same series), the xDS server's
// kuberegistry_xds_* series, and the Go runtime's and the process's. Everything is read at scrape
// time from counters the library keeps: a scrape costs the same whatever the fleet.
func newMetrics(sources []namedSource, server *xds.Server) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, s := range sources {
		c, err := kuberegistryprometheus.NewCollector(s.source, kuberegistryprometheus.WithConstLabels(prometheus.Labels{"source": s.name}))
		if err != nil {
			return nil, fmt.Errorf("metrics of %s discovery: %w", s.name, err)
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics of %s discovery: %w", s.name, err)
		}
	}
	for _, c := range []prometheus.Collector{
		newServerCollector(server.Stats),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

// serverCollector turns the xDS server's Stats into metrics at scrape time.
type serverCollector struct {
	stats                                func() xds.ServerStats
	streams, services, resources         *prometheus.Desc
	updates, pushes, requests, rejection *prometheus.Desc
}

func newServerCollector(stats func() xds.ServerStats) *serverCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kuberegistry_xds_"+name, help, nil, nil)
	}
	return &serverCollector{
		stats:     stats,
		streams:   desc("streams", "Open xDS streams, ADS or per type: about one per connected client."),
		services:  desc("services", "Services served with at least one instance, by their plain names."),
		resources: desc("resources", "Names served (plain and namespaced), each a Listener, a RouteConfiguration, a Cluster and a ClusterLoadAssignment."),
		updates:   desc("updates_total", "Changes of a served name written to the xDS caches."),
		pushes:    desc("pushes_total", "xDS responses sent to clients."),
		requests:  desc("requests_total", "xDS requests received from clients: subscriptions, ACKs and NACKs."),
		rejection: desc("nacks_total", "xDS responses a client rejected (each is logged)."),
	}
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streams, c.services, c.resources, c.updates, c.pushes, c.requests, c.rejection} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.streams, s.Streams)
	gauge(c.services, s.Services)
	gauge(c.resources, s.Resources)
	counter(c.updates, s.Updates)
	counter(c.pushes, s.Pushes)
	counter(c.requests, s.Requests)
	counter(c.rejection, s.NACKs)
}
