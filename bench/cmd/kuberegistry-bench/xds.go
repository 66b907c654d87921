package main

// The xDS mode (-xds-clients): what the shared xDS tier (contrib/xds, issue #15) saves the API
// server, and what it costs itself, against N client pods each running its own Registry. For
// each N, two setups are measured alternately on the same fleet:
//
//   - direct: N clients, each a kuberegistry Registry on its own connection to the API server,
//     watching one service;
//   - tier: one Registry and one xds.Server in a tier process, and N clients, each on its own
//     gRPC connection to it, watching the same service.
//
// The clients run in a process of their own, and so does the tier: kube-apiserver's CPU is read
// from /proc, the tier's with getrusage in the tier process, so that neither includes the
// clients' work nor this process's. Updates flip the readiness of the watched service's pods, one
// at a time, each awaited at every client: the delay from the write to each client's receipt is
// the latency.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
)

// xdsFlags are the settings of the xDS mode.
type xdsFlags struct {
	clients   []int         // client counts, growing, 0 and 1 included; none: the mode is off
	kind      string        // the tier's clients: clientADS or clientDiscovery
	directMax int           // largest N measured direct; -1: every N
	idle      time.Duration // how long kube-apiserver's idle CPU is measured before each N
	gap       time.Duration // the pause after each update, once every client has it
	svg       string        // where the chart goes; "" for none
	profile   string        // where an extra tier session at the largest N writes the tier's CPU profile; "" for none
	command   string
}

func (x *xdsFlags) active() bool { return len(x.clients) > 0 }

// addXDSFlags defines the xDS mode's flags on fs and returns what checks them once fs is parsed.
func addXDSFlags(fs *flag.FlagSet, f *flags) func() error {
	counts := fs.String("xds-clients", "", "measure the xDS tier against direct Registries instead of the main scenario, at these numbers of client pods (e.g. 0,20,100,500; 0 and 1 are added when absent: the API server's cost without a watch and with a single direct Registry are the references)")
	fs.StringVar(&f.xds.kind, "xds-client", clientADS, "the tier's clients: ads (a state-of-the-world ADS stream as grpc-go's xDS client opens) or discovery (an xds.Discovery, delta ADS)")
	fs.IntVar(&f.xds.directMax, "xds-direct-max", -1, "largest number of clients measured direct, each with its own Registry (-1: every number)")
	fs.DurationVar(&f.xds.idle, "xds-idle", 10*time.Second, "how long kube-apiserver's idle CPU is measured before each number of clients, to be subtracted")
	fs.DurationVar(&f.xds.gap, "xds-gap", 50*time.Millisecond, "pause after each update, once every client has it, before the next write: on a machine of a few cores, the tier's and the clients' last work on one update would otherwise share the cores with kube-apiserver's handling of the next, and make it dearer (0: none)")
	fs.StringVar(&f.xds.profile, "xds-tier-profile", "", "also run one more tier session at the largest number of clients, not counted, and write the tier process's CPU profile of its updates to this file")
	svg := fs.String("xds-svg", "", "where to write the chart of the xDS mode (default: docs/xds-clients.svg of the repository; \"none\" for no chart)")
	return func() error {
		if *counts == "" {
			return nil
		}
		var errs []error
		var err error
		if f.xds.clients, err = parseClientCounts(*counts); err != nil {
			errs = append(errs, err)
		}
		if f.xds.kind != clientADS && f.xds.kind != clientDiscovery {
			errs = append(errs, fmt.Errorf("-xds-client must be %s or %s, not %q", clientADS, clientDiscovery, f.xds.kind))
		}
		if f.xds.directMax < -1 {
			errs = append(errs, errors.New("-xds-direct-max must be -1 (every number) or at least 0"))
		}
		if f.xds.gap < 0 {
			errs = append(errs, errors.New("-xds-gap must not be negative"))
		}
		if f.xds.idle < time.Second {
			errs = append(errs, errors.New("-xds-idle must be at least 1s: kube-apiserver's background work comes in bursts"))
		}
		if f.kubeconfig != "" {
			errs = append(errs, errors.New("-xds-clients reads kube-apiserver's CPU from /proc: it needs the local control plane, not -kubeconfig"))
		}
		if f.scale.active() || f.soak.active() || len(f.sizePoints) > 0 {
			errs = append(errs, errors.New("-xds-clients is a mode of its own: leave out -scale, -soak, -service-sizes and -spread"))
		}
		if f.services > 0 && f.registered/f.services < 2 {
			errs = append(errs, errors.New("-xds-clients needs at least 2 registered pods per service"))
		}
		switch {
		case *svg == "none":
		case *svg != "":
			f.xds.svg = *svg
		default:
			root, err := repoRoot()
			if err != nil {
				errs = append(errs, fmt.Errorf("-xds-svg: %w; give a path, or none", err))
			}
			f.xds.svg = filepath.Join(root, "docs", "xds-clients.svg")
		}
		if f.xds.profile != "" {
			// The tier process writes it: a path relative to this one's directory.
			if f.xds.profile, err = filepath.Abs(f.xds.profile); err != nil {
				errs = append(errs, fmt.Errorf("-xds-tier-profile: %w", err))
			}
		}
		f.xds.command = commandLine(fs)
		return errors.Join(errs...)
	}
}

