// Command kuberegistry-bench measures kuberegistry against a naive registry (package naive) and
// against the limit — the least any design must do — on a real kube-apiserver: the local control
// plane it starts with envtest, or the cluster of a kubeconfig. It creates the scenario's pods in
// a namespace of its own, measures, deletes them, and prints one Markdown table on stdout;
// progress goes to stderr. With -service-sizes or -spread, it measures the service-size series
// instead (service_size.go). With -scale, it measures what matters for scale at several fleet
// sizes side by side (scale.go); with -soak, it runs one registry with hundreds of watchers under
// steady churn for a long time and checks that nothing leaked or diverged (soak.go), exiting 1
// when a check fails. With -xds-clients, it measures the xDS tier against N client pods each
// running a Registry (xds.go).
//
//	go run ./cmd/kuberegistry-bench -svg ../docs/benchmarks.svg
//	go run ./cmd/kuberegistry-bench -pods 2000 -registered 1000 -services 100 -chart=false
//	go run ./cmd/kuberegistry-bench -service-sizes 1000,3000,10000 -spread 100x100 -service-size-svg ../docs/service-size.svg
//	go run ./cmd/kuberegistry-bench -scale 10000,100000 -out scale.md
//	go run ./cmd/kuberegistry-bench -soak 30m -soak-rate 50 -soak-watchers 500 -out soak.md
//	go run ./cmd/kuberegistry-bench -xds-clients 0,20,100,500 -xds-svg ../docs/xds-clients.svg -out xds.md
//
// Against a real cluster (-kubeconfig), the pods carry a scheduling gate, so that no node runs them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
	"k8s.io/client-go/kubernetes"
)

