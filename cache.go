package kuberegistry

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// toPodEntry is the informer's transform: each pod is translated once, as it arrives, and the
// informer never holds the full object. It is idempotent, as transforms must be.
func toPodEntry(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // already an entry, or a tombstone of one
	}
	return &podEntry{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       pod.Namespace,
			Name:            pod.Name,
			ResourceVersion: pod.ResourceVersion,
		},
		podInstance: translatePod(pod),
	}, nil
}

func indexByService(obj any) ([]string, error) {
	if e, ok := obj.(*podEntry); ok && e.service != "" {
		return []string{e.service}, nil
	}
	return nil, nil
}

// registeredPodsSelector selects the pods that carry a service name (a bare key selects the
// objects that have the label); no other pod is listed, watched or cached.
const registeredPodsSelector = LabelsKeyServiceName

// newPodInformer builds the one informer of a registry: registered pods of one namespace (or
// all), transformed into entries, indexed by service, with no periodic resync.
func newPodInformer(r *Registry) cache.SharedIndexInformer {
	pods := r.client.CoreV1().Pods(r.namespace)
	selector := registeredPodsSelector
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, o)
		},
	}
	informer := cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(lw, r.client),
		&corev1.Pod{},
		cache.SharedIndexInformerOptions{
			Indexers:          cache.Indexers{serviceIndex: indexByService},
			ObjectDescription: "kuberegistry pods",
		},
	)
	// Only fails once the informer has started.
	_ = informer.SetTransform(toPodEntry)
	return informer
}

// podEvents is the registry's only informer handler. The informer calls it from one goroutine;
// it never blocks: it republishes the services a change touches, which wakes their watchers.
type podEvents struct {
	r       *Registry
	indexer cache.Indexer
}

func (h podEvents) OnAdd(obj any, _ bool) {
	if e, ok := obj.(*podEntry); ok {
		h.observe(e, false)
		h.refresh(e.service)
	}
}

func (h podEvents) OnUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*podEntry)
	e, ok2 := newObj.(*podEntry)
	if !ok1 || !ok2 {
		return
	}
	h.observe(e, false)
	if old.service != e.service {
		h.refresh(old.service)
	}
	h.refresh(e.service)
}

func (h podEvents) OnDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if e, ok := obj.(*podEntry); ok {
		h.observe(e, true)
		h.refresh(e.service)
	}
}

// observe logs a malformed pod once per problem, and tracks the registry's own pod.
func (h podEvents) observe(e *podEntry, deleted bool) {
	key := e.Namespace + "/" + e.Name
	h.r.problems.note(key, e, deleted)
	if key == h.r.selfKey {
		h.r.self.observe(e.ResourceVersion, deleted)
	}
}

// refresh republishes a service from the cached entries of its pods.
func (h podEvents) refresh(name string) {
	if name == "" {
		return
	}
	objs, err := h.indexer.ByIndex(serviceIndex, name)
	if err != nil {
		return // only for an unknown index name
	}
	ready := make([]*ServiceInstance, 0, len(objs))
	for _, o := range objs {
		if e, ok := o.(*podEntry); ok && e.state == podReady && e.instance != nil {
			ready = append(ready, e.instance)
		}
	}
	sortInstances(ready)
	h.r.catalog.publish(name, slices.Clip(ready))
}
