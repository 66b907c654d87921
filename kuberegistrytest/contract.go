package kuberegistrytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
)

// Harness is what TestDiscovery needs to exercise an implementation of kuberegistry.Discovery:
// the implementation, ready to serve, and a way to change what it discovers.
type Harness struct {
	// Discovery is the implementation under test, started.
	Discovery kuberegistry.Discovery
	// SetInstances makes service have exactly the ready instances numbered ids, each with its own
	// endpoints (the same number always gives the same endpoints). It returns once the change is
	// made, not necessarily discovered.
	SetInstances func(t testing.TB, service string, ids ...int)
	// Namespace is where the services live, for the "service.namespace" naming rule; "" skips
	// that check.
	Namespace string
	// Close ends the Discovery, after which a Watcher's Next must fail with an error matching
	// context.Canceled; nil skips that check.
	Close func()
}

// contractWait bounds every wait of TestDiscovery for something that must happen.
const contractWait = 10 * time.Second

// quietWait is how long TestDiscovery waits to see that something does not happen.
const quietWait = 200 * time.Millisecond

// TestDiscovery checks that an implementation of kuberegistry.Discovery keeps the contract that
// the adapters and load balancers rely on, in the manner of testing/fstest.TestFS. newHarness is
// called once per check and must give a Discovery of its own:
//
//   - the first Next of a Watcher returns the current set at once, possibly empty;
//   - a later Next blocks while the set stays the same, and returns it once it differs;
//   - changes made while nobody calls Next coalesce: the next Next returns the newest set, and no
//     Next ever returns the same set twice in a row;
//   - Stop, the end of the Watch's context and the Discovery's Close end a blocked Next with an
//     error that matches context.Canceled;
//   - GetService and Next return slices with len == cap (a reader's append never writes into
//     another's) and an unknown service is empty, not an error;
//   - "service.namespace" names the service in its namespace.
//
// kuberegistry's own sources pass it on client-go's fake clientset; so should yours.
func TestDiscovery(t *testing.T, newHarness func(t *testing.T) *Harness) {
	t.Run("first Next is the current set", func(t *testing.T) {
		h := newHarness(t)
		h.SetInstances(t, "cart", 0, 1)
		waitForSize(t, h.Discovery, "cart", 2)
		w := startWatch(t, h.Discovery, "cart")
		got := nextWithin(t, w, contractWait)
		if len(got) != 2 {
			t.Fatalf("first Next returned %d instances, want the current 2", len(got))
		}
		empty := startWatch(t, h.Discovery, "nobody")
		if got := nextWithin(t, empty, contractWait); len(got) != 0 {
			t.Fatalf("first Next of a service with no instance returned %d", len(got))
		}
	})

	t.Run("Next blocks until the set changes", func(t *testing.T) {
		h := newHarness(t)
		h.SetInstances(t, "cart", 0)
		waitForSize(t, h.Discovery, "cart", 1)
		w := startWatch(t, h.Discovery, "cart")
		nextWithin(t, w, contractWait)
		results := nextAsync(w)
		h.SetInstances(t, "other", 0) // another service's change wakes nobody here
		select {
		case r := <-results:
			t.Fatalf("Next returned %d instances, err %v, though the set did not change", len(r.instances), r.err)
		case <-time.After(quietWait):
		}
		h.SetInstances(t, "cart", 0, 1)
		r := receive(t, results)
		if r.err != nil || len(r.instances) != 2 {
			t.Fatalf("after a change Next returned %d instances, err %v; want 2", len(r.instances), r.err)
		}
	})

	t.Run("changes coalesce and no set repeats", func(t *testing.T) {
		h := newHarness(t)
		w := startWatch(t, h.Discovery, "cart")
		last := nextWithin(t, w, contractWait)
		for n := 1; n <= 5; n++ {
			ids := make([]int, n)
			for i := range ids {
				ids[i] = i
			}
			h.SetInstances(t, "cart", ids...)
		}
		waitForSize(t, h.Discovery, "cart", 5)
		for {
			got := nextWithin(t, w, contractWait)
			if describe(got) == describe(last) {
				t.Fatalf("Next returned the same set twice in a row: %s", describe(got))
			}
			last = got
			if len(got) == 5 {
				break
			}
		}
		// Every change is already discovered: the newest set was returned, and nothing is pending.
		results := nextAsync(w)
		select {
		case r := <-results:
			t.Fatalf("Next returned again (%d instances, err %v) with nothing changed", len(r.instances), r.err)
		case <-time.After(quietWait):
		}
	})

	t.Run("Stop, context and Close end Next with context.Canceled", func(t *testing.T) {
		h := newHarness(t)
		ends := map[string]func(w kuberegistry.Watcher, cancel context.CancelFunc){
			"Stop":    func(w kuberegistry.Watcher, _ context.CancelFunc) { _ = w.Stop() },
			"context": func(_ kuberegistry.Watcher, cancel context.CancelFunc) { cancel() },
		}
		if h.Close != nil {
			ends["Close"] = func(kuberegistry.Watcher, context.CancelFunc) { h.Close() }
		}
		for _, how := range []string{"Stop", "context", "Close"} {
			end, ok := ends[how]
			if !ok {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			w, err := h.Discovery.Watch(ctx, "cart")
			if err != nil {
				cancel()
				t.Fatalf("Watch: %v", err)
			}
			nextWithin(t, w, contractWait)
			results := nextAsync(w)
			end(w, cancel)
			r := receive(t, results)
			cancel()
			_ = w.Stop()
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("after %s, Next returned %v, want an error matching context.Canceled", how, r.err)
			}
		}
	})

	t.Run("results have no spare capacity", func(t *testing.T) {
		h := newHarness(t)
		h.SetInstances(t, "cart", 0, 1, 2)
		got := waitForSize(t, h.Discovery, "cart", 3)
		if len(got) != cap(got) {
			t.Errorf("GetService returned len %d, cap %d: an append by one caller would write into another's", len(got), cap(got))
		}
		w := startWatch(t, h.Discovery, "cart")
		if got := nextWithin(t, w, contractWait); len(got) != cap(got) {
			t.Errorf("Next returned len %d, cap %d", len(got), cap(got))
		}
		none, err := h.Discovery.GetService(context.Background(), "nobody")
		if err != nil || len(none) != 0 {
			t.Errorf("GetService of an unknown service = %d instances, %v; want none and no error", len(none), err)
		}
	})

	t.Run("service.namespace names the service", func(t *testing.T) {
		h := newHarness(t)
		if h.Namespace == "" {
			t.Skip("the harness names no namespace")
		}
		h.SetInstances(t, "cart", 0, 1)
		want := describe(waitForSize(t, h.Discovery, "cart", 2))
		qualified := "cart." + h.Namespace
		got, err := h.Discovery.GetService(context.Background(), qualified)
		if err != nil || describe(got) != want {
			t.Errorf("GetService(%q) = %s, %v; want %s", qualified, describe(got), err, want)
		}
		w := startWatch(t, h.Discovery, qualified)
		if got := describe(nextWithin(t, w, contractWait)); got != want {
			t.Errorf("Watch(%q) first Next = %s, want %s", qualified, got, want)
		}
	})
}

// startWatch starts a watcher that the test stops at its end.
func startWatch(t *testing.T, d kuberegistry.Discovery, service string) kuberegistry.Watcher {
	t.Helper()
	w, err := d.Watch(context.Background(), service)
	if err != nil {
		t.Fatalf("Watch(%q): %v", service, err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

type nextResult struct {
	instances []*kuberegistry.ServiceInstance
	err       error
}

// nextAsync calls Next in a goroutine; the result arrives on the channel, which has room for it,
// so the goroutine ends even if nobody reads it (the test stops the watcher at its end).
func nextAsync(w kuberegistry.Watcher) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		instances, err := w.Next()
		ch <- nextResult{instances, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(contractWait):
		t.Fatalf("Next did not return within %v", contractWait)
		return nextResult{}
	}
}

// nextWithin calls Next and fails the test unless it returns a set within d.
func nextWithin(t *testing.T, w kuberegistry.Watcher, d time.Duration) []*kuberegistry.ServiceInstance {
	t.Helper()
	results := nextAsync(w)
	select {
	case r := <-results:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.instances
	case <-time.After(d):
		t.Fatalf("Next did not return within %v", d)
		return nil
	}
}

// waitForSize polls GetService until the service has n instances.
func waitForSize(t *testing.T, d kuberegistry.Discovery, service string, n int) []*kuberegistry.ServiceInstance {
	t.Helper()
	deadline := time.Now().Add(contractWait)
	for {
		got, err := d.GetService(context.Background(), service)
		if err == nil && len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetService(%q) = %d instances, %v; still not %d after %v", service, len(got), err, n, contractWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