// flags are the program's settings.
type flags struct {
	kubeconfig, kubeContext, assets string

	pods, registered, services int
	watchers, fewWatchers      int
	updates, latencyUpdates    int
	bursts                     int
	runs, rounds               int
	lookupTime                 time.Duration
	double                     bool

	chart      bool
	chartSizes []int
	svg        string
	out        string
	timeout    time.Duration

	// The service-size series, run instead of the main scenario when it has points.
	sizePoints      []sizePoint
	serviceWatchers int
	serviceSizeSVG  string

	scale scaleFlags // the scale mode (scale.go), run instead of the main scenario when set
	soak  soakFlags  // the soak mode (soak.go), likewise
	xds   xdsFlags   // the xDS tier mode (xds.go), likewise
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("kuberegistry-bench", flag.ContinueOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "run against the cluster of this kubeconfig instead of a local control plane")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVar(&f.assets, "assets", "", "directory of kube-apiserver and etcd (default: $KUBEBUILDER_ASSETS, else what hack/control-plane.sh prints)")
	fs.IntVar(&f.pods, "pods", workload.Default.Pods, "pods in the namespace")
	fs.IntVar(&f.registered, "registered", workload.Default.Registered, "pods registered as service instances")
	fs.IntVar(&f.services, "services", workload.Default.Services, "services the registered pods belong to")
	fs.IntVar(&f.watchers, "watchers", 0, "watchers open while pods change, one per service (default: -services)")
	fs.IntVar(&f.fewWatchers, "few-watchers", 50, "the smaller number of watchers, to show the cost per update does not depend on it (0: skip)")
	fs.IntVar(&f.updates, "updates", 300, "pod updates written one at a time per CPU measurement session")
	fs.IntVar(&f.rounds, "rounds", 3, "CPU measurement sessions of kuberegistry and of the limit, alternately, of which the median is reported")
	fs.IntVar(&f.bursts, "bursts", 1, "bursts of one update per watched service, per CPU measurement (0: skip)")
	fs.IntVar(&f.latencyUpdates, "latency-updates", 300, "pod updates per latency measurement")
	fs.IntVar(&f.runs, "runs", 5, "runs of each Start, of which the median is reported")
	fs.DurationVar(&f.lookupTime, "lookup-time", time.Second, "least time GetService is timed for, per design")
	fs.BoolVar(&f.double, "double", true, "also measure the CPU per update after doubling the unregistered pods")
	fs.BoolVar(&f.chart, "chart", true, "measure GetService and memory at the chart's fleet sizes and write the SVG chart")
	sizes := fs.String("chart-sizes", "1000,5000,10000,20000", "fleet sizes of the chart (pods; half registered, pods/20 services)")
	fs.StringVar(&f.svg, "svg", "", "where to write the chart (default: docs/benchmarks.svg of the repository)")
	fs.StringVar(&f.out, "out", "", "also write the Markdown table to this file")
	fs.DurationVar(&f.timeout, "timeout", time.Hour, "give up after this long")
	serviceSizes := fs.String("service-sizes", "", "measure the service-size series instead of the main scenario, at these points: N is one service of N instances, SxI is S services of I instances (e.g. 1000,3000,10000)")
	spread := fs.String("spread", "", "more points of the service-size series, as -service-sizes takes them (e.g. 100x100)")
	fs.IntVar(&f.serviceWatchers, "service-watchers", 10, "watchers of the measured service in the service-size series")
	fs.StringVar(&f.serviceSizeSVG, "service-size-svg", "", "where to write the chart of the service-size series (needs two one-service points; default: no chart)")
	checkScale, checkSoak, checkXDS := addScaleFlags(fs, f), addSoakFlags(fs, f), addXDSFlags(fs, f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if f.watchers == 0 {
		f.watchers = f.services
	}
	var errs []error
	switch {
	case f.services < 1:
		errs = append(errs, errors.New("-services must be at least 1"))
	case f.registered < f.services:
		errs = append(errs, errors.New("-registered must be at least -services: every service needs a pod"))
	case f.pods < f.registered:
		errs = append(errs, errors.New("-pods must be at least -registered"))
	case f.watchers < 1 || f.watchers > f.services:
		errs = append(errs, fmt.Errorf("-watchers must be between 1 and -services (%d)", f.services))
	case !f.soak.active() && (f.fewWatchers < 0 || f.fewWatchers > f.watchers): // the soak has no few-watchers session
		errs = append(errs, fmt.Errorf("-few-watchers must be between 0 and -watchers (%d)", f.watchers))
	}
	if f.updates < 1 || f.latencyUpdates < 1 || f.runs < 1 || f.rounds < 1 || f.bursts < 0 {
		errs = append(errs, errors.New("-updates, -latency-updates, -runs and -rounds must be at least 1, -bursts at least 0"))
	}
	for _, list := range []string{*serviceSizes, *spread} {
		points, err := parsePoints(list)
		if err != nil {
			errs = append(errs, err)
		}
		f.sizePoints = append(f.sizePoints, points...)
	}
	if f.serviceWatchers < 1 {
		errs = append(errs, errors.New("-service-watchers must be at least 1"))
	}
	if f.serviceSizeSVG != "" && len(chartPoints(f.sizePoints)) < 2 {
		errs = append(errs, errors.New("-service-size-svg needs at least two one-service points in -service-sizes"))
	}
	errs = append(errs, checkScale(), checkSoak(), checkXDS())
	if f.chart && len(f.sizePoints) == 0 && !f.scale.active() && !f.soak.active() {
		for _, field := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(field))
			if err != nil || n < 20 || n%20 != 0 {
				errs = append(errs, fmt.Errorf("-chart-sizes: %q is not a multiple of 20 pods", field))
				continue
			}
			if len(f.chartSizes) > 0 && n <= f.chartSizes[len(f.chartSizes)-1] {
				errs = append(errs, errors.New("-chart-sizes must grow"))
			}
			f.chartSizes = append(f.chartSizes, n)
		}
		if len(f.chartSizes) < 2 {
			errs = append(errs, errors.New("-chart-sizes needs at least two sizes"))
		}
		if f.svg == "" {
			root, err := repoRoot()
			if err != nil {
				errs = append(errs, fmt.Errorf("-svg: %w; give a path", err))
			}
			f.svg = filepath.Join(root, "docs", "benchmarks.svg")
		}
	}
	return f, errors.Join(errs...)
}

func (f *flags) scenario() workload.Scenario {
	return workload.Scenario{Pods: f.pods, Registered: f.registered, Services: f.services}
}

