package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
)

// Targets of the xDS mode (issue #15).
const (
	xdsAPIServerTarget = 1.2                  // API server CPU per update with the tier / with a single direct Registry, at every N
	xdsPerClientTarget = 0.1                  // the tier's CPU per update per client / the API server's per direct client
	xdsLatencyTarget   = 5 * time.Millisecond // median change-to-client latency, tier − direct
)

// xdsFigures are the figures of one number of clients, from its sessions; NaN where not measured.
type xdsFigures struct {
	clients int
	// API server CPU per update, by setup: the median of every update's (what the targets
	// judge); and over whole sessions, idle subtracted, the median session, the least and the
	// most.
	apiServer                  [2]float64
	apiSession, apiMin, apiMax [2]float64
	tier                       float64    // the tier process's CPU per update over whole sessions (getrusage), median
	tierUpdate                 float64    // the tier process's CPU per update, the median of every update's (/proc)
	tierUser                   float64    // of which user
	reads, writes              float64    // the tier's read and write system calls per update per client
	written                    float64    // bytes the tier wrote per update per client
	clientCPU                  [2]float64 // the clients process's CPU per update per client, by setup
	// Change-to-client latency over every sample of every session, by setup.
	latencyMedian, latencyP99 [2]float64
	ready                     [2]float64 // the clients' start to all of them ready, median
	rss                       [2]float64 // the clients process's resident memory per client, median
}

// figuresOf computes the figures of a point; every value in nanoseconds.
func figuresOf(p xdsPoint) xdsFigures {
	fig := xdsFigures{clients: p.clients, tier: math.NaN(), tierUpdate: math.NaN(), tierUser: math.NaN(), reads: math.NaN(), writes: math.NaN(), written: math.NaN()}
	perClient := func(v float64) float64 {
		if p.clients == 0 {
			return math.NaN()
		}
		return v / float64(p.clients)
	}
	for setup, sessions := range p.sessions {
		fig.apiServer[setup], fig.apiSession[setup], fig.apiMin[setup], fig.apiMax[setup] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		fig.clientCPU[setup] = math.NaN()
		fig.latencyMedian[setup], fig.latencyP99[setup], fig.ready[setup], fig.rss[setup] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if len(sessions) == 0 {
			continue
		}
		var api, clients, ready, rss []float64
		var latencies, updates []time.Duration
		for _, s := range sessions {
			updates = append(updates, s.apiUpdates...)
			n := float64(s.updates)
			api = append(api, (float64(s.apiServer)-p.idle*float64(s.wall))/n)
			clients = append(clients, perClient(float64(s.clients)/n))
			ready, rss = append(ready, float64(s.ready)), append(rss, perClient(float64(s.rss)))
			latencies = append(latencies, s.latencies...)
		}
		fig.apiSession[setup], fig.clientCPU[setup] = medianFloat(api), medianFloat(clients)
		fig.apiMin[setup], fig.apiMax[setup] = slices.Min(api), slices.Max(api)
		if len(updates) > 0 {
			fig.apiServer[setup] = float64(median(updates))
		}
		if p.clients > 0 {
			fig.ready[setup], fig.rss[setup] = medianFloat(ready), medianFloat(rss)
		}
		if len(latencies) > 0 {
			fig.latencyMedian[setup], fig.latencyP99[setup] = float64(median(latencies)), float64(percentile(latencies, 99))
		}
	}
	if tier := p.sessions[setupTier]; len(tier) > 0 {
		var cpu, user, reads, writes, written []float64
		var updates []time.Duration
		for _, s := range tier {
			updates = append(updates, s.tierUpdates...)
			n := float64(s.updates)
			cpu, user = append(cpu, float64(s.tier.cpu())/n), append(user, float64(s.tier.user)/n)
			reads, writes = append(reads, perClient(float64(s.tier.reads)/n)), append(writes, perClient(float64(s.tier.writes)/n))
			written = append(written, perClient(float64(s.tier.writeBytes)/n))
		}
		fig.tier, fig.tierUser, fig.written = medianFloat(cpu), medianFloat(user), medianFloat(written)
		fig.reads, fig.writes = medianFloat(reads), medianFloat(writes)
		if len(updates) > 0 {
			fig.tierUpdate = float64(median(updates))
		}
	}
	return fig
}

