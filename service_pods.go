package kuberegistry

import (
	"slices"
	"strings"
)

// servicePods is one service's cached pods and the sorted sets it serves, kept up to date one pod
// at a time: a change to one pod costs O(log n) comparisons and one copy of the published slice of
// pointers, whatever the number n of the service's pods, instead of gathering and sorting all n.
// Only the readiness policy's switch between its two modes (see Registry.serving) rebuilds the
// sets. The handler's mutex guards it.
type servicePods struct {
	pods        chunkedSet             // every cached pod of the service that has an instance, by name
	usable      int                    // how many of pods are served when any is (see usable)
	all         *servedList            // what the service serves
	byNamespace map[string]*servedList // the same per namespace; nil unless discovery spans several
}

func newServicePods(multiNamespace bool, chunk int) *servicePods {
	s := &servicePods{pods: chunkedSet{cmp: comparePodKeys, max: chunk}, all: newServedList(chunk)}
	if multiNamespace {
		s.byNamespace = make(map[string]*servedList)
	}
	return s
}

// usable reports whether a pod is served when any pod of its service is: a ready pod, or with
// WithIncludeNotReady any live one. When none is, the service falls back to the pods that are
// terminating but still ready.
func (r *Registry) usable(e *podEntry) bool {
	return e.state == podReady || (r.includeNotReady && e.state != podUnusable)
}

// served reports whether the service serves e, given whether it is in its fallback mode.
func (r *Registry) served(e *podEntry, fallback bool) bool {
	if fallback {
		return e.state == podServingTerminating
	}
	return r.usable(e)
}

// replace records that the pod old (nil: none) is now new (nil: gone); both belong to this
// service and have an instance. With sets false it only records membership, for a rebuild later.
func (s *servicePods) replace(r *Registry, old, new *podEntry, sets bool) {
	wasFallback := s.usable == 0
	if old != nil {
		s.pods.remove(old)
		if r.usable(old) {
			s.usable--
		}
	}
	if new != nil {
		s.pods.insert(new)
		if r.usable(new) {
			s.usable++
		}
	}
	if !sets {
		return
	}
	fallback := s.usable == 0
	if fallback != wasFallback {
		s.rebuild(r)
		return
	}
	if old != nil && r.served(old, fallback) {
		s.all.remove(old)
		if l := s.namespace(old.Namespace); l != nil {
			l.remove(old)
		}
	}
	if new != nil && r.served(new, fallback) {
		s.all.insert(new)
		if l := s.namespace(new.Namespace); l != nil {
			l.insert(new)
		}
	}
}

// rebuild makes the served sets anew from pods: O(n log n), at the end of the initial list and
// when the readiness policy switches modes.
func (s *servicePods) rebuild(r *Registry) {
	fallback := s.usable == 0
	entries := make([]*podEntry, 0, s.pods.size)
	for e := range s.pods.each() {
		if r.served(e, fallback) {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, comparePodEntries)
	s.all.reset(entries)
	if s.byNamespace == nil {
		return
	}
	perNamespace := make(map[string][]*podEntry)
	for _, e := range entries {
		perNamespace[e.Namespace] = append(perNamespace[e.Namespace], e)
	}
	for ns, l := range s.byNamespace {
		if perNamespace[ns] == nil {
			l.reset(nil)
		}
	}
	for ns, es := range perNamespace {
		s.namespace(ns).reset(es)
	}
}

// namespace returns the served set of one namespace; nil when discovery spans one namespace.
func (s *servicePods) namespace(ns string) *servedList {
	if s.byNamespace == nil {
		return nil
	}
	l := s.byNamespace[ns]
	if l == nil {
		l = newServedList(s.all.max)
		s.byNamespace[ns] = l
	}
	return l
}

// publish hands every set that changed to the catalog, and forgets empty namespaces.
func (s *servicePods) publish(c *catalog, name string) {
	if instances, changed := s.all.publish(); changed {
		c.publishSet(name, instances, s.all.sum)
	}
	for ns, l := range s.byNamespace {
		if instances, changed := l.publish(); changed {
			c.publishSet(namespacedKey(name, ns), instances, l.sum)
		}
		if l.empty() {
			delete(s.byNamespace, ns)
		}
	}
}

// servedList is a sorted set of served pods, and the instances published from it: publishing
// copies the pods' instances into one new slice.
type servedList struct {
	chunkedSet
	published []*ServiceInstance // the instances as last published: shared, never changed
	sum       uint64             // the multiset hash of the instances (see instanceHash)
	changed   bool               // the set differs from published
}

func newServedList(chunk int) *servedList {
	return &servedList{chunkedSet: chunkedSet{cmp: comparePodEntries, max: chunk}}
}

func (l *servedList) insert(e *podEntry) {
	if old := l.chunkedSet.insert(e); old != nil {
		l.sum -= old.hash
	}
	l.sum += e.hash
	l.changed = true
}

func (l *servedList) remove(e *podEntry) {
	if old := l.chunkedSet.remove(e); old != nil {
		l.sum -= old.hash
		l.changed = true
	}
}

// reset replaces the set with sorted entries.
func (l *servedList) reset(entries []*podEntry) {
	l.chunkedSet.reset(entries)
	l.sum, l.changed = 0, true
	for _, e := range entries {
		l.sum += e.hash
	}
}

// publish returns the instances to publish, if they changed since the last call: a new slice
// exactly as long as the set, so that an append by a reader never aliases another's.
func (l *servedList) publish() ([]*ServiceInstance, bool) {
	if !l.changed {
		return nil, false
	}
	l.changed = false
	l.published = nil
	if l.size > 0 {
		l.published = make([]*ServiceInstance, 0, l.size)
		for e := range l.each() {
			l.published = append(l.published, e.instance)
		}
	}
	return l.published, true
}

// comparePodEntries orders served pods by instance, as sortInstances does, then by pod, so that
// the order is total and a pod's entry is found by binary search.
func comparePodEntries(a, b *podEntry) int {
	if c := compareInstances(a.instance, b.instance); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}
