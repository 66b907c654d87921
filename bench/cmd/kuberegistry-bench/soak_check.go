package main

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/kuberegistry/kuberegistry"
)

// instanceKey is an instance's content as one string: two instances carry the same data exactly
// when their keys are equal.
func instanceKey(in *kuberegistry.ServiceInstance) string {
	var b strings.Builder
	// %q keeps the fields apart whatever they hold.
	fmt.Fprintf(&b, "%q %q %q", in.ID, in.Name, in.Version)
	keys := make([]string, 0, len(in.Metadata))
	for k := range in.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " m%q=%q", k, in.Metadata[k])
	}
	for _, e := range in.Endpoints {
		fmt.Fprintf(&b, " e%q", e)
	}
	return b.String()
}

// setKeys are the keys of a set's instances, sorted: two sets hold the same instances, in any
// order, exactly when their keys are equal.
func setKeys(set []*kuberegistry.ServiceInstance) []string {
	keys := make([]string, len(set))
	for k, in := range set {
		keys[k] = instanceKey(in)
	}
	slices.Sort(keys)
	return keys
}

// sameSet reports whether two sets hold the same instances, by content and in any order. A Next
// that returns a set for which sameSet holds with the previous one returned a duplicate.
func sameSet(a, b []*kuberegistry.ServiceInstance) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 0 && &a[0] == &b[0] { // the same snapshot
		return true
	}
	return slices.Equal(setKeys(a), setKeys(b))
}

// setHosts are the hosts of the endpoints of a set's instances, one per instance (its first
// endpoint's), sorted: the pod IPs a set serves. An instance without a readable endpoint counts
// as "?".
func setHosts(set []*kuberegistry.ServiceInstance) []string {
	hosts := make([]string, len(set))
	for k, in := range set {
		hosts[k] = "?"
		if len(in.Endpoints) > 0 {
			if u, err := url.Parse(in.Endpoints[0]); err == nil && u.Hostname() != "" {
				hosts[k] = u.Hostname()
			}
		}
	}
	slices.Sort(hosts)
	return hosts
}

// flatTolerance is how much a series sampled during the soak may grow in its second half: its
// end over its middle, and its trend over the second half, each at most this fraction of the
// middle (plus the series' own absolute slack, for small values and sampling noise).
const flatTolerance = 0.10

// flatness is the verdict on one series.
type flatness struct {
	ok     bool
	detail string
}

// judgeFlat says whether values, sampled at times (seconds, growing), stayed flat in their second
// half: the last value at most (1+flatTolerance)·middle + slack, and the growth the least-squares
// line through the second half's samples (middle to end) predicts over that half at most
// flatTolerance·middle + slack. The middle is the sample at index len/2. Falling is flat: only
// growth is judged. format names values in the detail.
func judgeFlat(times, values []float64, slack float64, format func(float64) string) flatness {
	if len(values) < 3 || len(times) != len(values) {
		return flatness{detail: "fewer than 3 samples"}
	}
	mid := len(values) / 2
	middle, end := values[mid], values[len(values)-1]
	allowed := flatTolerance*math.Abs(middle) + slack
	growth := trendGrowth(times[mid:], values[mid:])
	ok := end-middle <= allowed && growth <= allowed
	detail := fmt.Sprintf("middle %s, end %s (%+.1f%%); trend over the second half %s%s (%+.1f%%); allowed +%s",
		format(middle), format(end), percent(end-middle, middle),
		sign(growth), format(math.Abs(growth)), percent(growth, middle), format(allowed))
	return flatness{ok: ok, detail: detail}
}

// trendGrowth is the slope of the least-squares line through the points times its span in x: how
// much the points grew, as a trend, from the first to the last x.
func trendGrowth(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy float64
	for k := range xs {
		sx += xs[k]
		sy += ys[k]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for k := range xs {
		sxy += (xs[k] - mx) * (ys[k] - my)
		sxx += (xs[k] - mx) * (xs[k] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx * (xs[len(xs)-1] - xs[0])
}

func percent(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * part / whole
}

func sign(v float64) string {
	if v < 0 {
		return "-"
	}
	return "+"
}