// medianFloat is the median of vs (the mean of the middle two for an even count); NaN for none
// or when any is NaN.
func medianFloat(vs []float64) float64 {
	if len(vs) == 0 || slices.ContainsFunc(vs, math.IsNaN) {
		return math.NaN()
	}
	sorted := slices.Clone(vs)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 0 {
		return (sorted[mid-1] + sorted[mid]) / 2
	}
	return sorted[mid]
}

// xdsRow is one metric of the xDS table.
type xdsRow struct {
	metric  string
	cells   []string // by number of clients
	target  string   // "" for none
	verdict string   // "" without a target
}

// xdsReport is the xDS table with what explains it.
type xdsReport struct {
	title   string
	command string
	columns []string // numbers of clients
	rows    []xdsRow
	targets []string
	notes   []string
}

// xdsDerived are the figures the targets compare, by point; NaN where they mean nothing.
type xdsDerived struct {
	reference       float64   // API server CPU per update, a single direct Registry
	tierOverRef     []float64 // API server CPU per update with the tier / reference
	directPerClient []float64 // (API server direct at N − at 0) / N
	tierPerClient   []float64 // the tier's CPU per update / N
	tierMarginal    []float64 // (the tier's CPU per update at N − at 0) / N
	// comparedWith is the direct per-client cost each N's tier is held to: the largest N
	// measured direct's, the most precise (the API server's cost of the write itself, the same
	// at every N, varies by more than a few clients cost).
	comparedWith []float64
	latencyGap   []float64 // median latency, tier − direct
}

func deriveXDS(figs []xdsFigures) xdsDerived {
	d := xdsDerived{reference: math.NaN()}
	at := func(n int) (xdsFigures, bool) {
		k := slices.IndexFunc(figs, func(f xdsFigures) bool { return f.clients == n })
		if k < 0 {
			return xdsFigures{}, false
		}
		return figs[k], true
	}
	zero, hasZero := at(0)
	if one, ok := at(1); ok {
		d.reference = one.apiServer[setupDirect]
	}
	largestDirect := math.NaN()
	for _, f := range figs {
		perClient, marginal, perTier := math.NaN(), math.NaN(), math.NaN()
		if f.clients > 0 {
			perTier = f.tier / float64(f.clients)
			if hasZero {
				perClient = (f.apiServer[setupDirect] - zero.apiServer[setupDirect]) / float64(f.clients)
				marginal = (f.tier - zero.tier) / float64(f.clients)
			}
		}
		if !math.IsNaN(perClient) {
			largestDirect = perClient
		}
		d.tierOverRef = append(d.tierOverRef, f.apiServer[setupTier]/d.reference)
		d.directPerClient = append(d.directPerClient, perClient)
		d.tierPerClient = append(d.tierPerClient, perTier)
		d.tierMarginal = append(d.tierMarginal, marginal)
		d.latencyGap = append(d.latencyGap, f.latencyMedian[setupTier]-f.latencyMedian[setupDirect])
	}
	for range figs {
		d.comparedWith = append(d.comparedWith, largestDirect)
	}
	return d
}