// chartScenario is the fleet of a chart point: half the pods registered, ten to a service (see
// chartPod).
func chartScenario(pods int) workload.Scenario {
	return workload.Scenario{Pods: pods, Registered: pods / 2, Services: pods / 20}
}

func main() {
	if helper, err := runXDSHelper(os.Args[1:]); helper {
		if err != nil {
			fmt.Fprintf(os.Stderr, "kuberegistry-bench %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == writerFlag {
		if err := runWriter(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "kuberegistry-bench -writer:", err)
			os.Exit(1)
		}
		return
	}
	f, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kuberegistry-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	err = run(ctx, f)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kuberegistry-bench:", err)
		os.Exit(1)
	}
}

// results gathers every measurement of a run.
type results struct {
	sync        syncResult
	cpuMany     cpuResult
	cpuFew      cpuResult // zero when skipped
	cpuDoubled  cpuResult // zero when skipped
	latency     latencyResult
	register    registerResult
	chartPoints map[int]syncResult // by fleet size
}

func run(ctx context.Context, f *flags) error {
	began := time.Now()
	c, err := connect(f)
	if err != nil {
		return err
	}
	defer c.stop()
	admin, err := c.protobufClient()
	if err != nil {
		return err
	}
	if len(f.sizePoints) > 0 || f.scale.active() || f.soak.active() || f.xds.active() {
		switch {
		case f.xds.active():
			err = runXDS(ctx, c, f)
		case f.scale.active():
			err = runScale(ctx, c, f)
		case f.soak.active():
			err = runSoak(ctx, c, f)
		default:
			err = runServiceSizes(ctx, c, admin, f)
		}
		if err != nil {
			return err
		}
		logf("done in %s", time.Since(began).Round(time.Second))
		return nil
	}
	s := f.scenario()
	res := results{chartPoints: make(map[int]syncResult)}
	logf("scenario: %d pods, %d registered in %d services, %d watchers; kube-apiserver %s at %s",
		s.Pods, s.Registered, s.Services, f.watchers, c.version, c.config.Host)

	// The main fleet is also the chart's point at its size and, extended, at twice its size,
	// when it has the chart's shape; the other sizes grow in a namespace of their own.
	var own []int
	for _, size := range f.chartSizes {
		if !mainFleetServes(f, size) {
			own = append(own, size)
		}
	}
	if len(own) > 0 {
		if err := measureChart(ctx, c, admin, own, f.lookupTime, res.chartPoints); err != nil {
			return err
		}
	}
	err = inNamespace(ctx, admin, func(ns string) error {
		if err := createPods(ctx, admin, ns, s.Pod, 0, s.Pods); err != nil {
			return err
		}
		return measureMain(ctx, c, admin, ns, f, &res)
	})
	if err != nil {
		return err
	}
	if f.chart {
		if err := writeChart(f.svg, f.chartSizes, res.chartPoints, c); err != nil {
			return err
		}
		logf("chart written to %s", f.svg)
	}

	r := buildReport(f, c, res)
	if err := output(f, func(w io.Writer) error { return renderMarkdown(w, r) }); err != nil {
		return err
	}
	logf("done in %s", time.Since(began).Round(time.Second))
	return nil
}

