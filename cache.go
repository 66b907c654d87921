package kuberegistry

import (
	"context"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// serviceIndex indexes cached pods by service name, so that a change to one service reads only
// that service's pods.
const serviceIndex = "kuberegistry.io/service"

// podEntry is what the informer caches of a pod: its key, its resource version and the instance
// made of it, a small fraction of a *corev1.Pod. Entries are never changed once made.
type podEntry struct {
	metav1.ObjectMeta // only Namespace, Name and ResourceVersion are set: the store's key
	podInstance
}

func (e *podEntry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns a shallow copy: the instance it points to is immutable.
func (e *podEntry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// toPodEntry is the default translation's transform.
func toPodEntry(obj any) (any, error) { return defaultTranslation.toPodEntry(obj, nil) }

// toPodEntry is the informer's transform: each pod is translated once, as it arrives, and the
// informer never holds the full object. It is idempotent, as transforms must be. cached returns
// the entry the informer holds for a pod, if any, whose instance the new entry keeps when the
// pod's registration is unchanged; nil for none.
func (t *translation) toPodEntry(obj any, cached func(namespace, name string) *podEntry) (any, error) {
	var pod *corev1.Pod
	switch o := obj.(type) {
	case *corev1.Pod:
		pod = o
	case *leanPod:
		pod = &o.Pod
	default:
		return obj, nil // already an entry, or a tombstone of one
	}
	var prev *podInstance
	if cached != nil {
		if e := cached(pod.Namespace, pod.Name); e != nil && e.UID == pod.UID {
			prev = &e.podInstance
		}
	}
	return &podEntry{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       pod.Namespace,
			Name:            pod.Name,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
		podInstance: t.translate(pod, prev),
	}, nil
}

func indexByService(obj any) ([]string, error) {
	if e, ok := obj.(*podEntry); ok && e.service != "" {
		return []string{e.service}, nil
	}
	return nil, nil
}

// registeredPodsSelector selects the pods that carry a service name; no other pod is listed,
// watched or cached.
var registeredPodsSelector = func() labels.Selector {
	has, _ := labels.NewRequirement(LabelsKeyServiceName, selection.Exists, nil)
	return labels.NewSelector().Add(*has)
}()

// newPodInformer builds the informer of one namespace (or all): the registered pods that match
// the registry's selector, transformed into entries, indexed by service, with no periodic resync.
func newPodInformer(r *Registry, namespace string) cache.SharedIndexInformer {
	pods := r.pods
	selector := r.selector.String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, namespace, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, namespace, o)
		},
	}
	informer := cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(lw, listThenWatch{}),
		pods.object(),
		cache.SharedIndexInformerOptions{
			Indexers:          cache.Indexers{serviceIndex: indexByService},
			ObjectDescription: "kuberegistry pods",
		},
	)
	// The transform runs in the reflector's goroutine, under the queue's lock; it takes the store's
	// read lock and the registration table's lock one after the other, never one inside the other,
	// and nothing takes the queue's lock inside either, so it cannot deadlock. The store may be a
	// few events behind the pod: an older entry is reused only if it is equal all the same.
	store := informer.GetStore()
	cached := func(namespace, name string) *podEntry {
		key := name
		if namespace != "" {
			key = namespace + "/" + name
		}
		obj, _, _ := store.GetByKey(key)
		e, _ := obj.(*podEntry)
		return e
	}
	// Only fails once the informer has started.
	_ = informer.SetTransform(func(obj any) (any, error) { return r.translation.toPodEntry(obj, cached) })
	return informer
}

// podEvents is the registry's only informer handler, shared by the informers of all its
// namespaces. It never blocks: it republishes the services a change touches, which wakes their
// watchers.
type podEvents struct {
	r        *Registry
	indexers []cache.Indexer // one per namespace informer; set before they start

	// mu serializes the handling of events from the informers of every namespace, so that the
	// last refresh published is the newest; it guards published and the registry's problem log.
	mu sync.Mutex
	// published records, per service, the namespaces whose "service.namespace" key has
	// instances, so that they are emptied when the last one goes (several namespaces only).
	published map[string]map[string]bool
	// entries is refresh's scratch space, kept between calls so that a refresh allocates only
	// what it publishes.
	entries []*podEntry
}

func newPodEvents(r *Registry) *podEvents {
	return &podEvents{r: r, published: make(map[string]map[string]bool)}
}

func (h *podEvents) OnAdd(obj any, _ bool) {
	if e, ok := obj.(*podEntry); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		defer h.observe(e, false) // after publishing: see observe
		h.refresh(e.service)
	}
}

