package kuberegistry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// podInformer lists and watches the registered pods of one namespace (or all) and hands each
// change to the registry's handler at once, in the goroutine that decoded it. It runs client-go's
// Reflector, with its retries, backoff, relists and watch error handler, but in place of a
// SharedIndexInformer's queue, indexer and per-handler goroutines it keeps only what the registry
// needs: one entry per pod, sorted by name. That saves three hand-offs between goroutines per
// event, and the indexer's map, the bulk of the memory an informer adds per pod; the handler it
// calls never blocks (see podEvents), which is what the queue protected.
//
// It implements cache.Queue so that cache.New runs the Reflector with the watch error handler; Pop
// only waits for the end, since every change has been handled by the time it is stored.
type podInformer struct {
	lw        cache.ListerWatcher
	object    runtime.Object // the type the informer receives
	translate func(obj any, c podCache) (any, error)
	health    *informerHealth // told of every event (see observeInline)
	// self is the registry's own pod, whose resource version onSelf hears once the handler has
	// published it, so that Register can wait for its change to be served; zero for none. Entries
	// keep no resource version: this is the only one the registry reads.
	self   podIdentity
	onSelf func(resourceVersion string, deleted bool)

	handler  cache.ResourceEventHandler         // set once, before Run
	onError  cache.WatchErrorHandlerWithContext // set once, before Run; nil: client-go's default
	synced   chan struct{}                      // closed once the first list has been handled
	closed   chan struct{}                      // closed by Close: Pop returns
	doneOnce sync.Once                          // guards the closing of synced
	stopOnce sync.Once                          // guards the closing of closed

	// pods is every pod the informer holds, by namespace and name. Only the Reflector's goroutine
	// uses it, through the cache.Queue methods.
	pods    chunkedSet
	strings interner // the strings its entries share
}

func newPodInformerFor(lw cache.ListerWatcher, object runtime.Object, translate func(any, podCache) (any, error), health *informerHealth) *podInformer {
	return &podInformer{
		lw: lw, object: object, translate: translate, health: health,
		synced: make(chan struct{}), closed: make(chan struct{}),
		pods: chunkedSet{cmp: comparePodKeys, max: maxChunk},
	}
}

// The part of cache.SharedIndexInformer that lifecycle.start uses.

func (i *podInformer) SetWatchErrorHandlerWithContext(handler cache.WatchErrorHandlerWithContext) error {
	i.onError = handler
	return nil
}

// AddEventHandler sets the informer's only handler.
func (i *podInformer) AddEventHandler(handler cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	if i.handler != nil {
		return nil, errors.New("kuberegistry: a pod informer takes one handler")
	}
	i.handler = handler
	return i, nil
}

func (i *podInformer) RunWithContext(ctx context.Context) {
	defer i.health.stopTimer()
	cache.New(&cache.Config{
		Queue:                        i,
		ListerWatcher:                i.lw,
		ObjectType:                   i.object,
		ObjectDescription:            "kuberegistry pods",
		WatchErrorHandlerWithContext: i.onError,
		Process:                      func(any, bool) error { return nil }, // never called: Pop handles nothing
	}).RunWithContext(ctx)
}

// The registration of the handler: synced once it has seen the first list.

func (i *podInformer) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

func (i *podInformer) HasSyncedChecker() cache.DoneChecker { return syncedChecker{i.synced} }

type syncedChecker struct{ done chan struct{} }

func (syncedChecker) Name() string            { return "kuberegistry pods" }
func (c syncedChecker) Done() <-chan struct{} { return c.done }
func (i *podInformer) Pop(cache.PopProcessFunc) (any, error) {
	<-i.closed
	return nil, cache.ErrFIFOClosed
}

func (i *podInformer) Close() { i.stopOnce.Do(func() { close(i.closed) }) }

func (i *podInformer) Resync() error { return nil } // no resync period

// Add, Update, Delete and Replace are the Reflector's: each event, decoded, is translated, stored
// and handled before the next is read.

func (i *podInformer) Add(obj any) error    { return i.store(obj) }
func (i *podInformer) Update(obj any) error { return i.store(obj) }

// Bookmark is a watch's sign of life on a quiet namespace (cache.ReflectorBookmarkStore).
func (i *podInformer) Bookmark(string) error {
	i.health.sawEvent()
	return nil
}