// parseClientCounts reads -xds-clients: numbers of clients, at least 0, growing; 0 and 1 are
// added when absent, as the references of the API server's cost: no watch at all, and a single
// direct Registry (whose watch is the tier's).
func parseClientCounts(list string) ([]int, error) {
	var counts []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-xds-clients: %q is not a number of clients", field)
		}
		if len(counts) > 0 && n <= counts[len(counts)-1] {
			return nil, errors.New("-xds-clients: the numbers must grow")
		}
		counts = append(counts, n)
	}
	for _, reference := range []int{0, 1} {
		if !slices.Contains(counts, reference) {
			counts = append(counts, reference)
		}
	}
	slices.Sort(counts)
	return counts, nil
}

// Setups of the xDS mode.
const (
	setupDirect = iota
	setupTier
)

var setupNames = [2]string{"direct", "tier"}

// xdsSession is what one session measured: one setup with some number of clients.
type xdsSession struct {
	updates   int
	wall      time.Duration // of the measured updates
	apiServer time.Duration // kube-apiserver's CPU over the updates, its idle rate included
	tier      tierUsage     // the tier process's usage over the updates (tier setup)
	clients   time.Duration // the clients process's CPU over the updates
	ready     time.Duration // from the clients' start to every client having the service
	rss       uint64        // the clients process's resident memory, once they are ready and idle
	latencies []time.Duration
	// The CPU of each update, from its start to the next one's: kube-apiserver's, and the tier
	// process's (from /proc, as kube-apiserver's).
	apiUpdates, tierUpdates []time.Duration
}

// noClientsGap is how long a session without clients waits after each write.
const noClientsGap = 20 * time.Millisecond

// xdsPoint is what the xDS mode measured at one number of clients: the sessions of each setup.
type xdsPoint struct {
	clients  int
	sessions [2][]xdsSession // by setup; no direct session above -xds-direct-max
	idle     float64         // kube-apiserver's idle CPU, in cores, measured before the sessions
}

// xdsResults is everything the xDS mode measured.
type xdsResults struct {
	points []xdsPoint
	floor  floorResult // at the largest number of clients; zero clients when not measured
}

// xdsRun is the state of a run of the xDS mode.
type xdsRun struct {
	c         *cluster
	f         *flags
	namespace string
	apiPID    int
	state     *fleetState
	writer    *flipper
	pods      []int // the watched service's pods
	written   int   // updates written so far: the next one's place in the plan
}

// watchedService is the service every client watches, and whose pods the updates flip.
const watchedService = 0

