package xds

import (
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/kuberegistry/kuberegistry"
	"k8s.io/apimachinery/pkg/util/validation"
)

// What the Server serves under each name, resolved from its catalogs, and how a change of a
// catalog becomes updates of the caches.

// source is what the Server knows of one catalog.
type source struct {
	// namespace is the namespace of the instances that carry none in their metadata (a Registry
	// of one namespace); "" when unknown, and then they have no namespaced form.
	namespace string
	// sets is the catalog as WatchServices last returned it: service → its instances.
	sets map[string][]*kuberegistry.ServiceInstance
	// aliases holds the namespaced forms: "service.namespace" → that namespace's instances.
	aliases map[string][]*kuberegistry.ServiceInstance
	// aliasesOf is the namespaced forms of each service, to retract them when the service changes.
	aliasesOf map[string][]string
}

func newSource() *source {
	return &source{
		sets:      map[string][]*kuberegistry.ServiceInstance{},
		aliases:   map[string][]*kuberegistry.ServiceInstance{},
		aliasesOf: map[string][]string{},
	}
}

// served is what one name serves now.
type served struct {
	instances []*kuberegistry.ServiceInstance
	alias     bool // the instances are a namespaced form's
}

func (n *served) serving() bool { return len(n.instances) > 0 }

// apply takes a new state of catalog i: it finds the services whose set changed (by identity:
// the catalogs publish a new slice for a new set), then the names they affect, and updates the
// resources of those names only.
func (s *Server) apply(i int, catalog map[string][]*kuberegistry.ServiceInstance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.sources[i]
	affected := map[string]bool{}
	for name, set := range catalog {
		if old, ok := src.sets[name]; !ok || !sameSlice(old, set) {
			src.index(name, set, affected)
		}
	}
	for name := range src.sets {
		if _, ok := catalog[name]; !ok {
			src.index(name, nil, affected)
		}
	}
	src.sets = catalog // the map is ours: WatchServices gives each Next its own
	s.publish(affected)
}

// index recomputes the namespaced forms of one service of the source and adds to affected every
// name whose instances may have changed: the service's and its forms', old and new.
func (src *source) index(service string, set []*kuberegistry.ServiceInstance, affected map[string]bool) {
	affected[service] = true
	for _, alias := range src.aliasesOf[service] {
		delete(src.aliases, alias)
		affected[alias] = true
	}
	delete(src.aliasesOf, service)
	for ns, instances := range byNamespace(set, src.namespace) {
		alias := service + "." + ns
		if len(validation.IsValidLabelValue(alias)) > 0 {
			continue // not a name GetService accepts, as the library's naming rule says
		}
		src.aliases[alias] = instances
		src.aliasesOf[service] = append(src.aliasesOf[service], alias)
		affected[alias] = true
	}
}

// byNamespace splits a set by the namespace of its instances (their metadata, else fallback),
// each part in the set's order with len == cap. A set all in one namespace is returned as is.
func byNamespace(set []*kuberegistry.ServiceInstance, fallback string) map[string][]*kuberegistry.ServiceInstance {
	if len(set) == 0 {
		return nil
	}
	namespaceOf := func(inst *kuberegistry.ServiceInstance) string {
		if ns, ok := inst.Metadata[kuberegistry.MetadataKeyNamespace]; ok {
			return ns
		}
		return fallback
	}
	first := namespaceOf(set[0])
	mixed := false
	for _, inst := range set[1:] {
		if namespaceOf(inst) != first {
			mixed = true
			break
		}
	}
	if !mixed {
		if first == "" {
			return nil
		}
		return map[string][]*kuberegistry.ServiceInstance{first: set}
	}
	parts := map[string][]*kuberegistry.ServiceInstance{}
	for _, inst := range set {
		if ns := namespaceOf(inst); ns != "" {
			parts[ns] = append(parts[ns], inst)
		}
	}
	for ns, part := range parts {
		parts[ns] = slices.Clip(part)
	}
	return parts
}