func (h *podEvents) OnUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*podEntry)
	e, ok2 := newObj.(*podEntry)
	if !ok1 || !ok2 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.observe(e, false) // after publishing: see observe
	if old.service == e.service && old.state == e.state && old.instance == e.instance && old.UID == e.UID {
		return // a status write, a label elsewhere…: what the service publishes is the same
	}
	if old.service != e.service {
		h.refresh(old.service)
	}
	h.refresh(e.service)
}

func (h *podEvents) OnDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if e, ok := obj.(*podEntry); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		defer h.observe(e, true) // after publishing: see observe
		h.refresh(e.service)
	}
}

// observe logs a malformed pod once per problem, and tracks the registry's own pod. It runs once
// the change is published, because seeing its own pod's version wakes a Register or Deregister
// waiting to read its write: GetService must then already show it. The caller holds mu.
func (h *podEvents) observe(e *podEntry, deleted bool) {
	key := e.Namespace + "/" + e.Name
	h.r.problems.note(key, e, deleted)
	if key == h.r.selfKey {
		h.r.self.observe(e.ResourceVersion, deleted)
	}
}

// refresh republishes a service from the cached entries of its pods in every namespace. The
// caller holds mu.
func (h *podEvents) refresh(name string) {
	if name == "" {
		return
	}
	entries := h.entries[:0]
	defer func() { clear(entries[:cap(entries)]); h.entries = entries[:0] }() // hold no entry
	for _, indexer := range h.indexers {
		objs, _ := indexer.ByIndex(serviceIndex, name) // fails only for an unknown index name
		for _, o := range objs {
			if e, ok := o.(*podEntry); ok && e.instance != nil {
				entries = append(entries, e)
			}
		}
	}
	entries = h.r.serving(entries)
	slices.SortFunc(entries, func(a, b *podEntry) int { return compareInstances(a.instance, b.instance) })
	h.r.catalog.publishPods(name, instancesOf(entries), podKeysOf(entries))
	if h.r.multiNamespace() {
		h.publishNamespaces(name, entries)
	}
}

// publishNamespaces publishes the instances of a service in each namespace under its
// "service.namespace" key. The caller holds mu.
func (h *podEvents) publishNamespaces(name string, entries []*podEntry) {
	byNamespace := make(map[string][]*podEntry)
	for _, e := range entries {
		byNamespace[e.Namespace] = append(byNamespace[e.Namespace], e)
	}
	for ns := range h.published[name] {
		if _, ok := byNamespace[ns]; !ok {
			h.r.catalog.publishPods(namespacedKey(name, ns), nil, nil)
		}
	}
	if len(byNamespace) == 0 {
		delete(h.published, name)
		return
	}
	h.published[name] = make(map[string]bool, len(byNamespace))
	for ns, es := range byNamespace {
		h.published[name][ns] = true
		h.r.catalog.publishPods(namespacedKey(name, ns), instancesOf(es), podKeysOf(es))
	}
}

// namespacedKey is the catalog key of a service's instances in one namespace. '/' cannot occur in
// a service name, so it never collides with one.
func namespacedKey(service, namespace string) string { return service + "/" + namespace }

// serving picks, in place, the entries discovery returns: ready pods; or, when there is none,
// pods that are terminating but still ready; or, with WithIncludeNotReady, every live pod.
func (r *Registry) serving(entries []*podEntry) []*podEntry {
	ignored := func(e *podEntry) bool { return e.state != podReady && (!r.includeNotReady || e.state == podUnusable) }
	if slices.ContainsFunc(entries, func(e *podEntry) bool { return !ignored(e) }) {
		return slices.DeleteFunc(entries, ignored)
	}
	return slices.DeleteFunc(entries, func(e *podEntry) bool { return e.state != podServingTerminating })
}

func instancesOf(entries []*podEntry) []*ServiceInstance {
	out := make([]*ServiceInstance, len(entries))
	for i, e := range entries {
		out[i] = e.instance
	}
	return out
}

// podKeysOf identifies the pods behind instances, so that a pod replaced by another of the same
// name and content still counts as a change of the catalog.
func podKeysOf(entries []*podEntry) []types.UID {
	out := make([]types.UID, len(entries))
	for i, e := range entries {
		out[i] = e.UID
	}
	return out
}

// listThenWatch makes an informer list its pods in one request, then watch, instead of
// streaming the initial pods as watch events (client-go's watch-list, on by default). Each
// streamed pod costs the client a framed event, an envelope to decode and a hand-off between
// goroutines: measured on 5,000 registered pods, one List took 40% less client CPU to sync
// (about 300 ms against 500 ms; see docs/BENCHMARKS.md). The price is a response the size of the
// list, which the API server builds from its watch cache.
type listThenWatch struct{}

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }
