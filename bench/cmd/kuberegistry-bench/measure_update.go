package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
)

// fleetState is the readiness the benchmark has given each registered pod, and so the number of
// ready instances each service has. Every pod starts ready, as createPods leaves it.
type fleetState struct {
	s     workload.Scenario
	ready []bool // by pod index
	count []int  // ready instances by service index
}

func newFleetState(s workload.Scenario) *fleetState {
	f := &fleetState{s: s, ready: make([]bool, s.Registered), count: make([]int, s.Services)}
	for i := range f.ready {
		f.ready[i] = true
		f.count[s.ServiceOf(i)]++
	}
	return f
}

// flip toggles registered pod i and returns its new readiness, its service, and the number of
// ready instances the service has after the change.
func (f *fleetState) flip(i int) (ready bool, svc, want int) {
	svc = f.s.ServiceOf(i)
	f.ready[i] = !f.ready[i]
	if f.ready[i] {
		f.count[svc]++
	} else {
		f.count[svc]--
	}
	return f.ready[i], svc, f.count[svc]
}

// updatePlan returns n registered pods to flip, one after another: pods of services
// 0..watched-1, visiting every service before any of them twice, and each pod of a service before
// any of them twice. A service's pods are svc, svc+Services, svc+2·Services, … (ServiceOf).
func updatePlan(s workload.Scenario, watched, n int) []int {
	perService := s.Registered / s.Services // every service has at least this many pods
	plan := make([]int, n)
	for j := range plan {
		svc := j % watched
		k := (j / watched) % perService
		plan[j] = svc + k*s.Services
	}
	return plan
}

// warmUpdates are flipped one at a time before each measured series, to warm connections,
// goroutines and caches.
const warmUpdates = 20

// cpuResult is the CPU time per update of baseline, ours and limit, with the updates written one
// at a time and in bursts, and the time each took to sync at the start of its sessions; zero
// where not measured.
type cpuResult struct {
	sequential [3]time.Duration
	burst      [3]time.Duration
	sync       [3]time.Duration
}

// cpuRun describes one CPU measurement.
type cpuRun struct {
	watched int // services watched, 0..watched-1; the updates go to their pods
	updates int // updates written one at a time, per session
	bursts  int // bursts of one update per watched service, per session; 0 for none
	// rounds is how many sessions kuberegistry and the limit each have, alternately; the median
	// is kept. The baseline has one: with many watchers its setup alone takes a minute.
	rounds int
	// skipBaseline leaves the naive registry out.
	skipBaseline bool
	// then, if set, is called with each design's receiver after its first session, before it
	// closes.
	then func(design int, r receiver) error
	// perService is how many watchers each watched service has; the bare handler then signals
	// that many goroutines, as kuberegistry wakes that many Next. 0 is the main table's setup:
	// one watcher per service, and a bare handler that only notes the pod's name.
	perService int
}

// designNames name the designs in progress messages.
var designNames = [3]string{"naive", "kuberegistry", "bare handler (limit)"}

