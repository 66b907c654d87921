package main

// The soak mode (-soak): one kuberegistry Registry, as a program runs it, with hundreds of
// watchers draining Next, under steady churn for a long time; it samples the process as it goes
// and checks at the end that nothing leaked, that every watcher agrees with GetService and with
// the fleet, and that no Next returned the set it had already returned.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
)

// soakFlags are the settings of the soak mode.
type soakFlags struct {
	duration     time.Duration // of the churn; 0: the mode is off
	rate         float64       // changes a second
	watchers     int
	sample       time.Duration
	replaceOneIn int
	settle       time.Duration // longest wait for the registry to converge once the churn stops
	command      string
}

func (s *soakFlags) active() bool { return s.duration > 0 }

// soakSlack is what -timeout must leave beyond -soak and -soak-settle: creating and deleting the
// fleet, starting and closing.
const soakSlack = 15 * time.Minute

// addSoakFlags defines the soak mode's flags on fs and returns what checks them once fs is
// parsed.
func addSoakFlags(fs *flag.FlagSet, f *flags) func() error {
	fs.DurationVar(&f.soak.duration, "soak", 0, "run the soak instead of the main scenario, with churn for this long (e.g. 30m): one registry, -soak-watchers watchers, the fleet of -pods, -registered and -services")
	fs.Float64Var(&f.soak.rate, "soak-rate", 50, "changes a second during the soak: readiness flips and pod replacements, spread across the services")
	fs.IntVar(&f.soak.watchers, "soak-watchers", 500, "watchers during the soak, each draining Next in its own goroutine; watcher k watches service k mod -services")
	fs.DurationVar(&f.soak.sample, "soak-sample", time.Minute, "how often the soak samples the heap, goroutines, watchers and counters")
	fs.IntVar(&f.soak.replaceOneIn, "soak-replace", 5, "one change in this many replaces a pod (deleted, created again under a new name in the same service); the others flip a pod's readiness")
	fs.DurationVar(&f.soak.settle, "soak-settle", 2*time.Minute, "longest wait, once the churn stops, for every watcher to agree with GetService and the fleet")
	return func() error {
		if !f.soak.active() {
			if f.soak.duration < 0 {
				return errors.New("-soak must be positive")
			}
			return nil
		}
		var errs []error
		if f.soak.rate <= 0 {
			errs = append(errs, errors.New("-soak-rate must be positive"))
		}
		if f.soak.watchers < 1 {
			errs = append(errs, errors.New("-soak-watchers must be at least 1"))
		}
		if f.soak.sample <= 0 || f.soak.duration < 2*f.soak.sample {
			errs = append(errs, errors.New("-soak must be at least twice -soak-sample, to have a start, a middle and an end"))
		}
		if f.soak.replaceOneIn < 1 {
			errs = append(errs, errors.New("-soak-replace must be at least 1"))
		}
		if f.soak.settle <= 0 {
			errs = append(errs, errors.New("-soak-settle must be positive"))
		}
		if f.registered/max(f.services, 1) < 1 {
			errs = append(errs, errors.New("the soak needs every service to have a pod: -registered at least -services"))
		}
		if least := f.soak.duration + f.soak.settle + soakSlack; f.timeout < least {
			errs = append(errs, fmt.Errorf("-timeout %s is too short for -soak %s: give -timeout %s or more", f.timeout, f.soak.duration, least))
		}
		if len(f.sizePoints) > 0 || f.scale.active() {
			errs = append(errs, errors.New("-soak, -scale and -service-sizes/-spread are separate modes: give one"))
		}
		f.soak.command = commandLine(fs)
		return errors.Join(errs...)
	}
}

// errSoakFailed is returned once the soak's table is printed, when a check failed.
var errSoakFailed = errors.New("a soak check failed")

// soakSample is the state of the process at one moment of the soak.
type soakSample struct {
	at         time.Duration // since the churn started
	heap       uint64        // live heap after two collections
	goroutines int
	stats      kuberegistry.Stats
	changes    int64 // made by the churn so far
	sets       int64 // returned by Next, over all watchers
}

