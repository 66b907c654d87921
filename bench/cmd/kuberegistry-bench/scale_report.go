package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Targets of the scale table: what may grow from the smallest fleet to the largest, and how far
// Start may be from the bare List at every size.
const (
	scaleGrowthTarget = 1.2 // memory per registered pod, GetService, CPU per update: largest/smallest
	scaleSyncTarget   = 1.1 // Start → synced: ours/bare List, at every size
)

// scaleRow is one metric of the scale table.
type scaleRow struct {
	metric  string
	cells   []string // by fleet size
	ratio   string   // largest/smallest; "" where it means nothing
	target  string   // "" for none
	verdict string   // "met", "**missed**", "not measured"; "" without a target
}

// scaleReport is the scale table with what explains it.
type scaleReport struct {
	title   string
	command string
	sizes   []string // column headers
	ratio   string   // header of the ratio column
	rows    []scaleRow
	notes   []string
	targets []string // each target with its verdict and figures
}

// buildScaleReport turns the points of the scale mode, smallest fleet first, into its table.
func buildScaleReport(f *flags, machine string, points []scalePoint) scaleReport {
	first, last := points[0], points[len(points)-1]
	r := scaleReport{
		title: fmt.Sprintf("kuberegistry-bench, scale: fleets of N pods, N/2 registered in N/20 services (10 instances each); "+
			"one watcher per service on the first %d services (all of them in a smaller fleet); %s", f.scale.watchers, machine),
		command: f.scale.command,
		ratio:   fmt.Sprintf("%s / %s", groupThousands(last.s.Pods), groupThousands(first.s.Pods)),
	}
	for _, p := range points {
		r.sizes = append(r.sizes, fmt.Sprintf("%s pods (%s registered, %s services, %d watchers)",
			groupThousands(p.s.Pods), groupThousands(p.s.Registered), groupThousands(p.s.Services), p.watchers))
	}
	// series is one value per point; NaN where not measured.
	series := func(value func(p scalePoint) float64) []float64 {
		vs := make([]float64, len(points))
		for k, p := range points {
			vs[k] = value(p)
		}
		return vs
	}
	nanos := func(d time.Duration) float64 {
		if d == 0 {
			return math.NaN()
		}
		return float64(d)
	}
	cells := func(vs []float64, format func(float64) string) []string {
		out := make([]string, len(vs))
		for k, v := range vs {
			out[k] = formatValue(v, format)
		}
		return out
	}
	growth := func(vs []float64) float64 { return vs[len(vs)-1] / vs[0] }
	// plain is a row without target; grown is a row whose largest/smallest ratio has the growth
	// target.
	plain := func(metric string, vs []float64, format func(float64) string, withRatio bool) scaleRow {
		row := scaleRow{metric: metric, cells: cells(vs, format)}
		if withRatio {
			row.ratio = ratio(vs[len(vs)-1], vs[0])
		}
		return row
	}
	grown := func(metric, what string, vs []float64, format func(float64) string) scaleRow {
		row := plain(metric, vs, format, true)
		row.target = "≤ " + formatRatio(scaleGrowthTarget)
		row.verdict = judge(growth(vs), scaleGrowthTarget)
		r.targets = append(r.targets, fmt.Sprintf("%s at %s pods within %s of %s pods — %s (%s: %s against %s)",
			what, groupThousands(last.s.Pods), formatRatio(scaleGrowthTarget), groupThousands(first.s.Pods),
			row.verdict, ratio(vs[len(vs)-1], vs[0]), formatValue(vs[len(vs)-1], format), formatValue(vs[0], format)))
		return row
	}

	created := make([]string, len(points))
	for k, p := range points {
		created[k] = fmt.Sprintf("%s (%.0f pods/s)", formatNanos(float64(p.created)), float64(p.s.Pods)/p.created.Seconds())
	}
	r.rows = append(r.rows, scaleRow{metric: "Creating the fleet (a create and a status write per pod)", cells: created})

	oursStart := series(func(p scalePoint) float64 { return nanos(p.start[ours]) })
	listStart := series(func(p scalePoint) float64 { return nanos(p.start[limit]) })
	syncRatios := series(func(p scalePoint) float64 { return nanos(p.start[ours]) / nanos(p.start[limit]) })
	syncRow := plain("Start → synced, ours / bare List", syncRatios, formatRatio, false)
	syncRow.target = "≤ " + formatRatio(scaleSyncTarget) + " at every size"
	syncRow.verdict = judge(maxOf(syncRatios), scaleSyncTarget)
	var each []string
	for k, p := range points {
		each = append(each, fmt.Sprintf("%s at %s pods", formatValue(syncRatios[k], formatRatio), groupThousands(p.s.Pods)))
	}
	r.targets = append(r.targets, fmt.Sprintf("Start → synced within %s of a bare protobuf List of the registered pods at every size — %s (%s)",
		formatRatio(scaleSyncTarget), syncRow.verdict, strings.Join(each, ", ")))
	r.rows = append(r.rows,
		plain("Start → synced, ours", oursStart, formatNanos, true),
		plain("Start → synced, bare protobuf List of the registered pods (limit)", listStart, formatNanos, true),
		syncRow,
	)

	heap := series(func(p scalePoint) float64 { return float64(p.heap) })
	perPod := series(func(p scalePoint) float64 { return float64(p.heap) / float64(p.s.Registered) })
	lookup := series(func(p scalePoint) float64 { return p.lookup.ns })
	allocs := series(func(p scalePoint) float64 { return p.lookup.allocs })
	r.rows = append(r.rows,
		plain("Cache memory, ours (live heap)", heap, formatMiB, true),
		grown("Cache memory per registered pod, ours", "Cache memory per registered pod", perPod, formatBytes),
		grown("GetService latency, ours", "GetService latency", lookup, formatNanos),
		plain("GetService allocations per call, ours", allocs, formatCount, false),
	)

	cpuOurs := series(func(p scalePoint) float64 { return nanos(p.cpu.sequential[ours]) })
	cpuBare := series(func(p scalePoint) float64 { return nanos(p.cpu.sequential[limit]) })
	cpuRatio := series(func(p scalePoint) float64 { return nanos(p.cpu.sequential[ours]) / nanos(p.cpu.sequential[limit]) })
	naiveCells := make([]string, len(points))
	skipped := false
	for k, p := range points {
		naiveCells[k] = "skipped"
		if p.naive {
			naiveCells[k] = formatValue(nanos(p.cpu.sequential[baseline]), formatNanos)
		} else {
			skipped = true
		}
	}
	r.rows = append(r.rows,
		grown("CPU per pod update, ours, one at a time", "CPU per pod update", cpuOurs, formatNanos),
		plain("CPU per pod update, bare protobuf informer (limit)", cpuBare, formatNanos, true),
		plain("CPU per pod update, ours / bare informer", cpuRatio, formatRatio, false),
		scaleRow{metric: "CPU per pod update, naive registry (baseline, one session)", cells: naiveCells},
	)

	r.notes = []string{
		"Each size is a namespace of its own, created before it is measured and deleted after (the largest is left to the local control plane's end): " +
			"`workload` pods, the first half registered, pod *i* in service *i* mod N/20, all running and ready. " +
			fmt.Sprintf("**Creating the fleet**: %d requests at a time from a protobuf client without client-side rate limit; "+
				"every pod needs two requests, as the API server resets the status of a pod it creates.", bulkWorkers),
		fmt.Sprintf("**Start → synced**: ours, `kuberegistry.NewForConfig` and `Start`; limit, one protobuf `List` of the registered pods with the same label selector, decoded; "+
			"alternately, %d runs each, medians.", f.runs),
		fmt.Sprintf("**Cache memory**: the live heap a started registry adds, client included (two `runtime.GC`, then `HeapAlloc`), median of the %d runs; per registered pod, divided by N/2.", f.runs),
		fmt.Sprintf("**GetService**: mean over at least %s of calls cycling through the N/20 services, on the last run.", f.lookupTime),
		fmt.Sprintf("**CPU per pod update**: user+system CPU of the measuring process per readiness flip, %d flips (after %d warm-up ones) written one at a time by the writer process "+
			"to pods of the watched services, each awaited at its consumer (the `Next` of every watcher of the service for ours, the handler for the bare informer); "+
			"ours and the bare informer (same label selector, protobuf, no transform, a handler that only notes the pod) alternately, %d sessions each, medians.",
			f.updates, warmUpdates, f.rounds),
	}
	if skipped {
		r.notes = append(r.notes, fmt.Sprintf("**Naive registry**: measured in one session at fleets of at most %s pods (`-scale-baseline-max`), skipped beyond: "+
			"with hundreds of watchers its setup alone takes many minutes (each watcher's handler is replayed every pod of the namespace).",
			groupThousands(f.scale.baselineMax)))
	}
	return r
}

// judge says whether a value meets a target it must not exceed.
func judge(got, target float64) string {
	switch {
	case math.IsNaN(got) || math.IsInf(got, 0):
		return "not measured"
	case got <= target:
		return "met"
	default:
		return "**missed**"
	}
}

// maxOf is the largest value, NaN if any is NaN.
func maxOf(vs []float64) float64 {
	m := math.Inf(-1)
	for _, v := range vs {
		if math.IsNaN(v) {
			return v
		}
		m = math.Max(m, v)
	}
	return m
}

// renderScale writes the scale table as Markdown: its caption with the command, the table, the
// targets and the notes.
func renderScale(w io.Writer, r scaleReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n`%s`\n\n", r.title, r.command)
	header := append(append([]string{"metric"}, r.sizes...), r.ratio, "target", "verdict")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, row := range r.rows {
		cells := append(append([]string{row.metric}, row.cells...), dash(row.ratio), dash(row.target), dash(row.verdict))
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

// dash is s, or "—" when empty.
func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// groupThousands writes n with commas between groups of three digits: 100,000.
func groupThousands(n int) string {
	if n < 0 {
		return "-" + groupThousands(-n)
	}
	digits := strconv.Itoa(n)
	var b strings.Builder
	for k, d := range digits {
		if k > 0 && (len(digits)-k)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