// output writes a table with render on stdout and, with -out, to that file.
func output(f *flags, render func(io.Writer) error) error {
	if err := render(os.Stdout); err != nil {
		return err
	}
	if f.out == "" {
		return nil
	}
	out, err := os.Create(f.out)
	if err != nil {
		return err
	}
	if err := render(out); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// mainFleetServes reports whether the main fleet gives the chart's point at size: the main
// fleet must have the chart's shape, and reaches twice its size once doubled and extended.
func mainFleetServes(f *flags, size int) bool {
	s := f.scenario()
	if s != chartScenario(s.Pods) {
		return false
	}
	return size == s.Pods || (f.double && size == 2*s.Pods)
}

// measureChart measures a started registry at each size (growing), in a namespace whose first n
// pods are chartScenario(n).
func measureChart(ctx context.Context, c *cluster, admin kubernetes.Interface, sizes []int, lookupTime time.Duration, points map[int]syncResult) error {
	return inNamespace(ctx, admin, func(ns string) error {
		created := 0
		for _, size := range sizes {
			cs := chartScenario(size)
			logf("chart: %d pods, %d registered in %d services", cs.Pods, cs.Registered, cs.Services)
			if err := createPods(ctx, admin, ns, chartPod, created, size); err != nil {
				return err
			}
			created = size
			point, err := measureSync(ctx, c, ns, cs, 1, lookupTime)
			if err != nil {
				return err
			}
			points[size] = point
		}
		return nil
	})
}

// measureMain takes every measurement of the main scenario, whose pods are in ns.
func measureMain(ctx context.Context, c *cluster, admin kubernetes.Interface, ns string, f *flags, res *results) error {
	s := f.scenario()
	var err error
	if res.sync, err = measureSync(ctx, c, ns, s, f.runs, f.lookupTime); err != nil {
		return err
	}
	if mainFleetServes(f, s.Pods) {
		res.chartPoints[s.Pods] = res.sync
	}

	state := newFleetState(s)
	w, err := startWriter(ctx, c, ns)
	if err != nil {
		return err
	}
	defer w.close()
	// The naive registry with many watchers takes a minute to set up: its latency is measured
	// in the same session as its CPU.
	res.cpuMany, err = measureCPU(ctx, c, w, ns, state, cpuRun{
		watched: f.watchers, updates: f.updates, bursts: f.bursts, rounds: f.rounds,
		then: func(d int, r receiver) (err error) {
			if d == baseline {
				logf("change to delivery latency: the naive registry with %d watchers", f.watchers)
				res.latency[baseline], err = measureLatencyOf(ctx, c, ns, state, f.watchers, f.latencyUpdates, r)
			}
			return err
		},
	})
	if err != nil {
		return err
	}
	if f.fewWatchers > 0 {
		res.cpuFew, err = measureCPU(ctx, c, w, ns, state, cpuRun{watched: f.fewWatchers, updates: f.updates, rounds: f.rounds, skipBaseline: true})
		if err != nil {
			return err
		}
	}
	if res.latency[ours], res.latency[limit], err = measureLatency(ctx, c, ns, state, f.watchers, 0, f.latencyUpdates); err != nil {
		return err
	}
	if f.double {
		doubled := s
		doubled.Pods += s.Pods - s.Registered // the new pods are unregistered: ServiceOf(i) < 0
		if err := createPods(ctx, admin, ns, doubled.Pod, s.Pods, doubled.Pods); err != nil {
			return err
		}
		state.s = doubled
		res.cpuDoubled, err = measureCPU(ctx, c, w, ns, state, cpuRun{watched: f.watchers, updates: f.updates, rounds: f.rounds, skipBaseline: true})
		if err != nil {
			return err
		}
		if f.chart && mainFleetServes(f, 2*s.Pods) {
			if err := restoreReadiness(ctx, admin, ns, state); err != nil {
				return err
			}
			if err := createPods(ctx, admin, ns, extensionPod(s), doubled.Pods, 2*s.Pods); err != nil {
				return err
			}
			cs := chartScenario(2 * s.Pods)
			logf("chart: %d pods, %d registered in %d services", cs.Pods, cs.Registered, cs.Services)
			if res.chartPoints[cs.Pods], err = measureSync(ctx, c, ns, cs, 1, f.lookupTime); err != nil {
				return err
			}
		}
	}
	w.close()

	res.register, err = measureRegister(ctx, c, ns)
	return err
}

// inNamespace creates a namespace, runs fn with it, and deletes it with its pods whatever happens,
// even after ctx has ended.
func inNamespace(ctx context.Context, admin kubernetes.Interface, fn func(ns string) error) error {
	ns, err := createNamespace(ctx, admin)
	if ns != "" {
		defer func() {
			cleanupCtx, cancel := withTimeout(5 * time.Minute)
			defer cancel()
			if err := deleteNamespace(cleanupCtx, admin, ns); err != nil {
				logf("cleaning up: %v", err)
			}
		}()
	}
	if err != nil {
		return err
	}
	return fn(ns)
}

// machine describes where the benchmark ran.
func machine(c *cluster) string {
	return fmt.Sprintf("kube-apiserver %s, %d CPUs, %s %s/%s", c.version, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
