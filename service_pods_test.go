package kuberegistry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// podKey identifies a pod in the tests' models of the informer's store.
type podKey struct{ namespace, name string }

func keyOf(e *podEntry) podKey { return podKey{e.Namespace, e.Name} }

// servedModel drives the pod handler with a sequence of events, as an informer would deliver
// them, and checks after each one that what the catalog publishes is what a rebuild from scratch
// publishes: the incremental sets must never drift from the pods behind them.
type servedModel struct {
	t       testing.TB
	r       *Registry
	h       *podEvents
	store   map[podKey]*podEntry // the informer's store
	uids    map[podKey]types.UID // the UID of each pod in store
	strings interner
	nextUID int
}

// modelOptions are the registry configurations the model runs under.
var modelOptions = map[string][]Option{
	"one namespace":     {WithNamespace(testNamespace)},
	"two namespaces":    {WithNamespaces("east", "west")},
	"include not ready": {WithNamespace(testNamespace), WithIncludeNotReady()},
}

func newServedModel(t testing.TB, opts []Option) *servedModel {
	r, err := New(fake.NewClientset(), append(opts, WithLogger(discardLogger()))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return &servedModel{t: t, r: r, h: newPodEvents(r), store: make(map[podKey]*podEntry), uids: make(map[podKey]types.UID)}
}

// step applies one event made of four bytes: what to do, to which pod, and what the pod becomes.
func (m *servedModel) step(op, which, shape, content byte) {
	ns := testNamespace
	if m.r.multiNamespace() {
		ns = []string{"east", "west"}[which%2]
	}
	key := podKey{ns, fmt.Sprintf("p%d", which%12)}
	old := m.store[key]
	switch {
	case op%8 == 0: // flush: the initial lists are in
		if m.h.batching {
			m.h.flush()
		}
		return
	case op%8 == 1 && old != nil: // delete, sometimes as a tombstone
		delete(m.store, key)
		if op&0x10 != 0 {
			m.h.OnDelete(cache.DeletedFinalStateUnknown{Key: key.namespace + "/" + key.name, Obj: old})
		} else {
			m.h.OnDelete(old)
		}
		return
	}
	uid := m.uids[key]
	if old == nil || op%8 == 2 { // op 2 replaces the pod by another of the same name (a relist)
		m.nextUID++
		uid = types.UID(fmt.Sprint(m.nextUID))
		m.uids[key] = uid
	}
	pod := modelPod(key, uid, shape, content)
	obj, err := m.r.translation.toPodEntry(pod, m)
	require.NoError(m.t, err)
	e := obj.(*podEntry)
	m.store[key] = e
	if old == nil {
		m.h.OnAdd(e, m.h.batching)
	} else {
		m.h.OnUpdate(old, e)
	}
}

// The model's store is the informer's cache of the translation.
func (m *servedModel) cached(namespace, name string) *podEntry {
	return m.store[podKey{namespace, name}]
}
func (m *servedModel) interner() *interner { return &m.strings }

// modelPod makes a pod whose service, readiness and content vary with shape and content. Many
// pods share an ID ("<service>-id") and some an address, so equal instances from different pods
// occur.
func modelPod(key podKey, uid types.UID, shape, content byte) *corev1.Pod {
	spec := registered(fmt.Sprintf("s%d", shape%3), `{"9000":"grpc"}`)
	if shape%11 == 10 {
		spec = podSpec{labels: map[string]string{}} // not registered
	}
	spec.name = key.name
	spec.labels[LabelsKeyServiceVersion] = fmt.Sprintf("v%d", content%3)
	spec.ips = []string{fmt.Sprintf("10.0.%d.%d", content%2, 1+(content/2)%4)}
	switch (shape / 3) % 7 {
	case 1:
		spec.notReady = true
	case 2:
		spec.terminating = true
	case 3:
		spec.terminating, spec.notReady = true, true
	case 4:
		spec.phase = corev1.PodPending
	case 5:
		spec.ips = []string{} // Running and Ready without an IP: malformed
	}
	pod := newPod(spec)
	pod.Namespace, pod.UID = key.namespace, uid
	return pod
}

// check compares every published set with a rebuild from the store.
func (m *servedModel) check() {
	m.t.Helper()
	for _, name := range []string{"s0", "s1", "s2"} {
		want := m.rebuild(name)
		if m.h.batching {
			want = nil // nothing is published before the initial lists are in
		}
		m.compare(name, m.r.catalog.instances(name), want)
		if m.r.multiNamespace() {
			for _, ns := range []string{"east", "west"} {
				var mine []*podEntry
				for _, e := range want {
					if e.Namespace == ns {
						mine = append(mine, e)
					}
				}
				m.compare(namespacedKey(name, ns), m.r.catalog.instances(namespacedKey(name, ns)), mine)
			}
		}
	}
}

// rebuild is the readiness policy applied from scratch: the usable pods of the service, or when
// there is none the ones serving while terminating; sorted.
func (m *servedModel) rebuild(name string) []*podEntry {
	var all []*podEntry
	for _, e := range m.store {
		if e.service() == name && e.instance != nil {
			all = append(all, e)
		}
	}
	fallback := !slices.ContainsFunc(all, m.r.usable)
	served := slices.DeleteFunc(all, func(e *podEntry) bool { return !m.r.served(e, fallback) })
	slices.SortFunc(served, comparePodEntries)
	return served
}

func (m *servedModel) compare(key string, got []*ServiceInstance, want []*podEntry) {
	m.t.Helper()
	wantInstances := make([]*ServiceInstance, len(want))
	for i, e := range want {
		wantInstances[i] = e.instance
	}
	if !sameInstances(got, wantInstances) {
		m.t.Fatalf("%s: published %s, a rebuild gives %s", key, describe(got), describe(wantInstances))
	}
	assert.Equal(m.t, len(got), cap(got), "%s: the published slice has spare capacity", key)
}

// runModel plays a sequence of events, four bytes each, checking after every one, with chunks of
// chunk pods in the served sets (small ones, so that sequences split and empty chunks).
func runModel(t testing.TB, opts []Option, events []byte, chunk int) {
	m := newServedModel(t, opts)
	m.h.chunk = chunk
	for i := 0; i+4 <= len(events); i += 4 {
		m.step(events[i], events[i+1], events[i+2], events[i+3])
		m.check()
	}
	if m.h.batching {
		m.h.flush()
		m.check()
	}
}

func TestServedSetsMatchARebuild(t *testing.T) {
	for name, opts := range modelOptions {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(200) {
				rng := rand.New(rand.NewPCG(seed, 42))
				events := make([]byte, 4*(20+rng.IntN(300)))
				for i := range events {
					events[i] = byte(rng.Uint32())
				}
				// Most sequences flush early, as Start does after the initial lists.
				if seed%4 != 0 {
					events[4*rng.IntN(8)] = 0
				}
				runModel(t, opts, events, []int{2, 3, 8, maxChunk}[seed%4])
			}
		})
	}
}