// buildXDSReport turns the results of the xDS mode into its table.
func buildXDSReport(f *flags, machine string, res xdsResults) xdsReport {
	s := f.scenario()
	clientName := map[string]string{
		clientADS:       "a raw state-of-the-world ADS stream subscribing to the service's listener, route, cluster and assignment and ACKing every response, as grpc-go's xDS client does",
		clientDiscovery: "an `xds.Discovery` (delta ADS) with a watcher blocked in `Next`",
	}[f.xds.kind]
	r := xdsReport{
		title: fmt.Sprintf("kuberegistry-bench, xDS tier: N client pods watching one service (%s, %d instances) of a fleet of %s pods, %s registered in %d services; "+
			"**direct**: each client a kuberegistry Registry on its own connection to the API server; **tier**: one Registry and one `xds.Server` in a tier process, each client on its own gRPC connection to it (%s); %s",
			workload.Service(watchedService), s.Registered/s.Services, groupThousands(s.Pods), groupThousands(s.Registered), s.Services, clientName, machine),
		command: f.xds.command,
	}
	var figs []xdsFigures
	for _, p := range res.points {
		figs = append(figs, figuresOf(p))
		r.columns = append(r.columns, fmt.Sprintf("N = %s", groupThousands(p.clients)))
	}
	d := deriveXDS(figs)
	series := func(v func(f xdsFigures) float64) []float64 {
		out := make([]float64, len(figs))
		for k, f := range figs {
			out[k] = v(f)
		}
		return out
	}
	cells := func(vs []float64, format func(float64) string) []string {
		out := make([]string, len(vs))
		for k, v := range vs {
			out[k] = formatValue(v, format)
		}
		return out
	}
	row := func(metric string, vs []float64, format func(float64) string) xdsRow {
		return xdsRow{metric: metric, cells: cells(vs, format)}
	}
	// judged gives a row a target: every value (from minN clients on) at most limits[k].
	judged := func(x xdsRow, target string, vs, limits []float64, minN int, what func(k int) string) xdsRow {
		x.target = target
		var verdicts, details []string
		for k, v := range vs {
			if figs[k].clients < minN || math.IsNaN(v) || math.IsNaN(limits[k]) {
				continue
			}
			v := judge(v, limits[k])
			verdicts = append(verdicts, v)
			details = append(details, fmt.Sprintf("N = %s: %s (%s)", groupThousands(figs[k].clients), v, what(k)))
		}
		switch {
		case len(verdicts) == 0:
			x.verdict = "not measured"
		case slices.Contains(verdicts, "**missed**"):
			x.verdict = "**missed**"
		default:
			x.verdict = "met"
		}
		r.targets = append(r.targets, fmt.Sprintf("%s — %s: %s", x.metric, x.verdict, dash(strings.Join(details, "; "))))
		return x
	}
	constant := func(v float64) []float64 {
		out := make([]float64, len(figs))
		for k := range out {
			out[k] = v
		}
		return out
	}

	apiDirect := series(func(f xdsFigures) float64 { return f.apiServer[setupDirect] })
	apiTier := series(func(f xdsFigures) float64 { return f.apiServer[setupTier] })
	sessions := func(metric string, setup int) xdsRow {
		x := xdsRow{metric: metric}
		for _, f := range figs {
			cell := formatValue(f.apiSession[setup], formatNanos)
			if !math.IsNaN(f.apiSession[setup]) {
				cell += fmt.Sprintf(" (%s – %s)", formatNanos(f.apiMin[setup]), formatNanos(f.apiMax[setup]))
			}
			x.cells = append(x.cells, cell)
		}
		return x
	}
	r.rows = append(r.rows,
		row("API server CPU per update, direct: median update", apiDirect, formatNanos),
		sessions("… whole sessions: median (least – most)", setupDirect),
		row("API server CPU per update, tier: median update", apiTier, formatNanos),
		sessions("… whole sessions: median (least – most)", setupTier),
		judged(row("API server CPU per update, tier / a single direct Registry (direct, N = 1)", d.tierOverRef, formatRatio),
			"≤ "+formatRatio(xdsAPIServerTarget), d.tierOverRef, constant(xdsAPIServerTarget), 0,
			func(k int) string {
				return fmt.Sprintf("%s against %s", formatValue(apiTier[k], formatNanos), formatValue(d.reference, formatNanos))
			}),
		row("API server CPU per update per direct client: (direct at N − at 0) / N", d.directPerClient, formatSignedNanos),
	)

	tierCPU := series(func(f xdsFigures) float64 { return f.tier })
	limits := make([]float64, len(figs))
	for k, v := range d.comparedWith {
		limits[k] = v * xdsPerClientTarget
	}
	perClientWhat := func(vs []float64) func(k int) string {
		return func(k int) string {
			return fmt.Sprintf("%s against %s", formatValue(vs[k], formatNanos), formatValue(limits[k], formatNanos))
		}
	}
	r.rows = append(r.rows,
		row("Tier process CPU per update, whole sessions (user + system)", tierCPU, formatNanos),
		row("… of which user", series(func(f xdsFigures) float64 { return f.tierUser }), formatNanos),
		row("Tier process CPU per update, median update", series(func(f xdsFigures) float64 { return f.tierUpdate }), formatNanos),
		judged(row("Tier CPU per update per client: tier CPU / N", d.tierPerClient, formatNanos),
			fmt.Sprintf("≤ %s of the API server's per direct client at the largest N measured direct", formatRatio(xdsPerClientTarget)), d.tierPerClient, limits, 2, perClientWhat(d.tierPerClient)),
		judged(row("Tier CPU per update per client, marginal: (tier CPU at N − at 0) / N", d.tierMarginal, formatNanos),
			fmt.Sprintf("≤ %s of the API server's per direct client at the largest N measured direct", formatRatio(xdsPerClientTarget)), d.tierMarginal, limits, 2, perClientWhat(d.tierMarginal)),
		row("Tier write system calls per update per client", series(func(f xdsFigures) float64 { return f.writes }), formatCount),
		row("Tier read system calls per update per client", series(func(f xdsFigures) float64 { return f.reads }), formatCount),
		row("Tier bytes written per update per client", series(func(f xdsFigures) float64 { return f.written }), formatBytes),
		row("Clients' CPU per update per client, direct (each its Registry)", series(func(f xdsFigures) float64 { return f.clientCPU[setupDirect] }), formatNanos),
		row("Clients' CPU per update per client, tier", series(func(f xdsFigures) float64 { return f.clientCPU[setupTier] }), formatNanos),
	)

	latDirect := series(func(f xdsFigures) float64 { return f.latencyMedian[setupDirect] })
	latTier := series(func(f xdsFigures) float64 { return f.latencyMedian[setupTier] })
	gapLimits := make([]float64, len(figs))
	for k := range gapLimits {
		gapLimits[k] = float64(xdsLatencyTarget)
	}
	r.rows = append(r.rows,
		row("Change → client latency, median, direct", latDirect, formatNanos),
		row("Change → client latency, median, tier", latTier, formatNanos),
		judged(row("Change → client latency, median, tier − direct", d.latencyGap, formatDelta),
			"≤ "+formatNanos(float64(xdsLatencyTarget)), d.latencyGap, gapLimits, 1,
			func(k int) string {
				return fmt.Sprintf("%s against %s", formatValue(latTier[k], formatNanos), formatValue(latDirect[k], formatNanos))
			}),
		row("Change → client latency, p99, direct", series(func(f xdsFigures) float64 { return f.latencyP99[setupDirect] }), formatNanos),
		row("Change → client latency, p99, tier", series(func(f xdsFigures) float64 { return f.latencyP99[setupTier] }), formatNanos),
		row("Clients started → all have the service, direct", series(func(f xdsFigures) float64 { return f.ready[setupDirect] }), formatNanos),
		row("Clients started → all have the service, tier", series(func(f xdsFigures) float64 { return f.ready[setupTier] }), formatNanos),
		row("Clients process resident memory per client, direct", series(func(f xdsFigures) float64 { return f.rss[setupDirect] }), formatBytes),
		row("Clients process resident memory per client, tier", series(func(f xdsFigures) float64 { return f.rss[setupTier] }), formatBytes),
	)

	var idle []string
	skipped := false
	for _, p := range res.points {
		idle = append(idle, fmt.Sprintf("%.1f%%", 100*p.idle))
		skipped = skipped || (p.clients > 0 && len(p.sessions[setupDirect]) == 0)
	}
	r.notes = []string{
		fmt.Sprintf("**Updates**: %d readiness flips per session (after %d warm-up ones), written one at a time from the measuring process through the status subresource, "+
			"each awaited at every client before the next: the pods of %s in turn, each made not ready then ready again, so that the service swings between %d and %d instances. "+
			"Direct and tier sessions alternate, %d of each per N, the order swapped every round; latencies are over every client's every sample.",
			f.updates, warmUpdates, workload.Service(watchedService), s.Registered/s.Services, s.Registered/s.Services-1, f.rounds) + gapNote(f.xds.gap),
		"**Processes**: the clients of a session run in a process of their own, and so does the tier (a `kuberegistry.Registry` and an `xds.Server` with `xds.GRPCServerOptions`, on loopback); " +
			"the measuring process only writes the updates. Every process starts fresh for each session, and the session waits until kube-apiserver and its processes are idle before measuring.",
		"**API server CPU**: kube-apiserver's user+system CPU, the sum of its threads' `/proc/<pid>/task/*/schedstat` (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks), read at every update's start. " +
			"*Median update*: the median over every update of every session of its CPU from just before the write to the moment every client has the change (without clients, " + noClientsGap.String() + " after the write); " +
			"the targets judge it, because it is not moved by kube-apiserver's garbage collections — a cycle of its heap of the fleet costs about half a second and falls in some sessions and not others — nor by its background work. " +
			"*Whole sessions*: over all the measured updates, less kube-apiserver's idle rate (measured for " + f.xds.idle.String() + " before each N with nothing running: " + strings.Join(idle, ", ") + " of a core) times the session's wall time, per update; " +
			"the amortized cost, garbage collections included when a session holds one. Both include serving the write itself, the same in both setups: N = 0 is that alone.",
		"**Tier CPU**: `getrusage(RUSAGE_SELF)` of the tier process over the same updates (the targets judge it): following the Registry, encoding the assignment once, a response to each client and reading its ACK; " +
			"its median update from `/proc` as kube-apiserver's, from one update's start to the next. System calls and bytes from its `/proc/self/io`.",
		"**Latency**: from just before the status write to the moment each client's watcher has the new set (`Next` returns for direct and `xds.Discovery` clients; the assignment is received for raw ADS clients), by the wall clock both processes share.",
	}
	if skipped {
		r.notes = append(r.notes, fmt.Sprintf("**Direct beyond %d clients** was not measured (`-xds-direct-max`); the tier's per-client cost there is held to the largest N measured direct.", f.xds.directMax))
	}
	if fl := res.floor; fl.clients > 0 {
		r.notes = append(r.notes, fmt.Sprintf("**Loopback floor**: a process that only writes %s to each of %s loopback TCP connections in turn (the readers in another process) spends %s of CPU per connection and message; "+
			"reading %s back from each too, %s (%d rounds, `getrusage`). The tier's per-client cost is measured against it above.",
			formatBytes(float64(fl.message)), groupThousands(fl.clients), formatNanos(float64(fl.write)), formatBytes(float64(fl.reply)), formatNanos(float64(fl.writeRead)), fl.rounds))
		last := len(figs) - 1
		r.targets = append(r.targets, fmt.Sprintf("Floor under the tier's cost per client, at N = %s: one write per client costs %s and a write and a read %s, against a target of %s and a tier at %s (marginal %s): "+
			"the floor alone is %s the target.",
			groupThousands(fl.clients), formatNanos(float64(fl.write)), formatNanos(float64(fl.writeRead)), formatValue(limits[last], formatNanos),
			formatValue(d.tierPerClient[last], formatNanos), formatValue(d.tierMarginal[last], formatNanos), ratio(float64(fl.writeRead), limits[last])))
	}
	return r
}

