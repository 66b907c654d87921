package main

// The scale mode (-scale): the measurements that matter for scale — Start → synced against a bare
// List, cache memory per registered pod, GetService, CPU per pod update against a bare informer —
// at several fleet sizes of the chart's shape in one run, side by side, with the ratio of the
// largest size's value to the smallest's.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
	"k8s.io/client-go/kubernetes"
)

// bulkWorkers is how many requests create a scale or soak fleet at once. On the local control
// plane 16 and 64 create pods equally fast (kube-apiserver's CPU is the bound: about 2 ms to
// create a pod and 2.6 ms to write its status); against a remote cluster more requests in flight
// hide the round trips.
const bulkWorkers = 64

// scaleFlags are the settings of the scale mode.
type scaleFlags struct {
	sizes       []int // fleet sizes in pods, growing; none: the mode is off
	watchers    int   // watchers, one per service on services 0..watchers-1 (fewer where a fleet has fewer services)
	baselineMax int   // largest fleet at which the naive registry's CPU per update is measured
	command     string
}

func (s *scaleFlags) active() bool { return len(s.sizes) > 0 }

// addScaleFlags defines the scale mode's flags on fs and returns what checks them once fs is
// parsed.
func addScaleFlags(fs *flag.FlagSet, f *flags) func() error {
	sizes := fs.String("scale", "", "measure the scale table instead of the main scenario, at these fleet sizes (pods, multiples of 20, growing; e.g. 10000,100000): half the pods registered, pods/20 services")
	fs.IntVar(&f.scale.watchers, "scale-watchers", 500, "watchers of the scale table, one per service on the first services")
	fs.IntVar(&f.scale.baselineMax, "scale-baseline-max", 10000, "largest fleet of the scale table at which the naive registry's CPU per update is measured (0: never); beyond, its setup with hundreds of watchers takes many minutes")
	return func() error {
		if *sizes == "" {
			return nil
		}
		var err error
		if f.scale.sizes, err = parseScaleSizes(*sizes); err != nil {
			return err
		}
		var errs []error
		if f.scale.watchers < 1 {
			errs = append(errs, errors.New("-scale-watchers must be at least 1"))
		}
		if f.scale.baselineMax < 0 {
			errs = append(errs, errors.New("-scale-baseline-max must be at least 0"))
		}
		if len(f.sizePoints) > 0 {
			errs = append(errs, errors.New("-scale and -service-sizes/-spread are separate modes: give one"))
		}
		// The scale table's Start → synced is a median of 3 runs unless -runs says otherwise.
		runsSet := false
		fs.Visit(func(fl *flag.Flag) { runsSet = runsSet || fl.Name == "runs" })
		if !runsSet {
			f.runs = 3
		}
		f.scale.command = commandLine(fs)
		return errors.Join(errs...)
	}
}

// parseScaleSizes reads -scale: at least two fleet sizes in pods, growing, each a multiple of 20
// (chartScenario's shape: half registered, ten to a service).
func parseScaleSizes(list string) ([]int, error) {
	var sizes []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 20 || n%20 != 0 {
			return nil, fmt.Errorf("-scale: %q is not a multiple of 20 pods", field)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, errors.New("-scale: the sizes must grow")
		}
		sizes = append(sizes, n)
	}
	if len(sizes) < 2 {
		return nil, errors.New("-scale needs at least two sizes, to compare the largest with the smallest")
	}
	return sizes, nil
}

// commandLine is the command that ran the program with the flags of fs that were set, as the
// caption of a table shows it.
func commandLine(fs *flag.FlagSet) string {
	parts := []string{"go run ./cmd/kuberegistry-bench"}
	fs.Visit(func(fl *flag.Flag) {
		value := fl.Value.String()
		if strings.ContainsAny(value, " \t'\"$") {
			value = strconv.Quote(value)
		}
		parts = append(parts, "-"+fl.Name+" "+value)
	})
	return strings.Join(parts, " ")
}

// scalePoint is what the scale mode measured at one fleet size. Arrays are indexed by design
// (baseline, ours, limit); zero where not measured.
type scalePoint struct {
	s        workload.Scenario
	watchers int
	created  time.Duration // creating the fleet, every pod created then its status written
	start    [3]time.Duration
	heap     uint64   // ours, the live heap a started registry adds
	lookup   callCost // ours
	cpu      cpuResult
	naive    bool // whether cpu holds the naive registry's CPU per update
}

