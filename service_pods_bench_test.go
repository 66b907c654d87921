package kuberegistry

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// What the handler costs for one pod's readiness flip in a service of n pods, in process, with the
// service's set published each time:
//
//   - "ours": the incremental sets (servicePods);
//
//   - "rebuild": gathering, filtering and sorting the service's pods at every event, as the
//     handler did before (the cost that made Start and updates grow with n);
//
//   - "limit": storing the new entry in a map and publishing a new slice of the service's n
//     instances, the least a handler does whose readers share an immutable snapshot.
//
//     go test -run '^$' -bench ServiceUpdate -benchmem .
func BenchmarkServiceUpdate(b *testing.B) {
	for _, n := range []int{10, 1000, 10000, 100000} {
		ready, notReady := flipPair(b, n/2)
		b.Run(fmt.Sprintf("instances=%d/ours", n), func(b *testing.B) {
			h, _ := bigService(b, n)
			entries := [2]*podEntry{notReady, ready}
			old := ready
			for i := 0; b.Loop(); i++ {
				h.OnUpdate(old, entries[i%2])
				old = entries[i%2]
			}
		})
		b.Run(fmt.Sprintf("instances=%d/rebuild", n), func(b *testing.B) {
			h, store := bigService(b, n)
			entries := [2]*podEntry{notReady, ready}
			for i := 0; b.Loop(); i++ {
				store[keyOf(ready)] = entries[i%2]
				var all []*podEntry
				for _, e := range store {
					all = append(all, e)
				}
				fallback := !slices.ContainsFunc(all, h.r.usable)
				all = slices.DeleteFunc(all, func(e *podEntry) bool { return !h.r.served(e, fallback) })
				slices.SortFunc(all, comparePodEntries)
				instances := make([]*ServiceInstance, len(all))
				for j, e := range all {
					instances[j] = e.instance
				}
				h.r.catalog.publish("cart", instances)
			}
		})
		b.Run(fmt.Sprintf("instances=%d/limit", n), func(b *testing.B) {
			h, store := bigService(b, n)
			entries := [2]*podEntry{notReady, ready}
			snapshot := h.r.catalog.instances("cart")
			for i := 0; b.Loop(); i++ {
				store[keyOf(ready)] = entries[i%2]
				snapshot = append([]*ServiceInstance(nil), snapshot...)
				snapshotSink = snapshot // kept, as a reader would keep it
			}
		})
	}
}

// snapshotSink keeps the limit's copies alive, so that the compiler cannot drop them.
var snapshotSink []*ServiceInstance

// bigService returns a flushed handler holding one service of n ready pods, and those pods.
func bigService(b *testing.B, n int) (*podEvents, map[podKey]*podEntry) {
	b.Helper()
	r, err := New(fake.NewClientset(), WithNamespace(testNamespace), WithLogger(discardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	h := newPodEvents(r)
	store := make(map[podKey]*podEntry, n)
	for i := range n {
		e := benchEntry(b, i, true)
		store[keyOf(e)] = e
		h.OnAdd(e, true)
	}
	h.flush()
	return h, store
}

// flipPair returns pod i of bigService ready and not ready, sharing one instance.
func flipPair(b *testing.B, i int) (ready, notReady *podEntry) {
	ready = benchEntry(b, i, true)
	notReady = benchEntry(b, i, false)
	notReady.instance, notReady.hash = ready.instance, ready.hash
	return ready, notReady
}

func benchEntry(b *testing.B, i int, ready bool) *podEntry {
	s := registered("cart", `{"9000":"grpc"}`)
	s.name, s.notReady = fmt.Sprintf("cart-%d", i), !ready
	s.ips = []string{fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)}
	pod := newPod(s)
	pod.UID = types.UID(fmt.Sprint("uid-", i))
	obj, err := toPodEntry(pod)
	if err != nil {
		b.Fatal(err)
	}
	return obj.(*podEntry)
}