// runXDS creates the fleet and measures the xDS mode at every number of clients.
func runXDS(ctx context.Context, c *cluster, f *flags) error {
	if c.local == nil {
		return errors.New("-xds-clients needs the local control plane")
	}
	apiPID, err := findChild("kube-apiserver")
	if err != nil {
		return fmt.Errorf("finding kube-apiserver's process: %w", err)
	}
	admin, err := bulkClient(c)
	if err != nil {
		return err
	}
	s := f.scenario()
	logf("xds: %d pods, %d registered in %d services; clients watch %s; kube-apiserver %s (pid %d) at %s",
		s.Pods, s.Registered, s.Services, workload.Service(watchedService), c.version, apiPID, c.config.Host)
	ns, err := createNamespace(ctx, admin)
	if err != nil {
		return err
	}
	// The local control plane goes with its data at the end: deleting the fleet would only
	// take a minute more.
	logf("leaving namespace %s to the control plane's end", ns)
	if err := createPodsWith(ctx, admin, ns, s.Pod, 0, s.Pods, bulkWorkers); err != nil {
		return err
	}
	client, err := c.protobufClient()
	if err != nil {
		return err
	}
	run := &xdsRun{c: c, f: f, namespace: ns, apiPID: apiPID, state: newFleetState(s), writer: newFlipper(client, ns)}
	for i := watchedService; i < s.Registered; i += s.Services {
		run.pods = append(run.pods, i)
	}
	var res xdsResults
	for _, n := range f.xds.clients {
		p, err := run.measurePoint(ctx, n)
		if err != nil {
			return fmt.Errorf("xds, %d clients: %w", n, err)
		}
		res.points = append(res.points, p)
	}
	if f.xds.profile != "" {
		n := res.points[len(res.points)-1].clients
		logf("xds: one more tier session with %d clients, profiled into %s", n, f.xds.profile)
		if _, err := run.session(ctx, setupTier, n, f.xds.profile); err != nil {
			return fmt.Errorf("xds, profiled session: %w", err)
		}
	}
	if largest := res.points[len(res.points)-1]; largest.clients > 0 {
		tier := largest.sessions[setupTier]
		perClient := func(v func(u tierUsage) int64) int {
			var all []float64
			for _, s := range tier {
				all = append(all, float64(v(s.tier))/float64(s.updates*largest.clients))
			}
			return int(medianFloat(all) + 0.5)
		}
		message, reply := perClient(func(u tierUsage) int64 { return u.writeBytes }), perClient(func(u tierUsage) int64 { return u.readBytes })
		logf("xds: loopback floor, %d clients, %d bytes out and %d back per client", largest.clients, message, reply)
		res.floor, err = measureFloor(ctx, largest.clients, message, reply, max(f.updates, 1000))
		if err != nil {
			return fmt.Errorf("xds, loopback floor: %w", err)
		}
		logf("xds: loopback floor: %s per client for a write, %s with a read", res.floor.write, res.floor.writeRead)
	}
	r := buildXDSReport(f, machine(c), res)
	if err := output(f, func(w io.Writer) error { return renderXDS(w, r) }); err != nil {
		return err
	}
	if f.xds.svg != "" {
		if err := writeXDSChart(f.xds.svg, xdsChart(f, machine(c), res)); err != nil {
			return err
		}
		logf("chart written to %s", f.xds.svg)
	}
	return nil
}

