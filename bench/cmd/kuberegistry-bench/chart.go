package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// chartPanel is one plot of the chart: a value of each design at each fleet size.
type chartPanel struct {
	title  string
	yLabel string
	format func(float64) string // for tick labels and tooltips
	values [3][]float64         // baseline, ours, limit; one per size, NaN or ≤0 where missing
}

// chartData is what the chart shows: panels over the same fleet sizes.
type chartData struct {
	title   string
	caption string // a line under the panels
	xLabel  string
	unit    string // what the sizes count, in tooltips
	sizes   []int
	panels  []chartPanel
}

// The look of the chart.
const (
	chartWidth   = 1000
	chartHeight  = 480
	panelWidth   = 500
	plotLeft     = 90 // within a panel
	plotWidth    = 370
	plotTop      = 100
	plotHeight   = 290
	chartFont    = `font-family="Helvetica, Arial, sans-serif"`
	axisColor    = "#333"
	gridColor    = "#ddd"
	markerRadius = 3.5
)

// seriesStyle gives each design its name, colour and dashes.
var seriesStyle = [3]struct{ name, color, dash string }{
	{"baseline (naive)", "#d62728", ""},
	{"ours (kuberegistry)", "#1f77b4", ""},
	{"limit", "#555555", "6 4"},
}

// renderSVG writes the chart as a standalone SVG: log-scale axes, one panel each.
func renderSVG(w io.Writer, d chartData) error {
	if len(d.sizes) < 2 {
		return fmt.Errorf("a chart needs at least two sizes, got %d", len(d.sizes))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="13">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight, chartFont)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, chartHeight)
	fmt.Fprintf(&b, `<text x="%d" y="26" text-anchor="middle" font-size="17" font-weight="bold">%s</text>`+"\n", chartWidth/2, esc(d.title))
	renderLegend(&b, d)
	for p, panel := range d.panels {
		renderPanel(&b, d, panel, float64(p*panelWidth))
	}
	if d.caption != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#555">%s</text>`+"\n", chartWidth/2, chartHeight-10, esc(d.caption))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// renderLegend names the designs that have a value in some panel.
func renderLegend(b *bytes.Buffer, d chartData) {
	const itemWidth = 200
	var shown []int
	for s := range seriesStyle {
		if slices.ContainsFunc(d.panels, func(p chartPanel) bool {
			return slices.ContainsFunc(p.values[s], func(v float64) bool { return v > 0 })
		}) {
			shown = append(shown, s)
		}
	}
	x := float64(chartWidth-itemWidth*len(shown)) / 2
	for _, i := range shown {
		s := seriesStyle[i]
		fmt.Fprintf(b, `<line x1="%.1f" y1="50" x2="%.1f" y2="50" stroke="%s" stroke-width="2.5"%s/>`+"\n", x, x+30, s.color, dashAttr(s.dash))
		fmt.Fprintf(b, `<circle cx="%.1f" cy="50" r="%.1f" fill="%s"/>`+"\n", x+15, markerRadius, s.color)
		fmt.Fprintf(b, `<text x="%.1f" y="54">%s</text>`+"\n", x+38, esc(s.name))
		x += itemWidth
	}
}

func renderPanel(b *bytes.Buffer, d chartData, panel chartPanel, offset float64) {
	left, top := offset+plotLeft, float64(plotTop)
	right, bottom := left+plotWidth, top+plotHeight
	fmt.Fprintf(b, `<g class="panel">`+"\n")
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n",
		left+plotWidth/2, top-18, esc(panel.title))

	// Y: decades that hold every value.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, series := range panel.values {
		for _, v := range series {
			if v > 0 && !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) { // nothing to plot
		lo, hi = 1, 10
	}
	loExp, hiExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if hiExp == loExp {
		hiExp++
	}
	y := func(v float64) float64 {
		return bottom - (math.Log10(v)-loExp)/(hiExp-loExp)*plotHeight
	}
	for e := loExp; e <= hiExp; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y(v), right, y(v), gridColor)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, esc(panel.format(v)))
	}

	// X: the sizes, on a log scale with a margin on both sides.
	minX, maxX := math.Log10(float64(d.sizes[0])), math.Log10(float64(d.sizes[len(d.sizes)-1]))
	margin := (maxX - minX) * 0.06
	x := func(size int) float64 {
		return left + (math.Log10(float64(size))-minX+margin)/(maxX-minX+2*margin)*plotWidth
	}
	for _, size := range d.sizes {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(size), top, x(size), bottom, gridColor)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(size), bottom+18, esc(formatPods(size)))
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", left, top, plotWidth, plotHeight, axisColor)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+plotWidth/2, bottom+40, esc(d.xLabel))
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		offset+22, top+plotHeight/2, esc(panel.yLabel))

	for s, series := range panel.values {
		style := seriesStyle[s]
		var points []string
		var markers strings.Builder
		for i, v := range series {
			if i >= len(d.sizes) || !(v > 0) {
				continue
			}
			px, py := x(d.sizes[i]), y(v)
			points = append(points, fmt.Sprintf("%.1f,%.1f", px, py))
			fmt.Fprintf(&markers, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"><title>%s, %s %s: %s</title></circle>`+"\n",
				px, py, markerRadius, style.color, esc(style.name), esc(formatPods(d.sizes[i])), esc(d.unit), esc(panel.format(v)))
		}
		if len(points) == 0 {
			continue
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`+"\n",
			strings.Join(points, " "), style.color, dashAttr(style.dash))
		b.WriteString(markers.String())
	}
	b.WriteString("</g>\n")
}

func dashAttr(dash string) string {
	if dash == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, dash)
}

// formatPods writes 20000 as "20k".
func formatPods(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// esc escapes text for XML.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeChart writes the SVG chart of GetService latency and cache memory over the fleet sizes.
func writeChart(path string, sizes []int, points map[int]syncResult, c *cluster) error {
	d := chartData{
		title:   "kuberegistry against a naive registry and the limit, on a real kube-apiserver",
		caption: "limit: a map of prebuilt slices (GetService); the bytes of the strings returned (memory) · " + machine(c),
		xLabel:  "pods in the namespace (half registered, 10 per service)",
		unit:    "pods",
		sizes:   sizes,
		panels: []chartPanel{
			{title: "GetService latency", yLabel: "time per call (log scale)", format: formatNanos},
			{title: "Cache memory", yLabel: "live heap (log scale)", format: func(v float64) string { return sig3(v) + " MiB" }},
		},
	}
	for design := range 3 {
		for _, size := range sizes {
			p, ok := points[size]
			lookup, memory := math.NaN(), math.NaN()
			if ok {
				lookup, memory = p.lookup[design].ns, p.memory[design]/(1<<20)
			}
			d.panels[0].values[design] = append(d.panels[0].values[design], lookup)
			d.panels[1].values[design] = append(d.panels[1].values[design], memory)
		}
	}
	return writeSVG(path, d)
}

// writeSVG renders d into the file at path, creating its directory.
func writeSVG(path string, d chartData) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := renderSVG(out, d); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