// measureCPU measures the CPU time this process spends per pod update for the naive registry,
// kuberegistry and the limit (a bare informer handler, protobuf, same selector), in sessions one
// after another: the baseline, then kuberegistry and the limit alternately, rounds times. In a
// session, the writer process flips the readiness of registered pods of the watched services,
// and every change is awaited at its consumer (the naive watcher's channel, the Next of a
// kuberegistry watcher, the bare handler):
//
//   - one at a time: the next update is written once the last has been received;
//   - in bursts: one pod of each watched service, written by the writer as fast as it can, the
//     next burst once all its changes have been received.
//
// The naive registry and kuberegistry have run.perService watchers (at least one) open on each of
// the watched services. Each session also times its design's start to a synced cache.
func measureCPU(ctx context.Context, c *cluster, w *writerProc, namespace string, state *fleetState, run cpuRun) (cpuResult, error) {
	names := serviceNames(state.s.Services)[:run.watched]
	sequential := batches(updatePlan(state.s, run.watched, warmUpdates+run.updates), 1)
	burst := batches(updatePlan(state.s, run.watched, run.watched*(1+run.bursts)), run.watched)
	opens := [3]func() (receiver, error){
		func() (receiver, error) { return openNaive(ctx, c, namespace, names, run.perService) },
		func() (receiver, error) { return openOurs(ctx, c, namespace, names, run.perService) },
		func() (receiver, error) {
			return openBare(ctx, c, namespace, state.s.Registered, names, run.perService)
		},
	}
	var sessions []int
	if !run.skipBaseline {
		sessions = append(sessions, baseline)
	}
	for range max(run.rounds, 1) {
		sessions = append(sessions, ours, limit)
	}
	var seq, bursts, syncs [3][]time.Duration
	for k, d := range sessions {
		what := fmt.Sprintf("CPU per update, %d watchers, %d pods, %s", run.watched*max(run.perService, 1), state.s.Pods, designNames[d])
		logf("%s: starting", what)
		// Pods written from this process since the writer read them (measureLatency) would each
		// cost it a conflict and two more requests, spacing the updates out.
		if err := w.refresh(ctx); err != nil {
			return cpuResult{}, err
		}
		if err := settle(ctx); err != nil { // the last session's end is not billed to this sync
			return cpuResult{}, err
		}
		r, err := opens[d]()
		if err != nil {
			return cpuResult{}, err
		}
		syncs[d] = append(syncs[d], r.syncTime())
		logf("%s: synced in %s", what, r.syncTime().Round(time.Millisecond))
		first := !slices.Contains(sessions[:k], d)
		err = func() error {
			defer r.close()
			cpu, wall, err := cpuPerUpdate(ctx, w, r, state, sequential[:warmUpdates], sequential[warmUpdates:])
			if err != nil {
				return err
			}
			seq[d] = append(seq[d], cpu)
			logf("%s: %s one at a time (%d updates in %s)", what, cpu, run.updates, wall.Round(time.Millisecond))
			if run.bursts > 0 {
				if cpu, wall, err = cpuPerUpdate(ctx, w, r, state, burst[:1], burst[1:]); err != nil {
					return err
				}
				bursts[d] = append(bursts[d], cpu)
				logf("%s: %s in bursts (%d of %d in %s)", what, cpu, run.bursts, run.watched, wall.Round(time.Millisecond))
			}
			if run.then != nil && first {
				return run.then(d, r)
			}
			return nil
		}()
		if err != nil {
			return cpuResult{}, err
		}
	}
	var res cpuResult
	for d := range 3 {
		res.sequential[d], res.burst[d], res.sync[d] = median(seq[d]), median(bursts[d]), median(syncs[d])
	}
	return res, nil
}

// batches cuts plan into batches of size pods.
func batches(plan []int, size int) [][]int {
	var out [][]int
	for len(plan) >= size {
		out = append(out, plan[:size])
		plan = plan[size:]
	}
	return out
}

// cpuPerUpdate writes the batches of warm, then those of measured, through the writer, and awaits
// every change of a batch at r before writing the next. It returns the CPU time per update and
// the wall time of the measured batches.
func cpuPerUpdate(ctx context.Context, w *writerProc, r receiver, state *fleetState, warm, measured [][]int) (cpu, wall time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ctx, stop := w.guard(ctx)
	defer stop()
	type change struct{ i, svc int }
	changes := make([]change, 0, len(measured[0]))
	flips := make([]flip, 0, len(measured[0]))
	step := func(batch []int) error {
		changes, flips = changes[:0], flips[:0]
		for _, i := range batch {
			ready, svc, _ := state.flip(i)
			changes = append(changes, change{i, svc})
			flips = append(flips, flip{i, ready})
		}
		if err := w.write(flips); err != nil {
			return err
		}
		for _, ch := range changes { // a batch holds one pod per service: its final count is awaited
			if _, err := r.await(ctx, ch.i, ch.svc, state.count[ch.svc]); err != nil {
				return fmt.Errorf("pod update not delivered: %w", err)
			}
		}
		return nil
	}
	for _, batch := range warm {
		if err := step(batch); err != nil {
			return 0, 0, err
		}
	}
	n := 0
	startCPU, start := cpuTime(), time.Now()
	for _, batch := range measured {
		if err := step(batch); err != nil {
			return 0, 0, err
		}
		n += len(batch)
	}
	return (cpuTime() - startCPU) / time.Duration(n), time.Since(start), nil
}
