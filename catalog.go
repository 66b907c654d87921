package kuberegistry

import (
	"slices"
	"strings"
	"sync"
)

// catalog holds the published set of ready instances of every service, and the watchers waiting
// on each. The informer's handler publishes; GetService and watchers read.
type catalog struct {
	mu       sync.RWMutex // guards services, every service's fields, generation and listeners
	services map[string]*service
	// generation counts the changes to any service, for the watchers of the whole catalog.
	generation uint64
	listeners  map[*servicesWatcher]struct{}
	// Counters for Stats, kept as sets change so that reading them costs nothing.
	served    int    // services with at least one instance (not per-namespace keys)
	total     int    // instances of those services
	watchers  int    // open Watch and WatchServices iterators
	publishes uint64 // changes stored
}

// service is one service's published state.
type service struct {
	// instances is sorted by sortInstances and never changed once published, so readers share it.
	instances []*ServiceInstance
	// sum is the multiset hash of instances (see instanceHash) when summed, so that a watcher
	// tells a different set from its last one without comparing them instance by instance.
	sum      uint64
	summed   bool
	watchers map[*watcher]struct{}
}

func newCatalog() *catalog {
	return &catalog{services: make(map[string]*service), listeners: make(map[*servicesWatcher]struct{})}
}

// instances returns the published instances of a service, shared and read-only.
func (c *catalog) instances(name string) []*ServiceInstance {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s := c.services[name]; s != nil {
		return s.instances
	}
	return nil
}

// resolve returns the published instances of name, or, while name has none, those of alt ("":
// none), with their multiset hash when known: the rule GetService applies, under one lock.
func (c *catalog) resolve(name, alt string) (instances []*ServiceInstance, sum uint64, summed bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.services[name]
	if (s == nil || len(s.instances) == 0) && alt != "" {
		s = c.services[alt]
	}
	if s != nil {
		return s.instances, s.sum, s.summed
	}
	return nil, 0, true // the empty set's sum is 0
}

// publish replaces a service's instances, sorted by sortInstances, and wakes its watchers only
// when the set changed: an informer resync or a change to a field discovery ignores wakes nobody.
// It is for a source that rebuilds whole sets; it compares them instance by instance. It costs
// O(watchers of this service), whatever the number of other services and watchers.
func (c *catalog) publish(name string, instances []*ServiceInstance) {
	c.store(name, instances, 0, false)
}

// publishSet is publish for a source that keeps each set up to date one pod at a time (pods):
// it publishes only when the pods behind the set changed, and gives the set's multiset hash, so
// that telling whether the instances changed costs O(1) unless the sums are equal. A pod replaced
// by another with the same content wakes no watcher of the service, whose set is the same, but
// counts as a change of the catalog, whose watchers follow pods.
func (c *catalog) publishSet(name string, instances []*ServiceInstance, sum uint64) {
	c.store(name, instances, sum, true)
}

func (c *catalog) store(name string, instances []*ServiceInstance, sum uint64, summed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.services[name]
	if s == nil {
		if len(instances) == 0 {
			return
		}
		s = &service{}
		c.services[name] = s
	}
	same := sameSet(s.instances, s.sum, s.summed, instances, sum, summed)
	podsChanged := !same || summed && (len(instances) > 0 || len(s.instances) > 0)
	if !podsChanged {
		return
	}
	if !isNamespacedKey(name) {
		c.total += len(instances) - len(s.instances)
		switch {
		case len(s.instances) == 0 && len(instances) > 0:
			c.served++
		case len(s.instances) > 0 && len(instances) == 0:
			c.served--
		}
	}
	c.publishes++
	s.instances, s.sum, s.summed = instances, sum, summed
	if !same {
		for w := range s.watchers {
			w.notify()
		}
	}
	if !isNamespacedKey(name) {
		c.generation++
		for l := range c.listeners {
			l.notify()
		}
	}
	c.dropIfIdle(name, s)
}

// sameSet reports whether two published sets hold the same instances: at once when they are the
// same slice or their sums differ, else instance by instance.
func sameSet(a []*ServiceInstance, aSum uint64, aSummed bool, b []*ServiceInstance, bSum uint64, bSummed bool) bool {
	switch {
	case len(a) != len(b):
		return false
	case len(a) == 0 || &a[0] == &b[0]:
		return true
	case aSummed && bSummed && aSum != bSum:
		return false
	}
	return sameInstances(a, b)
}

// isNamespacedKey reports whether a key holds one namespace's part of a service (see
// namespacedKey), which the catalog's own listing leaves out.
func isNamespacedKey(key string) bool { return strings.IndexByte(key, '/') >= 0 }

// names returns the services with at least one instance, sorted.
func (c *catalog) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.services))
	for name, s := range c.services {
		if len(s.instances) > 0 && !isNamespacedKey(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// snapshot returns every service with instances, and the generation it reflects.
func (c *catalog) snapshot() (map[string][]*ServiceInstance, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string][]*ServiceInstance, len(c.services))
	for name, s := range c.services {
		if len(s.instances) > 0 && !isNamespacedKey(name) {
			out[name] = s.instances
		}
	}
	return out, c.generation
}

// currentGeneration returns the number of changes so far.
func (c *catalog) currentGeneration() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.generation
}

// listen adds a watcher of the whole catalog; unlisten removes it.
func (c *catalog) listen(l *servicesWatcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners[l] = struct{}{}
	c.watchers++
}

func (c *catalog) unlisten(l *servicesWatcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.listeners[l]; ok {
		delete(c.listeners, l)
		c.watchers--
	}
}

// subscribe adds a watcher to the services it may read: its name and its alternate key.
func (c *catalog) subscribe(w *watcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, key := range w.keys() {
		s := c.services[key]
		if s == nil {
			s = &service{}
			c.services[key] = s
		}
		if s.watchers == nil {
			s.watchers = make(map[*watcher]struct{})
		}
		s.watchers[w] = struct{}{}
	}
	c.watchers++
}

// unsubscribe removes a watcher; it is idempotent.
func (c *catalog) unsubscribe(w *watcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	removed := false
	for _, key := range w.keys() {
		if s := c.services[key]; s != nil {
			if _, ok := s.watchers[w]; ok {
				delete(s.watchers, w)
				removed = true
			}
			c.dropIfIdle(key, s)
		}
	}
	if removed {
		c.watchers--
	}
}

// stopWatchers ends every watcher, of a service or of the catalog, with the given cause.
func (c *catalog) stopWatchers(cause error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.services {
		for w := range s.watchers {
			w.cancel(cause)
		}
	}
	for l := range c.listeners {
		l.cancel(cause)
	}
}

// dropIfIdle forgets a service with no instance and no watcher, so that the map does not grow
// with every name ever seen. The caller holds mu.
func (c *catalog) dropIfIdle(name string, s *service) {
	if len(s.instances) == 0 && len(s.watchers) == 0 {
		delete(c.services, name)
	}
}

// reset forgets every service, after a failed Start.
func (c *catalog) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.services)
	c.served, c.total = 0, 0
}

// counts returns the catalog's counters for Stats.
func (c *catalog) counts() (served, total, watchers int, publishes uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.served, c.total, c.watchers, c.publishes
}

// namespacedKey is the catalog key of a service's instances in one namespace. '/' cannot occur in
// a service name, so it never collides with one.
func namespacedKey(service, namespace string) string { return service + "/" + namespace }
