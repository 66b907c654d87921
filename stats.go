package kuberegistry

import (
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/cache"
)

// Stats is a snapshot of a discovery source's counters, for metrics (contrib/prometheus reads it
// at scrape time). Taking it costs a few locks and no walk over pods or services; keeping it costs
// the event path an atomic add.
type Stats struct {
	Services  int // services with at least one instance
	Instances int // instances served, over all services
	Watchers  int // open Watch and WatchServices iterators

	Adds, Updates, Deletes uint64 // informer events handled
	Publishes              uint64 // changes of a service's set handed to its watchers

	Lists    uint64 // successful lists: the initial ones and every relist
	Failures uint64 // failed lists and watches

	// PodsByState counts the registered pods in scope by what keeps them from serving, or not:
	// "ready", "not-ready", "terminating", "serving-terminating", "not-running" (pending,
	// finished or without an IP) and "malformed" (a registration discovery cannot read). A
	// Registry only; nil for an EndpointSliceDiscovery.
	PodsByState map[string]int

	// Register and Deregister are the registry's registration requests. A Registry only.
	Register, Deregister RequestStats
}

// RequestStats counts calls of Register or Deregister and how long they took, in the buckets of
// LatencyBuckets.
type RequestStats struct {
	Calls, Failures uint64
	Seconds         float64  // total duration
	Buckets         []uint64 // cumulative counts: Buckets[i] calls took at most LatencyBuckets[i]
}

// LatencyBuckets are the upper bounds, in seconds, of RequestStats.Buckets (Prometheus's
// default buckets).
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// requestCounters are the live counters behind a RequestStats.
type requestCounters struct {
	calls, failures, nanos atomic.Uint64
	buckets                [12]atomic.Uint64 // one per LatencyBuckets entry, and +Inf
}

func (c *requestCounters) observe(d time.Duration, err error) {
	c.calls.Add(1)
	if err != nil {
		c.failures.Add(1)
	}
	c.nanos.Add(uint64(d))
	i := 0
	for i < len(LatencyBuckets) && d.Seconds() > LatencyBuckets[i] {
		i++
	}
	c.buckets[i].Add(1)
}

func (c *requestCounters) snapshot() RequestStats {
	s := RequestStats{Calls: c.calls.Load(), Failures: c.failures.Load(),
		Seconds: time.Duration(c.nanos.Load()).Seconds(), Buckets: make([]uint64, len(LatencyBuckets))}
	var cumulative uint64
	for i := range LatencyBuckets {
		cumulative += c.buckets[i].Load()
		s.Buckets[i] = cumulative
	}
	return s
}

// eventCounters count the events a source's informers deliver.
type eventCounters struct{ adds, updates, deletes atomic.Uint64 }

// counted wraps a source's handler so that each event is counted; it never blocks.
type counted struct {
	cache.ResourceEventHandler
	c *eventCounters
}

func (h counted) OnAdd(obj any, initial bool) {
	h.c.adds.Add(1)
	h.ResourceEventHandler.OnAdd(obj, initial)
}

func (h counted) OnUpdate(oldObj, newObj any) {
	h.c.updates.Add(1)
	h.ResourceEventHandler.OnUpdate(oldObj, newObj)
}

func (h counted) OnDelete(obj any) {
	h.c.deletes.Add(1)
	h.ResourceEventHandler.OnDelete(obj)
}

// stats is what both sources' Stats share.
func (l *lifecycle) stats() Stats {
	var s Stats
	s.Services, s.Instances, s.Watchers, s.Publishes = l.catalog.counts()
	s.Adds, s.Updates, s.Deletes = l.events.adds.Load(), l.events.updates.Load(), l.events.deletes.Load()
	l.mu.Lock()
	health := l.health
	l.mu.Unlock()
	for _, h := range health {
		lists, failures := h.counts()
		s.Lists += lists
		s.Failures += failures
	}
	return s
}

// podStateNames names the pod states in Stats.PodsByState; the last is a malformed registration.
var podStateNames = [...]string{
	podUnusable: "not-running", podNotReady: "not-ready", podTerminating: "terminating",
	podServingTerminating: "serving-terminating", podReady: "ready", podReady + 1: "malformed",
}

// podStateCounters count the registered pods in scope by state; the handler keeps them.
type podStateCounters [len(podStateNames)]atomic.Int64

// add counts e in (n = 1) or out (n = -1).
func (c *podStateCounters) add(e *podEntry, n int64) {
	i := int(e.state)
	if e.problem() != "" {
		i = len(podStateNames) - 1
	}
	c[i].Add(n)
}

func (c *podStateCounters) snapshot() map[string]int {
	m := make(map[string]int, len(podStateNames))
	for i, name := range podStateNames {
		m[name] = int(c[i].Load())
	}
	return m
}

func (c *podStateCounters) reset() {
	for i := range c {
		c[i].Store(0)
	}
}

// Stats returns a snapshot of the registry's counters.
func (r *Registry) Stats() Stats {
	s := r.life.stats()
	s.PodsByState = r.podStates.snapshot()
	s.Register, s.Deregister = r.registers.snapshot(), r.deregisters.snapshot()
	return s
}

// Stats returns a snapshot of the discovery's counters; PodsByState and the request counters are
// a Registry's only.
func (d *EndpointSliceDiscovery) Stats() Stats { return d.life.stats() }