// formatSignedNanos formats a duration in nanoseconds that may be negative.
func formatSignedNanos(ns float64) string {
	if ns < 0 {
		return "−" + formatNanos(-ns)
	}
	return formatNanos(ns)
}

// formatDelta formats a difference of durations in nanoseconds, with its sign.
func formatDelta(ns float64) string {
	if ns < 0 {
		return "−" + formatNanos(-ns)
	}
	return "+" + formatNanos(ns)
}

// renderXDS writes the xDS table as Markdown: its caption with the command, the table, the
// targets and the notes.
func renderXDS(w io.Writer, r xdsReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n`%s`\n\n", r.title, r.command)
	header := append(append([]string{"metric"}, r.columns...), "target", "verdict")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, row := range r.rows {
		cells := append(append([]string{row.metric}, row.cells...), dash(row.target), dash(row.verdict))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\nTargets:\n\n")
	for _, t := range r.targets {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	b.WriteString("\nNotes:\n\n")
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// gapNote says what -xds-gap did, if anything.
func gapNote(gap time.Duration) string {
	if gap <= 0 {
		return ""
	}
	return fmt.Sprintf(" After every client has an update, the session pauses %s before the next write (`-xds-gap`), so that the tier's and the clients' work on one update does not overlap kube-apiserver's on the next.", gap)
}
