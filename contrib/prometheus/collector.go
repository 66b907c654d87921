package prometheus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is what the collector reads: a kuberegistry.Registry or EndpointSliceDiscovery.
type Source interface {
	Stats() kuberegistry.Stats
	Status() kuberegistry.Status
}

// Option configures NewCollector.
type Option func(*Collector)

// WithConstLabels adds labels to every series, such as {"source": "pods"} when a process runs
// both discovery sources. Default: none.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *Collector) { c.constLabels = labels }
}

// WithServiceInstances adds kuberegistry_service_instances{service="…"}, one series per service:
// a scrape then lists the services and reads each one's snapshot. Off by default, since the
// number of series grows with the number of services (cardinality). The source must be a
// kuberegistry.Catalog.
func WithServiceInstances() Option {
	return func(c *Collector) { c.perService = true }
}

// Collector is a prometheus.Collector of a discovery source. It is safe for concurrent scrapes.
type Collector struct {
	source      Source
	constLabels prometheus.Labels
	perService  bool
	now         func() time.Time

	services, instances, watchers, synced            *prometheus.Desc
	events, publishes, lists, failures               *prometheus.Desc
	pods, watching, sinceEvent                       *prometheus.Desc
	registrations, registrationFailures, regDuration *prometheus.Desc
	serviceInstances                                 *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of source. It checks its options and makes no request.
func NewCollector(source Source, opts ...Option) (*Collector, error) {
	if source == nil {
		return nil, errors.New("kuberegistry/prometheus: the source is nil: pass a started kuberegistry.Registry or EndpointSliceDiscovery")
	}
	c := &Collector{source: source, now: time.Now}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("kuberegistry/prometheus: an option is nil")
		}
		opt(c)
	}
	if _, ok := source.(kuberegistry.Catalog); c.perService && !ok {
		return nil, fmt.Errorf("kuberegistry/prometheus: WithServiceInstances needs a kuberegistry.Catalog, and %T is not one", source)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kuberegistry_"+name, help, labels, c.constLabels)
	}
	c.services = desc("services", "Services with at least one instance.")
	c.instances = desc("instances", "Instances served, over all services.")
	c.watchers = desc("watchers", "Open Watch and WatchServices iterators.")
	c.synced = desc("synced", "1 when discovery has started and is not closed, else 0.")
	c.events = desc("events_total", "Informer events handled, by type.", "type")
	c.publishes = desc("publishes_total", "Changes of a service's instances handed to its watchers.")
	c.lists = desc("lists_total", "Successful lists: the initial ones and every relist.")
	c.failures = desc("list_watch_failures_total", "Failed lists and watches of the API server.")
	c.pods = desc("pods", "Registered pods in scope, by state (a Registry only).", "state")
	c.watching = desc("watching", "1 while the informer's list and watch are established, by namespace and resource.", "namespace", "resource")
	c.sinceEvent = desc("seconds_since_last_event", "Seconds since the informer last heard from the API server (a list, an event or a bookmark).", "namespace", "resource")
	c.registrations = desc("registration_requests_total", "Register and Deregister calls.", "operation")
	c.registrationFailures = desc("registration_failures_total", "Register and Deregister calls that failed.", "operation")
	c.regDuration = desc("registration_duration_seconds", "How long Register and Deregister took.", "operation")
	c.serviceInstances = desc("service_instances", "Instances of each service (WithServiceInstances).", "service")
	return c, nil
}

// Describe sends the descriptions of every series the collector may produce.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.services, c.instances, c.watchers, c.synced, c.events, c.publishes,
		c.lists, c.failures, c.pods, c.watching, c.sinceEvent, c.registrations, c.registrationFailures, c.regDuration} {
		ch <- d
	}
	if c.perService {
		ch <- c.serviceInstances
	}
}

// Collect reads the source's Stats and Status and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, st := c.source.Stats(), c.source.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.services, float64(s.Services))
	gauge(c.instances, float64(s.Instances))
	gauge(c.watchers, float64(s.Watchers))
	gauge(c.synced, boolValue(st.Synced))
	counter(c.events, s.Adds, "add")
	counter(c.events, s.Updates, "update")
	counter(c.events, s.Deletes, "delete")
	counter(c.publishes, s.Publishes)
	counter(c.lists, s.Lists)
	counter(c.failures, s.Failures)
	for state, n := range s.PodsByState {
		gauge(c.pods, float64(n), state)
	}
	now := c.now()
	for _, in := range st.Informers {
		gauge(c.watching, boolValue(in.Watching), in.Namespace, in.Resource)
		if !in.LastEvent.IsZero() {
			gauge(c.sinceEvent, now.Sub(in.LastEvent).Seconds(), in.Namespace, in.Resource)
		}
	}
	if s.PodsByState != nil { // a Registry: it registers
		for op, r := range map[string]kuberegistry.RequestStats{"register": s.Register, "deregister": s.Deregister} {
			counter(c.registrations, r.Calls, op)
			counter(c.registrationFailures, r.Failures, op)
			buckets := make(map[float64]uint64, len(r.Buckets))
			for i, b := range r.Buckets {
				buckets[kuberegistry.LatencyBuckets[i]] = b
			}
			ch <- prometheus.MustNewConstHistogram(c.regDuration, r.Calls, r.Seconds, buckets, op)
		}
	}
	if c.perService {
		catalog := c.source.(kuberegistry.Catalog)
		names, err := catalog.Services(context.Background())
		if err != nil {
			return // not started, or closed: no service to report
		}
		for _, name := range names {
			if instances, err := catalog.GetService(context.Background(), name); err == nil {
				gauge(c.serviceInstances, float64(len(instances)), name)
			}
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