// measurePoint measures n clients: kube-apiserver's idle CPU, then direct and tier sessions
// alternately, -rounds of each, the order swapped every round so that neither setup always
// follows the other.
func (r *xdsRun) measurePoint(ctx context.Context, n int) (xdsPoint, error) {
	p := xdsPoint{clients: n}
	if err := r.settle(ctx); err != nil {
		return p, err
	}
	idle, err := r.idleRate(ctx)
	if err != nil {
		return p, err
	}
	p.idle = idle
	logf("xds, %d clients: kube-apiserver idle at %.1f%% of a core", n, 100*idle)
	direct := r.f.xds.directMax < 0 || n <= r.f.xds.directMax
	for round := range r.f.rounds {
		order := []int{setupDirect, setupTier}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, setup := range order {
			if setup == setupDirect && !direct {
				continue
			}
			s, err := r.session(ctx, setup, n, "")
			if err != nil {
				return p, fmt.Errorf("%s, round %d: %w", setupNames[setup], round+1, err)
			}
			p.sessions[setup] = append(p.sessions[setup], s)
		}
	}
	return p, nil
}

// idleRate is kube-apiserver's CPU, in cores, over -xds-idle with nothing but the fleet.
func (r *xdsRun) idleRate(ctx context.Context) (float64, error) {
	before, err := procCPU(r.apiPID)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(r.f.xds.idle):
	}
	after, err := procCPU(r.apiPID)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(time.Since(start)), nil
}

// settle waits until kube-apiserver and the given child processes (0 for none) are idle — each
// under 5% of a core over half a second — so that the work of a setup, such as the clients'
// lists or the garbage they left, is not billed to the updates measured next. After 3 minutes
// it goes on anyway, saying so.
func (r *xdsRun) settle(ctx context.Context, children ...int) error {
	const window, busy = 500 * time.Millisecond, 0.05
	deadline := time.Now().Add(3 * time.Minute)
	pids := []int{r.apiPID}
	for _, pid := range children {
		if pid != 0 {
			pids = append(pids, pid)
		}
	}
	before := make([]time.Duration, len(pids))
	for {
		for k, pid := range pids {
			cpu, err := procCPU(pid)
			if err != nil {
				return err
			}
			before[k] = cpu
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(window):
		}
		quiet := true
		for k, pid := range pids {
			cpu, err := procCPU(pid)
			if err != nil {
				return err
			}
			quiet = quiet && float64(cpu-before[k]) < busy*float64(window)
		}
		if quiet {
			return nil
		}
		if time.Now().After(deadline) {
			logf("xds: the processes are still busy after 3 minutes; measuring anyway")
			return nil
		}
	}
}