// runScale measures every size of the scale mode, one after another, each in a namespace of its
// own, and prints the table.
func runScale(ctx context.Context, c *cluster, f *flags) error {
	admin, err := bulkClient(c)
	if err != nil {
		return err
	}
	var points []scalePoint
	for k, size := range f.scale.sizes {
		// The local control plane goes with its data once the run ends: deleting the largest
		// fleet, one request a pod, would only take minutes.
		last := k == len(f.scale.sizes)-1 && c.local != nil
		p, err := measureScalePoint(ctx, c, admin, f, size, last)
		if err != nil {
			return fmt.Errorf("scale, %d pods: %w", size, err)
		}
		points = append(points, p)
	}
	r := buildScaleReport(f, machine(c), points)
	return output(f, func(w io.Writer) error { return renderScale(w, r) })
}

// bulkClient is a protobuf client without client-side rate limit, for creating fleets: nothing
// but the API server may set the pace.
func bulkClient(c *cluster) (kubernetes.Interface, error) {
	cfg := protobufConfig(c.config)
	cfg.QPS, cfg.Burst = -1, 0 // a negative QPS leaves the rate limiter out
	return kubernetes.NewForConfig(cfg)
}

// measureScalePoint creates the fleet of size pods and measures it:
//
//   - Start → synced of kuberegistry (NewForConfig and Start) against one protobuf List of the
//     registered pods, alternately, f.runs times, medians; the live heap the registry adds; on
//     the last run, GetService over every service for f.lookupTime;
//   - CPU per pod update with the watchers open (measureCPU): kuberegistry and the bare protobuf
//     informer alternately, f.rounds sessions each, after one session of the naive registry when
//     the fleet is no larger than -scale-baseline-max.
//
// keep leaves the namespace in place at the end (see runScale).
func measureScalePoint(ctx context.Context, c *cluster, admin kubernetes.Interface, f *flags, size int, keep bool) (scalePoint, error) {
	s := chartScenario(size)
	p := scalePoint{s: s, watchers: min(f.scale.watchers, s.Services)}
	logf("scale: %d pods, %d registered in %d services, %d watchers", s.Pods, s.Registered, s.Services, p.watchers)
	ns, err := createNamespace(ctx, admin)
	if ns != "" && !keep {
		defer func() {
			cleanupCtx, cancel := withTimeout(10 * time.Minute)
			defer cancel()
			if err := deleteNamespace(cleanupCtx, admin, ns); err != nil {
				logf("cleaning up: %v", err)
			}
		}()
	}
	if err != nil {
		return p, err
	}
	began := time.Now()
	if err := createPodsWith(ctx, admin, ns, s.Pod, 0, s.Pods, bulkWorkers); err != nil {
		return p, err
	}
	p.created = time.Since(began)

	names := serviceNames(s.Services)
	var starts [3][]time.Duration
	var heaps []uint64
	for run := range f.runs {
		last := run == f.runs-1
		var res syncResult
		took, held, prebuilt, err := syncOurs(ctx, c, ns, names, &res, last, f.lookupTime)
		if err != nil {
			return p, err
		}
		if found := countInstances(prebuilt); found != s.Registered {
			return p, fmt.Errorf("kuberegistry found %d instances, want %d", found, s.Registered)
		}
		prebuilt = nil
		if last {
			p.lookup = res.lookup[ours]
		}
		listed, err := listRegistered(ctx, c, ns, s.Registered)
		if err != nil {
			return p, err
		}
		starts[ours], starts[limit], heaps = append(starts[ours], took), append(starts[limit], listed), append(heaps, held)
		logf("scale, %d pods: Start → synced, run %d/%d: kuberegistry %s, bare List %s; heap %s (%s per registered pod)",
			s.Pods, run+1, f.runs, took.Round(time.Millisecond), listed.Round(time.Millisecond),
			formatMiB(float64(held)), formatBytes(float64(held)/float64(s.Registered)))
	}
	p.start[ours], p.start[limit], p.heap = median(starts[ours]), median(starts[limit]), medianUint64(heaps)

	w, err := startWriter(ctx, c, ns)
	if err != nil {
		return p, err
	}
	defer w.close()
	p.naive = s.Pods <= f.scale.baselineMax
	p.cpu, err = measureCPU(ctx, c, w, ns, newFleetState(s), cpuRun{
		watched: p.watchers, updates: f.updates, rounds: f.rounds, skipBaseline: !p.naive,
	})
	if err != nil {
		return p, err
	}
	logf("scale, %d pods: CPU per update kuberegistry %s, bare informer %s", s.Pods, p.cpu.sequential[ours], p.cpu.sequential[limit])
	if keep {
		logf("leaving namespace %s to the control plane's end", ns)
	}
	return p, nil
}

// formatBytes formats a byte count in B, KiB or MiB.
func formatBytes(bytes float64) string {
	switch {
	case bytes >= 1<<20:
		return formatMiB(bytes)
	case bytes >= 1<<10:
		return sig3(bytes/(1<<10)) + " KiB"
	default:
		return sig3(bytes) + " B"
	}
}