// soakResult is what the soak observed.
type soakResult struct {
	s          workload.Scenario
	created    time.Duration
	samples    []soakSample // at the churn's start, every -soak-sample, and at its end
	settled    soakSample   // once the churn stopped and the registry converged
	settleTook time.Duration
	converged  bool // within -soak-settle
	churned    time.Duration
	flips      int64
	replaced   int64
	duplicates int64
	endedEarly []string // watchers whose Next failed before Close, and why
	disagree   []string // watchers whose last set differs from GetService
	wrongFleet []string // services whose GetService differs from the fleet's ready pods
}

// runSoak creates the fleet in a namespace of its own, soaks, prints the table and returns
// errSoakFailed when a check failed.
func runSoak(ctx context.Context, c *cluster, f *flags) error {
	admin, err := bulkClient(c)
	if err != nil {
		return err
	}
	s := f.scenario()
	var res soakResult
	err = inNamespace(ctx, admin, func(ns string) error {
		logf("soak: %d pods, %d registered in %d services; %d watchers; %s of churn at %g changes/s", s.Pods, s.Registered, s.Services, f.soak.watchers, f.soak.duration, f.soak.rate)
		began := time.Now()
		if err := createPodsWith(ctx, admin, ns, s.Pod, 0, s.Pods, bulkWorkers); err != nil {
			return err
		}
		res.created = time.Since(began)
		return soak(ctx, c, newChurn(admin, ns, s, f.soak.replaceOneIn), ns, f, &res)
	})
	if err != nil {
		return err
	}
	r := buildSoakReport(f, machine(c), res)
	if err := output(f, func(w io.Writer) error { return renderSoak(w, r) }); err != nil {
		return err
	}
	if r.failed > 0 {
		return fmt.Errorf("%w: %d of %d", errSoakFailed, r.failed, len(r.checks))
	}
	return nil
}

// soakWatcher is one watcher of the soak and what its Next returned.
type soakWatcher struct {
	svc        int
	sets       atomic.Int64
	duplicates atomic.Int64

	mu   sync.Mutex // guards last and err
	last []*kuberegistry.ServiceInstance
	err  error // why Next failed before the registry closed
}

// drain returns the sets of w's Next until it fails; closing tells whether the registry is being
// closed, when a failure is the expected end.
func (sw *soakWatcher) drain(w kuberegistry.Watcher, closing *atomic.Bool) {
	for {
		set, err := w.Next()
		if err != nil {
			if !closing.Load() {
				sw.mu.Lock()
				sw.err = err
				sw.mu.Unlock()
			}
			return
		}
		sw.mu.Lock()
		if sw.sets.Load() > 0 && sameSet(set, sw.last) {
			sw.duplicates.Add(1)
		}
		sw.last = set
		sw.mu.Unlock()
		sw.sets.Add(1)
	}
}

func (sw *soakWatcher) lastSet() ([]*kuberegistry.ServiceInstance, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.last, sw.err
}