// resolve says what name serves, by the library's naming rule applied across catalogs: the
// first catalog with instances under that exact name; else, for a namespaced form, the first
// catalog with instances of the service in that namespace; else nothing. The caller holds mu.
func (s *Server) resolve(name string) (instances []*kuberegistry.ServiceInstance, alias bool) {
	winner := -1
	for i, src := range s.sources {
		if set := src.sets[name]; len(set) > 0 {
			if winner < 0 {
				winner, instances = i, set
			} else if !s.conflicts[name] {
				s.conflicts[name] = true
				s.log.Warn("xds: two catalogs serve the same service; the first one wins",
					"service", name, "winner", winner, "catalog", i)
			}
		}
	}
	if winner >= 0 {
		return instances, false
	}
	for _, src := range s.sources {
		if set := src.aliases[name]; len(set) > 0 {
			return set, true
		}
	}
	return nil, false
}

// publish brings the resources of the affected names up to date. A name is created with its four
// resources the first time it has instances; afterwards only its assignment changes with its
// set, and its cluster when it gains or loses its last instance. A name that loses its last
// instance keeps its resources, with an empty assignment: a grpc-go client that holds it fails
// its calls with UNAVAILABLE until instances come back, instead of erroring its channel. The
// caches are updated assignments first, listeners last, so that what a resource refers to
// already exists. The caller holds mu.
func (s *Server) publish(affected map[string]bool) { s.update(affected, false) }

// publishAsked is publish for names a client asked for: they are created even without instances.
func (s *Server) publishAsked(affected map[string]bool) { s.update(affected, true) }

func (s *Server) update(affected map[string]bool, create bool) {
	var eds, cds, rds, lds map[string]types.Resource
	put := func(m *map[string]types.Resource, name string, r types.Resource) {
		if *m == nil {
			*m = map[string]types.Resource{}
		}
		(*m)[name] = r
	}
	for name := range affected {
		instances, alias := s.resolve(name)
		cur := s.names[name]
		if cur == nil {
			if len(instances) == 0 && !create {
				continue // never served, nothing to retract
			}
			l, err := listenerFor(name)
			if err != nil {
				s.log.Error("xds: cannot serve a service", "service", name, "error", err)
				continue
			}
			cur = &served{alias: alias}
			s.names[name] = cur
			s.resources.Add(1)
			put(&lds, name, l)
			put(&rds, name, routeFor(name))
			put(&cds, name, clusterFor(name, alias, len(instances) > 0))
			put(&eds, name, assignmentFor(name, instances))
			cur.instances = instances
			if cur.serving() && !alias {
				s.services.Add(1)
			}
			s.updates.Add(1)
			continue
		}
		if len(instances) == 0 {
			alias = cur.alias // an empty name keeps what it was
		}
		wasService := cur.serving() && !cur.alias
		flagsChanged := cur.alias != alias || cur.serving() != (len(instances) > 0)
		if !sameInstances(cur.instances, instances) {
			put(&eds, name, assignmentFor(name, instances))
		} else if !flagsChanged {
			cur.instances = instances // the same set in a new slice: nothing to send
			continue
		}
		s.updates.Add(1)
		cur.instances, cur.alias = instances, alias
		if flagsChanged {
			put(&cds, name, clusterFor(name, alias, cur.serving()))
		}
		switch isService := cur.serving() && !cur.alias; {
		case isService && !wasService:
			s.services.Add(1)
		case !isService && wasService:
			s.services.Add(-1)
		}
	}
	for _, u := range []struct {
		cache interface {
			UpdateResources(map[string]types.Resource, []string) error
		}
		resources map[string]types.Resource
	}{{s.endpoints, eds}, {s.clusters, cds}, {s.routes, rds}, {s.listeners, lds}} {
		if len(u.resources) == 0 {
			continue
		}
		if err := u.cache.UpdateResources(u.resources, nil); err != nil {
			s.log.Error("xds: updating the served resources", "error", err)
		}
	}
}

// serveAsked serves the names a client asks a listener for that the Server does not serve yet,
// with no instance, before go-control-plane looks them up: grpc-go then fails its calls to a
// service that does not exist (yet) at once with UNAVAILABLE, and follows it when it appears,
// instead of waiting 15 seconds for the listener to be declared missing. Only names that are
// service names are served so; each is kept, like every name, until the Server stops.
func (s *Server) serveAsked(names []string) {
	var missing []string
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		if s.names[name] == nil && name != "*" && len(validation.IsValidLabelValue(name)) == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return
	}
	affected := make(map[string]bool, len(missing))
	for _, name := range missing {
		affected[name] = true
	}
	s.publishAsked(affected)
}

// sameSlice reports whether two sets are the same published slice.
func sameSlice(a, b []*kuberegistry.ServiceInstance) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
