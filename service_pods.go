package kuberegistry

import (
	"slices"
	"strings"
)

// podKey identifies a cached pod.
type podKey struct{ namespace, name string }

func keyOf(e *podEntry) podKey { return podKey{e.Namespace, e.Name} }

// servicePods is one service's cached pods and the sorted sets it serves, kept up to date one pod
// at a time: a change to one pod costs O(log n) comparisons and one copy of the published slice of
// pointers, whatever the number n of the service's pods, instead of gathering and sorting all n.
// Only the readiness policy's switch between its two modes (see Registry.serving) rebuilds the
// sets. The handler's mutex guards it.
type servicePods struct {
	pods        map[podKey]*podEntry   // every cached pod of the service that has an instance
	usable      int                    // how many of pods are served when any is (see usable)
	all         servedList             // what the service serves
	byNamespace map[string]*servedList // the same per namespace; nil unless discovery spans several
}

func newServicePods(multiNamespace bool, chunk int) *servicePods {
	s := &servicePods{pods: make(map[podKey]*podEntry), all: servedList{max: chunk}}
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
		delete(s.pods, keyOf(old))
		if r.usable(old) {
			s.usable--
		}
	}
	if new != nil {
		s.pods[keyOf(new)] = new
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
	entries := make([]*podEntry, 0, len(s.pods))
	for _, e := range s.pods {
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
		l = &servedList{max: s.all.max}
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

// servedList is a sorted set of served pods, and the instances published from it. It is kept as
// a list of sorted chunks of at most max pods, so that a change moves at most a chunk's worth
// of pointers, not half the set; publishing copies the chunks' instances into one new slice.
type servedList struct {
	max       int                // the most pods a chunk holds (maxChunk, but in tests)
	chunks    []*servedChunk     // in order; none is empty
	size      int                // the number of pods in all chunks
	published []*ServiceInstance // the instances as last published: shared, never changed
	sum       uint64             // the multiset hash of the instances (see instanceHash)
	changed   bool               // the chunks differ from published
}

// servedChunk is a run of the sorted set: pods and their instances, in the same order.
type servedChunk struct {
	entries   []*podEntry
	instances []*ServiceInstance
}

// maxChunk bounds a chunk: large enough that the list of chunks stays short (40 for 10,000
// pods), small enough that moving within one is cheap.
const maxChunk = 256

// chunkFor returns the index of the chunk where e belongs: the last whose first pod sorts at or
// before e, or 0.
func (l *servedList) chunkFor(e *podEntry) int {
	i, found := slices.BinarySearchFunc(l.chunks, e, func(c *servedChunk, e *podEntry) int {
		return comparePodEntries(c.entries[0], e)
	})
	if found || i == 0 {
		return i
	}
	return i - 1
}

func (l *servedList) insert(e *podEntry) {
	l.sum += e.hash
	l.size++
	l.changed = true
	if len(l.chunks) == 0 {
		l.chunks = []*servedChunk{{entries: []*podEntry{e}, instances: []*ServiceInstance{e.instance}}}
		return
	}
	ci := l.chunkFor(e)
	c := l.chunks[ci]
	i, _ := slices.BinarySearchFunc(c.entries, e, comparePodEntries)
	c.entries = slices.Insert(c.entries, i, e)
	c.instances = slices.Insert(c.instances, i, e.instance)
	if len(c.entries) > l.max { // split in halves
		half := len(c.entries) / 2
		next := &servedChunk{
			entries:   append(make([]*podEntry, 0, l.max), c.entries[half:]...),
			instances: append(make([]*ServiceInstance, 0, l.max), c.instances[half:]...),
		}
		clear(c.entries[half:])
		clear(c.instances[half:])
		c.entries, c.instances = c.entries[:half], c.instances[:half]
		l.chunks = slices.Insert(l.chunks, ci+1, next)
	}
}

func (l *servedList) remove(e *podEntry) {
	if len(l.chunks) == 0 {
		return
	}
	ci := l.chunkFor(e)
	c := l.chunks[ci]
	i, found := slices.BinarySearchFunc(c.entries, e, comparePodEntries)
	if !found {
		return
	}
	c.entries = slices.Delete(c.entries, i, i+1)
	c.instances = slices.Delete(c.instances, i, i+1)
	switch {
	case len(c.entries) == 0:
		l.chunks = slices.Delete(l.chunks, ci, ci+1)
	case len(c.entries) < l.max/4 && ci+1 < len(l.chunks) && len(c.entries)+len(l.chunks[ci+1].entries) <= l.max:
		l.merge(ci) // with the next: so that many deletions never leave a list of near-empty chunks
	case len(c.entries) < l.max/4 && ci > 0 && len(c.entries)+len(l.chunks[ci-1].entries) <= l.max:
		l.merge(ci - 1)
	}
	l.sum -= e.hash
	l.size--
	l.changed = true
}

// merge appends chunk ci+1 to chunk ci and drops it.
func (l *servedList) merge(ci int) {
	c, next := l.chunks[ci], l.chunks[ci+1]
	c.entries = append(c.entries, next.entries...)
	c.instances = append(c.instances, next.instances...)
	l.chunks = slices.Delete(l.chunks, ci+1, ci+2)
}

// reset replaces the set with sorted entries.
func (l *servedList) reset(entries []*podEntry) {
	clear(l.chunks)
	l.chunks, l.size, l.sum, l.changed = l.chunks[:0], len(entries), 0, true
	for len(entries) > 0 {
		n := max(1, min(len(entries), l.max/2)) // half full: room to grow before a split
		c := &servedChunk{entries: make([]*podEntry, n, l.max), instances: make([]*ServiceInstance, n, l.max)}
		copy(c.entries, entries[:n])
		for i, e := range entries[:n] {
			c.instances[i] = e.instance
			l.sum += e.hash
		}
		l.chunks = append(l.chunks, c)
		entries = entries[n:]
	}
}

// empty reports whether the set has no pod.
func (l *servedList) empty() bool { return l.size == 0 }

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
		for _, c := range l.chunks {
			l.published = append(l.published, c.instances...)
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
