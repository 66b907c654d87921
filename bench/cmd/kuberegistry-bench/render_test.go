package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry/bench/workload"
)

func sampleChart() chartData {
	return chartData{
		title:   "a <chart> & more",
		caption: "a caption",
		xLabel:  "pods",
		sizes:   []int{1000, 5000, 10000, 20000},
		panels: []chartPanel{
			{title: "GetService latency", yLabel: "time", format: formatNanos, values: [3][]float64{
				{3e5, 1.5e6, 3e6, 6e6}, {25, 26, 27, 30}, {15, 16, 16, 17},
			}},
			{title: "Cache memory", yLabel: "MiB", format: formatMiB, values: [3][]float64{
				{15, 75, 150, 300}, {0.6, 3, 6, math.NaN()}, {0.07, 0.35, 0.7, 1.4},
			}},
		},
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	var b bytes.Buffer
	if err := renderSVG(&b, sampleChart()); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	d := xml.NewDecoder(strings.NewReader(text))
	elements := map[string]int{}
	var root string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = start.Name.Local
			}
			elements[start.Name.Local]++
		}
	}
	if root != "svg" {
		t.Errorf("root element = %q, want svg", root)
	}
	if got := elements["polyline"]; got != 6 {
		t.Errorf("%d polylines, want 6 (3 designs × 2 panels)", got)
	}
	// 4 sizes × 3 series × 2 panels, less the missing value, plus 3 in the legend.
	if got := elements["circle"]; got != 4*3*2-1+3 {
		t.Errorf("%d circles, want %d", got, 4*3*2-1+3)
	}
	for _, want := range []string{"GetService latency", "Cache memory", "20k", "baseline (naive)", "ours (kuberegistry)", "limit", "a &lt;chart&gt; &amp; more", "a caption"} {
		if !strings.Contains(text, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}

func TestSVGNeedsTwoSizes(t *testing.T) {
	d := sampleChart()
	d.sizes = d.sizes[:1]
	if err := renderSVG(io.Discard, d); err == nil {
		t.Fatal("renderSVG accepted a single size")
	}
}

func TestTableHasEveryRow(t *testing.T) {
	r := report{
		title: "title",
		rows: []row{
			{"Start → synced", [3]float64{3e9, 1e9, 5e8}, formatNanos},
			{"Cache memory (live heap)", [3]float64{150 << 20, 6 << 20, 0.7 * (1 << 20)}, formatMiB},
			{"GetService allocations per call", [3]float64{400, 0, 0}, formatCount},
			{"Requests per Register", [3]float64{math.NaN(), 1, 1}, formatCount},
		},
		notes:   []string{"a note"},
		targets: []string{"a target — met"},
	}
	var b strings.Builder
	if err := renderMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	header := slices.Index(lines, "| metric | baseline | ours | limit | ratio (baseline/ours) | ours/limit |")
	if header < 0 {
		t.Fatalf("no header in\n%s", b.String())
	}
	for k, rw := range r.rows {
		line := lines[header+2+k]
		if !strings.HasPrefix(line, "| "+rw.metric+" |") {
			t.Errorf("row %d = %q, want metric %q", k, line, rw.metric)
		}
		if cells := strings.Count(line, "|"); cells != len(tableHeader)+1 {
			t.Errorf("row %q has %d separators, want %d", line, cells, len(tableHeader)+1)
		}
	}
	for _, want := range []string{"| 3 s | 1 s | 500 ms | 3.00× | 2.00× |", "| 150 MiB | 6 MiB | 0.7 MiB | 25.0× |", "| — | 1 | 1 | — | 1.00× |", "- a note", "- a target — met"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{formatNanos(25.4), "25.4 ns"},
		{formatNanos(1234), "1.23 µs"},
		{formatNanos(306e3), "306 µs"},
		{formatNanos(1e7), "10 ms"},
		{formatNanos(2.5e9), "2.5 s"},
		{formatMiB(0.144 * (1 << 20)), "0.144 MiB"},
		{formatRatio(11947.2), "11947×"},
		{formatRatio(23.94), "23.9×"},
		{formatRatio(0.9), "0.90×"},
		{ratio(1, 0), "—"},
		{ratio(math.NaN(), 1), "—"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if got := percentile(ds, 50); got != 50 {
		t.Errorf("median = %d, want 50", got)
	}
	if got := percentile(ds, 99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %d, want 0", got)
	}
}

func TestFlipsRoundTrip(t *testing.T) {
	flips := []flip{{0, true}, {4999, false}, {17, true}}
	line := encodeFlips(flips)
	got, err := decodeFlips(strings.TrimSuffix(line, "\n"))
	if err != nil || !slices.Equal(got, flips) {
		t.Fatalf("decodeFlips(%q) = %v, %v; want %v", line, got, err, flips)
	}
	for _, bad := range []string{"3", "x:1", "3:2", "-1:0"} {
		if _, err := decodeFlips(bad); err == nil {
			t.Errorf("decodeFlips(%q) accepted a bad command", bad)
		}
	}
}

func TestUpdatePlanCyclesServicesThenPods(t *testing.T) {
	s := workload.Scenario{Pods: 100, Registered: 40, Services: 10}
	plan := updatePlan(s, 5, 25) // 4 pods per service

	for j, i := range plan {
		if svc := s.ServiceOf(i); svc != j%5 {
			t.Errorf("update %d flips pod %d of service %d, want service %d", j, i, svc, j%5)
		}
	}
	if first := []int{plan[0], plan[5], plan[10], plan[15]}; !slices.Equal(first, []int{0, 10, 20, 30}) || plan[20] != plan[0] {
		t.Errorf("plan %v does not visit each pod of a service before any twice", plan)
	}
	if got := batches(plan, 5); len(got) != 5 || len(got[4]) != 5 {
		t.Errorf("batches of 5 = %v", got)
	}
}

func TestReportJudgesTargets(t *testing.T) {
	f, err := parseFlags([]string{"-chart=false"})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	res := results{
		sync: syncResult{
			start:  [3]time.Duration{1800 * ms, 900 * ms, 700 * ms},
			memory: [3]float64{150 << 20, 6 << 20, 0.7 * (1 << 20)},
			lookup: [3]callCost{{ns: 5e6, allocs: 472}, {ns: 40}, {ns: 20}},
		},
		cpuMany: cpuResult{
			sequential: [3]time.Duration{12 * ms, 700 * time.Microsecond, 550 * time.Microsecond},
			burst:      [3]time.Duration{10 * ms, 500 * time.Microsecond, 400 * time.Microsecond},
		},
		cpuFew:     cpuResult{sequential: [3]time.Duration{0, 650 * time.Microsecond, 600 * time.Microsecond}},
		cpuDoubled: cpuResult{sequential: [3]time.Duration{0, 690 * time.Microsecond, 510 * time.Microsecond}},
		latency:    latencyResult{{20 * ms, 40 * ms}, {10 * ms, 27 * ms}, {10 * ms, 27 * ms}},
		register:   registerResult{idle: []string{"PATCH /x"}, started: []string{"PATCH /x"}},
	}
	r := buildReport(f, &cluster{version: "v1.36.3"}, res)
	var b strings.Builder
	if err := renderMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"Start → synced: ours ≤ 1/3 of baseline — **missed** (baseline/ours = 2.00×, target 3.00×); the limit itself is 2.57× below the baseline",
		"Cache memory: ours ≤ 1/20 of baseline — met (baseline/ours = 25.0×)",
		"GetService: ours ≤ 3× limit — met (ours/limit = 2.00×)",
		"| CPU per pod update, 50 watchers, one at a time | — | 650 µs | 600 µs | — | 1.08× |",
		"Register: exactly 1 request — met",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
}