// soak starts the registry and its watchers over the fleet in ns, churns and samples for
// f.soak.duration, stops the churn, waits for the registry to converge and checks it.
func soak(ctx context.Context, c *cluster, ch *churn, ns string, f *flags, res *soakResult) error {
	s := ch.s
	res.s = s
	reg, err := kuberegistry.NewForConfig(c.config, kuberegistry.WithNamespace(ns))
	if err != nil {
		return err
	}
	var closing atomic.Bool
	var wg sync.WaitGroup
	defer func() {
		closing.Store(true)
		_ = reg.Close() // ends every Next
		wg.Wait()
	}()
	if err := reg.Start(ctx); err != nil {
		return fmt.Errorf("starting kuberegistry: %w", err)
	}
	watchers := make([]*soakWatcher, f.soak.watchers)
	for k := range watchers {
		sw := &soakWatcher{svc: k % s.Services}
		w, err := reg.Watch(context.Background(), workload.Service(sw.svc)) // ends at Close
		if err != nil {
			return fmt.Errorf("watching %s: %w", workload.Service(sw.svc), err)
		}
		watchers[k] = sw
		wg.Go(func() { sw.drain(w, &closing) })
	}
	if err := settle(ctx); err != nil {
		return err
	}
	sets := func() int64 {
		var n int64
		for _, sw := range watchers {
			n += sw.sets.Load()
		}
		return n
	}
	take := func(at time.Duration) soakSample {
		sample := soakSample{at: at, heap: liveHeap(), goroutines: runtime.NumGoroutine(), stats: reg.Stats(), changes: ch.done(), sets: sets()}
		logf("soak %s: live heap %s, %d goroutines, %d watchers, %d instances, %d changes, %d sets delivered",
			at.Round(time.Second), formatMiB(float64(sample.heap)), sample.goroutines, sample.stats.Watchers, sample.stats.Instances, sample.changes, sample.sets)
		return sample
	}

	// The churn runs while this goroutine samples; the last sample is at the churn's end, then
	// the churn stops.
	stop := make(chan struct{})
	churned := make(chan error, 1)
	start := time.Now()
	res.samples = append(res.samples, take(0))
	go func() { churned <- ch.run(ctx, stop, f.soak.rate) }()
	end := start.Add(f.soak.duration)
	for next := start.Add(f.soak.sample); ; next = next.Add(f.soak.sample) {
		next = minTime(next, end)
		select {
		case <-time.After(time.Until(next)):
		case err := <-churned: // a change failed, or ctx ended
			close(stop)
			if err == nil {
				err = errors.New("it ended before its time")
			}
			return fmt.Errorf("soak churn: %w", err)
		}
		res.samples = append(res.samples, take(next.Sub(start)))
		if !next.Before(end) {
			break
		}
	}
	close(stop)
	if err := <-churned; err != nil {
		return fmt.Errorf("soak churn: %w", err)
	}
	res.churned = time.Since(start)
	res.flips, res.replaced = ch.flips.Load(), ch.replacements.Load()
	logf("soak: churn stopped after %d changes (%d flips, %d replacements) in %s; waiting for the registry to converge",
		res.flips+res.replaced, res.flips, res.replaced, res.churned.Round(time.Second))

	expected := ch.expected()
	check := func() { res.endedEarly, res.disagree, res.wrongFleet = compareSoak(ctx, reg, watchers, expected) }
	settleStart := time.Now()
	for {
		check()
		if len(res.disagree) == 0 && len(res.wrongFleet) == 0 {
			res.converged = true
			break
		}
		if time.Since(settleStart) > f.soak.settle {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	res.settleTook = time.Since(settleStart)
	if err := settle(ctx); err != nil {
		return err
	}
	check() // once more, idle: nothing may have moved since
	res.settled = take(time.Since(start))
	for _, sw := range watchers {
		res.duplicates += sw.duplicates.Load()
	}
	return nil
}

// compareSoak compares every watcher's last set with GetService of its service, and every
// service's GetService with the IPs of the fleet's ready pods (expected, by service index). It
// returns, as one line each, the watchers that failed, those that disagree with GetService, and
// the services whose instances are not the fleet's.
func compareSoak(ctx context.Context, reg *kuberegistry.Registry, watchers []*soakWatcher, expected [][]string) (failed, disagree, wrong []string) {
	got := make([][]*kuberegistry.ServiceInstance, len(expected))
	for svc := range expected {
		set, err := reg.GetService(ctx, workload.Service(svc))
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("%s: GetService: %v", workload.Service(svc), err))
			continue
		}
		got[svc] = set
		if hosts := setHosts(set); !slices.Equal(hosts, expected[svc]) {
			wrong = append(wrong, fmt.Sprintf("%s: serves %v, the fleet's ready pods are %v", workload.Service(svc), hosts, expected[svc]))
		}
	}
	for k, sw := range watchers {
		last, err := sw.lastSet()
		if err != nil {
			failed = append(failed, fmt.Sprintf("watcher %d of %s: Next failed: %v", k, workload.Service(sw.svc), err))
			continue
		}
		if !sameSet(last, got[sw.svc]) {
			disagree = append(disagree, fmt.Sprintf("watcher %d of %s: last set %v, GetService %v", k, workload.Service(sw.svc), setHosts(last), setHosts(got[sw.svc])))
		}
	}
	return failed, disagree, wrong
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
