package integration

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
)

// watchLog records every set a watcher returned, until it ends.
type watchLog struct {
	mu   sync.Mutex
	sets []string
}

func (l *watchLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sets = append(l.sets, s)
}

func (l *watchLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sets...)
}

// follow runs a watcher until it ends, recording what it sees; the test waits for it.
func follow(t *testing.T, w kuberegistry.Watcher) *watchLog {
	t.Helper()
	l := &watchLog{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := w.Next()
			if err != nil {
				return
			}
			l.add(endpoints(in))
		}
	}()
	t.Cleanup(func() {
		_ = w.Stop()
		wg.Wait()
	})
	return l
}

// 7. 50 watchers on 10 services while 500 pod changes are made concurrently: every watcher ends on
// GetService's answer and never sees the same set twice in a row.
func TestWatchUnderChurn(t *testing.T) {
	const services, podsPerService, watchersPerService, changes, writers = 10, 5, 5, 500, 10
	ns := newNamespace(t)
	client := adminClient(t)
	ip := func(s, p int) string { return fmt.Sprintf("10.1.%d.%d", s, p+1) }
	for s := range services {
		for p := range podsPerService {
			readyPod(t, ns, fmt.Sprintf("svc-%d-%d", s, p), fmt.Sprintf("svc-%d", s), ip(s, p))
		}
	}
	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns))
	logs := map[string][]*watchLog{}
	for s := range services {
		name := fmt.Sprintf("svc-%d", s)
		for range watchersPerService {
			w, err := reg.Watch(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			logs[name] = append(logs[name], follow(t, w))
		}
	}

	var wg sync.WaitGroup
	for wr := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(wr), 7))
			for range changes / writers {
				s, p := rng.IntN(services), rng.IntN(podsPerService)
				setPodStatus(t, ns, fmt.Sprintf("svc-%d-%d", s, p), corev1.PodRunning, rng.IntN(2) == 0, ip(s, p))
			}
		}()
	}
	wg.Wait()

	for name, ls := range logs {
		for i, l := range ls {
			eventually(t, func() error {
				want, err := reg.GetService(t.Context(), name)
				if err != nil {
					return err
				}
				sets := l.snapshot()
				if len(sets) == 0 || sets[len(sets)-1] != endpoints(want) {
					return fmt.Errorf("watcher %d of %s last saw %q, GetService says %q", i, name, sets[len(sets)-1], endpoints(want))
				}
				return nil
			})
			sets := l.snapshot()
			for j := 1; j < len(sets); j++ {
				if sets[j] == sets[j-1] {
					t.Errorf("watcher %d of %s saw %q twice in a row", i, name, sets[j])
				}
			}
		}
	}
	total := 0
	for _, ls := range logs {
		for _, l := range ls {
			total += len(l.snapshot())
		}
	}
	t.Logf("%d changes reached 50 watchers as %d sets in all (bursts coalesce)", changes, total)
}
