package main

// The service-size series: how the costs of kuberegistry and of the limit grow with the number of
// instances in one service, which the main scenario (services of 10) cannot show. Each point is a
// namespace of its own holding only registered, ready pods; the measured service is the first,
// with -service-watchers watchers on it.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kuberegistry/kuberegistry/bench/workload"
	"k8s.io/client-go/kubernetes"
)

// sizePoint is one fleet of the series: services services of instances registered pods each.
type sizePoint struct{ services, instances int }

func (p sizePoint) scenario() workload.Scenario {
	n := p.services * p.instances
	return workload.Scenario{Pods: n, Registered: n, Services: p.services} // pod i is in service i%services
}

// parsePoints reads a comma-separated list of points: "N" is one service of N instances, "SxI" is
// S services of I instances. An empty list has none.
func parsePoints(list string) ([]sizePoint, error) {
	var points []sizePoint
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	for _, field := range strings.Split(list, ",") {
		field = strings.TrimSpace(field)
		services, instances, spread := strings.Cut(field, "x")
		if !spread {
			services, instances = "1", field
		}
		s, errS := strconv.Atoi(services)
		n, errN := strconv.Atoi(instances)
		if errS != nil || errN != nil || s < 1 || n < 1 {
			return nil, fmt.Errorf("%q is not a point of the service-size series (N instances, or SxI: S services of I)", field)
		}
		points = append(points, sizePoint{services: s, instances: n})
	}
	return points, nil
}

// chartPoints are the one-service points, by growing size: the chart's x axis.
func chartPoints(points []sizePoint) []int {
	var sizes []int
	for _, p := range points {
		if p.services == 1 && !slices.Contains(sizes, p.instances) {
			sizes = append(sizes, p.instances)
		}
	}
	slices.Sort(sizes)
	return sizes
}

// sizeResult is what the series measured at one point, for ours and the limit.
type sizeResult struct {
	point   sizePoint
	cpu     cpuResult // CPU per update one at a time, and Start → synced, medians of the sessions
	latency latencyResult
}

// runServiceSizes measures every point of the series, one after another, then prints the table
// and draws the chart.
func runServiceSizes(ctx context.Context, c *cluster, admin kubernetes.Interface, f *flags) error {
	var results []sizeResult
	for _, p := range f.sizePoints {
		res, err := measureServiceSize(ctx, c, admin, p, f)
		if err != nil {
			return err
		}
		results = append(results, res)
		logf("service size %s: Start → synced ours %s, bare %s; CPU per update ours %s, bare %s; latency median ours %s, bare %s",
			pointName(p), res.cpu.sync[ours], res.cpu.sync[limit], res.cpu.sequential[ours], res.cpu.sequential[limit],
			median(res.latency[ours]), median(res.latency[limit]))
	}
	if f.serviceSizeSVG != "" {
		if err := writeServiceSizeChart(f.serviceSizeSVG, results, c); err != nil {
			return err
		}
		logf("chart written to %s", f.serviceSizeSVG)
	}
	return output(f, func(w io.Writer) error { return renderServiceSizes(w, f, c, results) })
}

// measureServiceSize creates the point's fleet in a namespace of its own and measures, for ours
// and the limit, with f.serviceWatchers watchers on the first service and the updates on its pods:
//
//   - Start → synced and the CPU per update, in the same sessions (measureCPU): kuberegistry
//     and the limit alternately, f.rounds sessions each, each timed from its start to a synced
//     cache, then fed f.updates readiness flips by the writer process, one at a time;
//   - the change → Next latency, both designs open at once (measureLatency).
func measureServiceSize(ctx context.Context, c *cluster, admin kubernetes.Interface, p sizePoint, f *flags) (sizeResult, error) {
	res := sizeResult{point: p}
	s := p.scenario()
	logf("service size %s: %d pods in %d service(s) of %d, %d watchers", pointName(p), s.Pods, p.services, p.instances, f.serviceWatchers)
	err := inNamespace(ctx, admin, func(ns string) error {
		if err := createPods(ctx, admin, ns, s.Pod, 0, s.Pods); err != nil {
			return err
		}
		state := newFleetState(s)
		w, err := startWriter(ctx, c, ns)
		if err != nil {
			return err
		}
		res.cpu, err = measureCPU(ctx, c, w, ns, state, cpuRun{
			watched: 1, perService: f.serviceWatchers, updates: f.updates, rounds: f.rounds, skipBaseline: true,
		})
		w.close()
		if err != nil {
			return err
		}
		res.latency[ours], res.latency[limit], err = measureLatency(ctx, c, ns, state, 1, f.serviceWatchers, f.latencyUpdates)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("service size %s: %w", pointName(p), err)
	}
	return res, nil
}

// pointName is how the log names a point: "10000", or "100x100".
func pointName(p sizePoint) string {
	if p.services == 1 {
		return strconv.Itoa(p.instances)
	}
	return fmt.Sprintf("%dx%d", p.services, p.instances)
}
