package kuberegistry

import (
	"encoding/binary"
	"hash/maphash"
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

func newServicePods(multiNamespace bool) *servicePods {
	s := &servicePods{pods: make(map[podKey]*podEntry)}
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
	for _, l := range s.byNamespace {
		l.reset(nil)
	}
	for _, e := range entries {
		s.namespace(e.Namespace).append(e)
	}
}

// namespace returns the served set of one namespace; nil when discovery spans one namespace.
func (s *servicePods) namespace(ns string) *servedList {
	if s.byNamespace == nil {
		return nil
	}
	l := s.byNamespace[ns]
	if l == nil {
		l = &servedList{}
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
		if len(l.entries) == 0 {
			delete(s.byNamespace, ns)
		}
	}
}

// servedList is a sorted set of served pods, and the instances published from it.
type servedList struct {
	entries   []*podEntry        // sorted by comparePodEntries; changed in place
	working   []*ServiceInstance // entries' instances, in the same order; changed in place
	published []*ServiceInstance // a copy of working as last published: shared, never changed
	sum       uint64             // the multiset hash of working (see instanceHash)
	changed   bool               // working differs from published
}

func (l *servedList) insert(e *podEntry) {
	i, _ := slices.BinarySearchFunc(l.entries, e, comparePodEntries)
	l.entries = slices.Insert(l.entries, i, e)
	l.working = slices.Insert(l.working, i, e.instance)
	l.sum += e.hash
	l.changed = true
}

func (l *servedList) remove(e *podEntry) {
	i, found := slices.BinarySearchFunc(l.entries, e, comparePodEntries)
	if !found {
		return
	}
	l.entries = slices.Delete(l.entries, i, i+1)
	l.working = slices.Delete(l.working, i, i+1)
	l.sum -= e.hash
	l.changed = true
}

// append adds an entry that sorts after every other one.
func (l *servedList) append(e *podEntry) {
	l.entries = append(l.entries, e)
	l.working = append(l.working, e.instance)
	l.sum += e.hash
	l.changed = true
}

// reset replaces the set with sorted entries.
func (l *servedList) reset(entries []*podEntry) {
	clear(l.entries)
	l.entries, l.working, l.sum = l.entries[:0], l.working[:0], 0
	for _, e := range entries {
		l.append(e)
	}
	l.changed = true
}

// publish returns a copy of the instances to publish, if they changed since the last call.
func (l *servedList) publish() ([]*ServiceInstance, bool) {
	if !l.changed {
		return nil, false
	}
	l.changed = false
	l.published = nil
	if len(l.working) > 0 { // exactly as long as it holds: an append by a reader never aliases
		l.published = make([]*ServiceInstance, len(l.working))
		copy(l.published, l.working)
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

// hashSeed keys instanceHash for this process.
var hashSeed = maphash.MakeSeed()

// instanceHash hashes what ServiceInstance.equal compares, so that equal instances hash equal.
// The sum of a set's hashes changes when an instance joins or leaves it: two sets with different
// sums differ, and only sets with equal sums need comparing one instance at a time.
func instanceHash(in *ServiceInstance) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.WriteString(s)
	}
	field(in.ID)
	field(in.Name)
	field(in.Version)
	for _, e := range in.Endpoints {
		field(e)
	}
	sum := h.Sum64()
	// Metadata has no order: add each pair's hash.
	for k, v := range in.Metadata {
		h.Reset()
		field(k)
		field(v)
		sum += h.Sum64() * 0x9e3779b97f4a7c15
	}
	return sum
}