// session measures one setup with n clients: it starts the tier (tier setup) and the clients,
// waits until everything is idle, writes warmUpdates then -updates readiness flips, each
// awaited at every client, and reads the CPU of kube-apiserver, the tier and the clients around
// the measured ones. With a profile path, the tier process writes its CPU profile of the
// measured updates there.
func (r *xdsRun) session(ctx context.Context, setup, n int, profile string) (xdsSession, error) {
	what := fmt.Sprintf("xds, %d clients, %s", n, setupNames[setup])
	var s xdsSession
	var tier *tierProc
	tierPID := 0
	if setup == setupTier {
		var err error
		if tier, err = startTier(ctx, r.c, r.namespace); err != nil {
			return s, err
		}
		defer tier.close(time.Minute)
		tierPID = tier.pid()
	}
	var clients *clientsProc
	clientsPID := 0
	if n > 0 {
		kind, addr := clientDirect, ""
		if setup == setupTier {
			kind, addr = r.f.xds.kind, tier.addr
		}
		var err error
		clients, err = startClients(ctx, r.c, r.namespace, addr, kind, workload.Service(watchedService), n, r.state.count[watchedService])
		if err != nil {
			return s, err
		}
		defer clients.close(2 * time.Minute)
		clientsPID, s.ready = clients.pid(), clients.ready
		logf("%s: %d clients ready in %s", what, n, s.ready.Round(time.Millisecond))
	}
	if err := r.settle(ctx, tierPID, clientsPID); err != nil {
		return s, err
	}
	if clients != nil {
		var err error
		if s.rss, err = procRSS(clientsPID); err != nil {
			return s, err
		}
	}
	for range warmUpdates {
		if _, err := r.update(ctx, clients); err != nil {
			return s, err
		}
	}
	apiBefore, err := procCPU(r.apiPID)
	if err != nil {
		return s, err
	}
	var tierBefore tierUsage
	if tier != nil {
		if tierBefore, err = tier.usage(ctx); err != nil {
			return s, err
		}
	}
	var clientsBefore time.Duration
	if clients != nil {
		if clientsBefore, err = procCPU(clientsPID); err != nil {
			return s, err
		}
	}
	if tier != nil && profile != "" {
		if err := tier.profile(ctx, profile); err != nil {
			return s, err
		}
	}
	// Each update's own CPU too: kube-apiserver's from just before the write to the moment every
	// client has the change, the tier's from one update's start to the next (its reading of the
	// clients' ACKs follows their receipt). A median of those is not moved by kube-apiserver's
	// garbage collections (a cycle of its heap of the fleet costs about half a second, and falls
	// in some sessions and not others) nor by its background work.
	tierPrev := time.Duration(0)
	if tier != nil {
		if tierPrev, err = procCPU(tierPID); err != nil {
			return s, err
		}
	}
	start := time.Now()
	for range r.f.updates {
		apiStart, err := procCPU(r.apiPID)
		if err != nil {
			return s, err
		}
		delays, err := r.update(ctx, clients)
		if err != nil {
			return s, err
		}
		s.latencies = append(s.latencies, delays...)
		if clients == nil {
			// Nothing to await: give the API server's and the tier's handling of the change
			// time to end within this update's window.
			if err := sleep(ctx, noClientsGap); err != nil {
				return s, err
			}
		}
		apiEnd, err := procCPU(r.apiPID)
		if err != nil {
			return s, err
		}
		s.apiUpdates = append(s.apiUpdates, apiEnd-apiStart)
		if tier != nil {
			tierNow, err := procCPU(tierPID)
			if err != nil {
				return s, err
			}
			s.tierUpdates, tierPrev = append(s.tierUpdates, tierNow-tierPrev), tierNow
		}
		if err := sleep(ctx, r.f.xds.gap); err != nil {
			return s, err
		}
	}
	// What follows the last update — the clients' ACKs to the tier, or with no clients the
	// tier's and the API server's own handling — is part of it.
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return s, err
	}
	s.wall, s.updates = time.Since(start), r.f.updates
	apiAfter, err := procCPU(r.apiPID)
	if err != nil {
		return s, err
	}
	s.apiServer = apiAfter - apiBefore
	if tier != nil && profile != "" {
		if err := tier.profile(ctx, ""); err != nil {
			return s, err
		}
	}
	if tier != nil {
		after, err := tier.usage(ctx)
		if err != nil {
			return s, err
		}
		s.tier = after.sub(tierBefore)
	}
	if clients != nil {
		after, err := procCPU(clientsPID)
		if err != nil {
			return s, err
		}
		s.clients = after - clientsBefore
	}
	logf("%s: kube-apiserver %s, tier %s, clients %s per update (%d updates in %s); clients process %s resident", what,
		(s.apiServer / time.Duration(s.updates)).Round(time.Microsecond), (s.tier.cpu() / time.Duration(s.updates)).Round(time.Microsecond),
		(s.clients / time.Duration(s.updates)).Round(time.Microsecond), s.updates, s.wall.Round(time.Millisecond), formatBytes(float64(s.rss)))
	return s, nil
}

// update flips the next pod of the plan — the watched service's pods in turn, each made not
// ready then ready again, so that the service swings between all its instances and one fewer —
// and returns each client's delay from the write to its receipt.
func (r *xdsRun) update(ctx context.Context, clients *clientsProc) ([]time.Duration, error) {
	i := r.pods[(r.written/2)%len(r.pods)]
	r.written++
	ready, _, size := r.state.flip(i)
	sent, err := r.writer.flip(ctx, i, ready)
	if err != nil || clients == nil {
		return nil, err
	}
	return clients.await(ctx, i, ready, size, sent)
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
