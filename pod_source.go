package kuberegistry

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// podEntry is what the informer caches of a pod: its key, its resource version and the instance
// made of it, a small fraction of a *corev1.Pod. Entries are never changed once made.
type podEntry struct {
	entryMeta
	podInstance
}

// DeepCopyObject returns a shallow copy: the instance it points to is immutable.
func (e *podEntry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// registeredPodsSelector selects the pods that carry a service name; no other pod is listed,
// watched or cached.
var registeredPodsSelector = func() labels.Selector {
	has, _ := labels.NewRequirement(LabelsKeyServiceName, selection.Exists, nil)
	return labels.NewSelector().Add(*has)
}()

// newPodInformer builds the informer of one namespace (or all): the registered pods that match
// the registry's selector, each translated into an entry as it arrives, with no periodic resync.
// The handler keeps each service's pods itself (see servicePods), so the informer needs no index.
func newPodInformer(r *Registry, namespace string, health *informerHealth) *podInformer {
	pods := r.pods
	selector := r.selector.String()
	lw := selectedListWatch(selector,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return pods.List(ctx, namespace, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, namespace, o)
		})
	i := newPodInformerFor(cache.ToListWatcherWithWatchListSemantics(health.observeInline(lw), listThenWatch{}),
		pods.object(), r.translation.toPodEntry, health)
	if r.selfKey != "" {
		i.self, i.onSelf = r.pod, r.self.observe
	}
	return i
}

// podEvents is the registry's only informer handler, shared by the informers of all its
// namespaces. It never blocks: it updates the served sets of the services a change touches and
// publishes them, which wakes their watchers. Until flush, at the end of Start's initial lists, it
// only records which pods each service has, and flush sorts and publishes every service once:
// publishing at every pod of the initial list would cost O(n²) for a service of n pods.
type podEvents struct {
	r *Registry

	// mu serializes the handling of events from the informers of every namespace, so that the
	// last set published is the newest; it guards the fields below and the registry's problem log.
	mu       sync.Mutex
	services map[string]*servicePods // by service name; a service with no pod is dropped
	batching bool                    // until flush: record membership only
	chunk    int                     // the chunk size of the served sets: maxChunk, but in tests
}

func newPodEvents(r *Registry) *podEvents {
	return &podEvents{r: r, services: make(map[string]*servicePods), batching: true, chunk: maxChunk}
}

func (h *podEvents) OnAdd(obj any, _ bool) {
	if e, ok := obj.(*podEntry); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		defer h.observe(e, false) // after publishing: see observe
		h.r.podStates.add(e, 1)
		h.change(nil, e)
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
	h.r.podStates.add(old, -1)
	h.r.podStates.add(e, 1)
	if old.service() == e.service() && old.state == e.state && old.uid == e.uid &&
		(old.instance == e.instance || old.instance != nil && e.instance != nil && old.instance.equal(e.instance)) {
		return // a status write, a label elsewhere…: what the service publishes is the same
	}
	h.change(old, e)
}

func (h *podEvents) OnDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if e, ok := obj.(*podEntry); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		defer h.observe(e, true) // after publishing: see observe
		h.r.podStates.add(e, -1)
		h.change(e, nil)
	}
}

// change records that a pod was old (nil: not cached) and is now new (nil: deleted), and
// republishes the services it belongs to. The caller holds mu.
func (h *podEvents) change(old, new *podEntry) {
	var was, is *podEntry // the pod as this handler holds it, and as it now is, in a service
	var from, to string
	if old != nil && old.service() != "" {
		from = old.service()
		if s := h.services[from]; s != nil {
			was = s.pods.find(old)
		}
	}
	if new != nil && new.service() != "" && new.instance != nil {
		to, is = new.service(), new
	}
	if from == to {
		if was != nil || is != nil {
			h.update(to, was, is)
		}
		return
	}
	if was != nil {
		h.update(from, was, nil)
	}
	if is != nil {
		h.update(to, nil, is)
	}
}

// update replaces pod was by pod is in service name and publishes the service. The caller holds mu.
func (h *podEvents) update(name string, was, is *podEntry) {
	s := h.services[name]
	if s == nil {
		s = newServicePods(h.r.multiNamespace(), h.chunk)
		h.services[name] = s
	}
	s.replace(h.r, was, is, !h.batching)
	if !h.batching {
		s.publish(h.r.catalog, name)
	}
	if s.pods.empty() && !h.batching {
		delete(h.services, name)
	}
}

// flush ends the initial lists: it builds and publishes every service once. Start calls it when
// every informer has synced, before it returns.
func (h *podEvents) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batching = false
	for name, s := range h.services {
		s.rebuild(h.r)
		s.publish(h.r.catalog, name)
		if s.pods.empty() {
			delete(h.services, name)
		}
	}
}

// observe logs a malformed pod once per problem, and tracks the registry's own pod. It runs once
// the change is published, because seeing its own pod's version wakes a Register or Deregister
// waiting to read its write: GetService must then already show it. The caller holds mu.
func (h *podEvents) observe(e *podEntry, deleted bool) {
	key := e.Namespace + "/" + e.Name
	h.r.problems.note(key, e.Namespace, e.Name, e.service(), e.problem(), deleted)
}

// listThenWatch makes an informer list its pods in one request, then watch, instead of
// streaming the initial pods as watch events (client-go's watch-list, on by default). Each
// streamed pod costs the client a framed event, an envelope to decode and a hand-off between
// goroutines: measured on 5,000 registered pods, one List took 40% less client CPU to sync
// (about 300 ms against 500 ms; see docs/BENCHMARKS.md). The price is a response the size of the
// list, which the API server builds from its watch cache.
type listThenWatch struct{}

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }
