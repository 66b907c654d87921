package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// seriesHeader names the columns of the service-size table.
var seriesHeader = []string{
	"instances in the service",
	"Start → synced, ours / bare (ratio)",
	"CPU per update, ours / bare (ratio)",
	"change → Next latency median, ours / bare (ratio)",
}

// renderServiceSizes writes the service-size series as a Markdown table, one row per point, and
// what its columns measure.
func renderServiceSizes(w io.Writer, f *flags, c *cluster, results []sizeResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kuberegistry-bench, service-size series: %d watchers of the measured service; %s\n\n", f.serviceWatchers, machine(c))
	b.WriteString("| " + strings.Join(seriesHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(seriesHeader)) + "\n")
	for _, res := range results {
		cells := []string{
			pointLabel(res.point),
			versus(res.cpu.sync[ours], res.cpu.sync[limit]),
			versus(res.cpu.sequential[ours], res.cpu.sequential[limit]),
			versus(median(res.latency[ours]), median(res.latency[limit])),
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\nNotes:\n\n")
	for _, n := range []string{
		"Each point is a namespace of its own holding only registered, ready pods (`workload` pods, created 16 at a time); the measured service is the first, " +
			fmt.Sprintf("with %d watchers on it, and every update is to one of its pods.", f.serviceWatchers),
		"**ours**: `kuberegistry.NewForConfig` with `WithNamespace`, one goroutine blocked in `Next` per watcher. **bare**: the limit, a bare informer over the same " +
			"label selector with protobuf, no transform, whose only handler signals the watchers of the pod's service (one goroutine each, woken by a channel send).",
		fmt.Sprintf("**Start → synced**: ours, the wall time of `Start`; bare, from running the informer until its handler's `HasSynced`, polled every millisecond. "+
			"Each session of the CPU measurement starts so, once the process is idle; median of its %d sessions per design, alternately ours and bare.", f.rounds),
		fmt.Sprintf("**CPU per update**: user+system CPU of the measuring process divided by %d readiness flips of the service's pods (after %d warm-up ones), "+
			"written by the writer process one at a time, each awaited at every watcher; median of %d sessions.", f.updates, warmUpdates, f.rounds),
		fmt.Sprintf("**change → Next latency**: from just before the `UpdateStatus` request, written from the measuring process, to the moment the last of the "+
			"watchers has the change, over %d flips; ours and bare run at the same time and see the same changes.", f.latencyUpdates),
	} {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// pointLabel names a point in the table: its service's size, and the fleet when it has more
// services.
func pointLabel(p sizePoint) string {
	if p.services == 1 {
		return fmt.Sprint(p.instances)
	}
	return fmt.Sprintf("%d (%d services × %d, %d pods)", p.instances, p.services, p.instances, p.services*p.instances)
}

// versus formats "ours / bare (ratio)"; — where not measured.
func versus(o, l time.Duration) string {
	if o == 0 || l == 0 {
		return "—"
	}
	return fmt.Sprintf("%s / %s (%s)", formatNanos(float64(o)), formatNanos(float64(l)), ratio(float64(o), float64(l)))
}

// writeServiceSizeChart writes the SVG chart of Start → synced and CPU per update against the
// size of the one service, from the one-service points.
func writeServiceSizeChart(path string, results []sizeResult, c *cluster) error {
	d := chartData{
		title:   "kuberegistry against the limit, by instances in one service, on a real kube-apiserver",
		caption: "limit: a bare protobuf informer, its handler signals the service's watchers · " + machine(c),
		xLabel:  "instances in the one service of the namespace",
		unit:    "instances",
		sizes:   chartPoints(pointsOf(results)),
		panels: []chartPanel{
			{title: "Start → synced", yLabel: "wall time (log scale)", format: formatNanos},
			{title: "CPU per pod update", yLabel: "CPU time per update (log scale)", format: formatNanos},
		},
	}
	for design := range 3 {
		for _, size := range d.sizes {
			sync, cpu := math.NaN(), math.NaN()
			for _, res := range results {
				if res.point == (sizePoint{services: 1, instances: size}) && design != baseline {
					sync, cpu = float64(res.cpu.sync[design]), float64(res.cpu.sequential[design])
				}
			}
			d.panels[0].values[design] = append(d.panels[0].values[design], sync)
			d.panels[1].values[design] = append(d.panels[1].values[design], cpu)
		}
	}
	return writeSVG(path, d)
}

func pointsOf(results []sizeResult) []sizePoint {
	points := make([]sizePoint, len(results))
	for i, res := range results {
		points[i] = res.point
	}
	return points
}