func FuzzServedSetsMatchARebuild(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0, 3, 2, 0, 1, 0, 0, 0, 0, 3, 1, 3, 0, 1, 2, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 3, 1, 6, 0, 3, 2, 0, 0, 3, 2, 3, 0, 2, 1, 6, 1})
	f.Fuzz(func(t *testing.T, events []byte) {
		for _, name := range []string{"one namespace", "two namespaces", "include not ready"} {
			runModel(t, modelOptions[name], events, 2)
			runModel(t, modelOptions[name], events, 8) // chunks that merge after deletions
			runModel(t, modelOptions[name], events, maxChunk)
		}
	})
}

// A pod that goes not ready and back between two Next calls leaves the set as the watcher last
// saw it: Next keeps blocking rather than return the same set again, though the catalog
// published twice in between.
func TestWatcherSkipsAFlapItDidNotSee(t *testing.T) {
	f := newFixture(t, cartPod(1), cartPod(2))
	f.eventually(t, "cart", 2)
	w, err := f.reg.Watch(context.Background(), "cart")
	require.NoError(t, err)
	defer w.Stop()
	first, err := w.Next()
	require.NoError(t, err)
	require.Len(t, first, 2)

	notReady := cartPod(2)
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	f.update(t, notReady)
	f.eventually(t, "cart", 1)
	f.update(t, cartPod(2))
	f.eventually(t, "cart", 2)

	ch := nextAsync(t, w)
	f.create(t, cartPod(3)) // a real change, to end the wait
	got := receive(t, ch)
	require.NoError(t, got.err)
	assert.Equal(t, "grpc://10.0.0.1:9000,grpc://10.0.0.2:9000,grpc://10.0.0.3:9000", strings.Join(endpointsOf(got.instances), ","))
}