func (i *podInformer) store(obj any) error {
	i.health.sawEvent()
	e, err := i.entry(obj)
	if err != nil || e == nil {
		return err
	}
	if old := i.pods.insert(e); old != nil {
		i.handler.OnUpdate(old, e)
	} else {
		i.handler.OnAdd(e, false)
	}
	i.observeSelf(e, obj, false)
	return nil
}

// observeSelf tells onSelf of an event of the registry's own pod, once it is handled.
func (i *podInformer) observeSelf(e *podEntry, obj any, deleted bool) {
	if i.onSelf == nil || e.Name != i.self.name || e.Namespace != i.self.namespace {
		return
	}
	rv := ""
	if m, err := meta.Accessor(obj); err == nil {
		rv = m.GetResourceVersion()
	}
	i.onSelf(rv, deleted)
}

func (i *podInformer) Delete(obj any) error {
	i.health.sawEvent()
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if old := i.pods.findKey(m.GetNamespace(), m.GetName()); old != nil {
		i.pods.remove(old)
		i.handler.OnDelete(old) // what the registry holds of the pod, as it counted it
		i.observeSelf(old, obj, true)
	}
	return nil
}

// Replace takes a full list: after the first List, or a relist after the watch could not resume.
// Pods missing from it are deleted; the others are added or updated.
func (i *podInformer) Replace(list []any, _ string) error {
	initial := !i.HasSynced()
	listed := make([]*podEntry, 0, len(list))
	var self struct {
		entry *podEntry
		obj   any
	}
	for _, obj := range list {
		e, err := i.entry(obj)
		if err != nil {
			return err
		}
		if e != nil {
			listed = append(listed, e)
			if e.Name == i.self.name && e.Namespace == i.self.namespace {
				self.entry, self.obj = e, obj
			}
		}
	}
	heldSelf := i.pods.findKey(i.self.namespace, i.self.name)
	slices.SortFunc(listed, comparePodKeys)
	listed = slices.CompactFunc(listed, func(a, b *podEntry) bool { return comparePodKeys(a, b) == 0 })
	// Both are sorted by key: walk them side by side.
	var held []*podEntry
	for e := range i.pods.each() {
		held = append(held, e)
	}
	i.pods.reset(listed)
	for len(held) > 0 || len(listed) > 0 {
		var c int
		switch {
		case len(held) == 0:
			c = 1
		case len(listed) == 0:
			c = -1
		default:
			c = comparePodKeys(held[0], listed[0])
		}
		switch {
		case c < 0:
			i.handler.OnDelete(held[0])
			held = held[1:]
		case c > 0:
			i.handler.OnAdd(listed[0], initial)
			listed = listed[1:]
		default:
			i.handler.OnUpdate(held[0], listed[0])
			held, listed = held[1:], listed[1:]
		}
	}
	switch {
	case self.entry != nil:
		i.observeSelf(self.entry, self.obj, false)
	case heldSelf != nil:
		i.observeSelf(heldSelf, nil, true)
	}
	i.doneOnce.Do(func() { close(i.synced) })
	return nil
}

// entry translates a listed or watched pod; nil for an object that is not a pod.
func (i *podInformer) entry(obj any) (*podEntry, error) {
	out, err := i.translate(obj, i)
	if err != nil {
		return nil, err
	}
	e, _ := out.(*podEntry)
	return e, nil
}

// cached returns the entry held for a pod, for the translation to reuse its instance.
func (i *podInformer) cached(namespace, name string) *podEntry {
	return i.pods.findKey(namespace, name)
}

func (i *podInformer) interner() *interner { return &i.strings }

// findKey returns the member of a set ordered by comparePodKeys with that namespace and name.
func (l *chunkedSet) findKey(namespace, name string) *podEntry {
	cmp := func(e *podEntry, key [2]string) int {
		if c := strings.Compare(e.Namespace, key[0]); c != 0 {
			return c
		}
		return strings.Compare(e.Name, key[1])
	}
	key := [2]string{namespace, name}
	ci, found := slices.BinarySearchFunc(l.chunks, key, func(c *setChunk, key [2]string) int { return cmp(c.entries[0], key) })
	if !found {
		if ci == 0 {
			return nil
		}
		ci--
	}
	if i, found := slices.BinarySearchFunc(l.chunks[ci].entries, key, cmp); found {
		return l.chunks[ci].entries[i]
	}
	return nil
}
