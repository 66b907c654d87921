package main

// The chart of the xDS mode: the API server's CPU per update against the number of clients,
// direct and with the tier, and the cost per client of each. Linear axes — the point is that
// one line grows with N and the other does not — unlike chart.go's log-scale panels.

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// xdsSeries is one line of a panel: a value per number of clients, NaN where missing.
type xdsSeries struct {
	name, color, dash string
	values            []float64
}

// xdsPanel is one plot.
type xdsPanel struct {
	title, yLabel string
	series        []xdsSeries
}

// xdsChartData is the whole chart.
type xdsChartData struct {
	title, caption string
	clients        []int
	panels         []xdsPanel
}

// Colours of the setups, as chart.go's baseline and ours.
const (
	directColor   = "#d62728"
	tierColor     = "#1f77b4"
	targetColor   = "#555555"
	marginalColor = "#9ecae1"
)

// xdsChart builds the chart of the results.
func xdsChart(f *flags, machine string, res xdsResults) xdsChartData {
	var figs []xdsFigures
	d := xdsChartData{
		title:   "The xDS tier against direct Registries: N client pods watching one service",
		caption: fmt.Sprintf("%s pods, %s registered; updates flip the readiness of the watched service's pods one at a time · %s", groupThousands(f.pods), groupThousands(f.registered), machine),
	}
	for _, p := range res.points {
		figs = append(figs, figuresOf(p))
		d.clients = append(d.clients, p.clients)
	}
	der := deriveXDS(figs)
	pick := func(v func(f xdsFigures) float64) []float64 {
		out := make([]float64, len(figs))
		for k, f := range figs {
			out[k] = v(f)
		}
		return out
	}
	scaled := func(vs []float64, by float64) []float64 {
		out := make([]float64, len(vs))
		for k, v := range vs {
			out[k] = v * by
		}
		return out
	}
	// Per client, from 2 clients on: with one, the tier's cost per client is its fixed cost.
	fromTwo := func(vs []float64) []float64 {
		out := slices.Clone(vs)
		for k, f := range figs {
			if f.clients < 2 {
				out[k] = math.NaN()
			}
		}
		return out
	}
	refLine := make([]float64, len(figs))
	for k := range refLine {
		refLine[k] = der.reference * xdsAPIServerTarget
	}
	d.panels = []xdsPanel{
		{
			title: "API server CPU per pod update", yLabel: "CPU time per update (median update)",
			series: []xdsSeries{
				{name: "direct: a Registry per client", color: directColor, values: pick(func(f xdsFigures) float64 { return f.apiServer[setupDirect] })},
				{name: "tier: one Registry, N xDS clients", color: tierColor, values: pick(func(f xdsFigures) float64 { return f.apiServer[setupTier] })},
				{name: fmt.Sprintf("target: %s a single Registry", formatRatio(xdsAPIServerTarget)), color: targetColor, dash: "6 4", values: refLine},
			},
		},
		{
			title: "CPU per update per client", yLabel: "CPU time per update per client",
			series: []xdsSeries{
				{name: "API server, per direct client: (CPU at N − at 0) / N", color: directColor, values: fromTwo(der.directPerClient)},
				{name: "tier process, per xDS client: CPU / N", color: tierColor, values: fromTwo(der.tierPerClient)},
				{name: "tier process, marginal: (CPU at N − at 0) / N", color: marginalColor, values: fromTwo(der.tierMarginal)},
				{name: fmt.Sprintf("target: %s the API server's per client", formatRatio(xdsPerClientTarget)), color: targetColor, dash: "6 4", values: fromTwo(scaled(der.comparedWith, xdsPerClientTarget))},
			},
		},
	}
	return d
}

// niceCeiling is the smallest of 1, 2 or 5 times a power of ten at least v (v > 0).
func niceCeiling(v float64) float64 {
	if !(v > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// renderXDSChart writes the chart as a standalone SVG: a panel side by side for each of
// d.panels, each with its legend under its title.
func renderXDSChart(w io.Writer, d xdsChartData) error {
	if len(d.clients) < 2 {
		return fmt.Errorf("a chart needs at least two numbers of clients, got %d", len(d.clients))
	}
	const legendTop = 62
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="13">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight, chartFont)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, chartHeight)
	fmt.Fprintf(&b, `<text x="%d" y="26" text-anchor="middle" font-size="17" font-weight="bold">%s</text>`+"\n", chartWidth/2, esc(d.title))
	maxN := float64(d.clients[len(d.clients)-1])
	for k, panel := range d.panels {
		offset := float64(k * panelWidth)
		left, top := offset+plotLeft, float64(plotTop+20)
		width, height := float64(plotWidth), float64(plotHeight-20)
		right, bottom := left+width, top+height
		fmt.Fprintf(&b, `<g class="panel">`+"\n")
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", left+width/2, 50, esc(panel.title))
		for s, series := range panel.series {
			y := float64(legendTop + 15*s)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`+"\n", left, y, left+24, y, series.color, dashAttr(series.dash))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12">%s</text>`+"\n", left+30, y+4, esc(series.name))
		}
		hi := 0.0
		for _, series := range panel.series {
			for _, v := range series.values {
				if v > hi {
					hi = v
				}
			}
		}
		hi = niceCeiling(hi)
		x := func(n int) float64 { return left + float64(n)/maxN*width }
		y := func(v float64) float64 { return bottom - v/hi*height }
		for t := 0; t <= 5; t++ {
			v := hi * float64(t) / 5
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y(v), right, y(v), gridColor)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, esc(formatNanos(v)))
		}
		step := int(niceCeiling(maxN / 5))
		for n := 0; float64(n) <= maxN; n += step {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(n), top, x(n), bottom, gridColor)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(n), bottom+18, n)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" fill="none" stroke="%s"/>`+"\n", left, top, width, height, axisColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">client pods watching the service (N)</text>`+"\n", left+width/2, bottom+40)
		fmt.Fprintf(&b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", offset+22, top+height/2, esc(panel.yLabel))
		for _, series := range panel.series {
			var points []string
			var markers bytes.Buffer
			for k, v := range series.values {
				if k >= len(d.clients) || math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				px, py := x(d.clients[k]), y(math.Max(v, 0))
				points = append(points, fmt.Sprintf("%.1f,%.1f", px, py))
				if series.dash == "" {
					fmt.Fprintf(&markers, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"><title>%s, N = %d: %s</title></circle>`+"\n",
						px, py, markerRadius, series.color, esc(series.name), d.clients[k], esc(formatNanos(v)))
				}
			}
			if len(points) == 0 {
				continue
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`+"\n", strings.Join(points, " "), series.color, dashAttr(series.dash))
			b.Write(markers.Bytes())
		}
		b.WriteString("</g>\n")
	}
	if d.caption != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#555">%s</text>`+"\n", chartWidth/2, chartHeight-10, esc(d.caption))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// writeXDSChart renders d into the file at path, creating its directory.
func writeXDSChart(path string, d xdsChartData) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := renderXDSChart(out, d); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
