package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePoints(t *testing.T) {
	got, err := parsePoints("1000, 3000,100x100")
	want := []sizePoint{{1, 1000}, {1, 3000}, {100, 100}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parsePoints = %v, %v; want %v", got, err, want)
	}
	if got, err := parsePoints(""); err != nil || got != nil {
		t.Errorf("parsePoints(\"\") = %v, %v; want none", got, err)
	}
	for _, bad := range []string{"0", "x100", "100x", "10y10", "1000,", "-5"} {
		if _, err := parsePoints(bad); err == nil {
			t.Errorf("parsePoints(%q) accepted a bad point", bad)
		}
	}
	if got := chartPoints([]sizePoint{{1, 3000}, {100, 100}, {1, 1000}, {1, 3000}}); !slices.Equal(got, []int{1000, 3000}) {
		t.Errorf("chartPoints = %v, want [1000 3000]", got)
	}
}

func TestSeriesFlags(t *testing.T) {
	f, err := parseFlags([]string{"-service-sizes", "1000,3000", "-spread", "100x100", "-service-size-svg", "x.svg"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sizePoint{{1, 1000}, {1, 3000}, {100, 100}}; !slices.Equal(f.sizePoints, want) {
		t.Errorf("points = %v, want %v", f.sizePoints, want)
	}
	if _, err := parseFlags([]string{"-spread", "100x100", "-service-size-svg", "x.svg"}); err == nil {
		t.Error("a chart without two one-service points was accepted")
	}
}

func TestServiceSizeTable(t *testing.T) {
	f, err := parseFlags([]string{"-service-sizes", "1000"})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	results := []sizeResult{
		{point: sizePoint{1, 1000}, cpu: cpuResult{sync: [3]time.Duration{0, 400 * ms, 200 * ms}, sequential: [3]time.Duration{0, 900 * time.Microsecond, 600 * time.Microsecond}},
			latency: latencyResult{nil, {8 * ms}, {8 * ms}}},
		{point: sizePoint{100, 100}},
	}
	var b strings.Builder
	if err := renderServiceSizes(&b, f, &cluster{version: "v1.36.3"}, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| " + strings.Join(seriesHeader, " | ") + " |",
		"| 1000 | 400 ms / 200 ms (2.00×) | 900 µs / 600 µs (1.50×) | 8 ms / 8 ms (1.00×) |",
		"| 100 (100 services × 100, 10000 pods) | — | — | — |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestChartLegendShowsOnlyDrawnSeries(t *testing.T) {
	d := sampleChart()
	for p := range d.panels {
		d.panels[p].values[baseline] = nil
	}
	var b bytes.Buffer
	if err := renderSVG(&b, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), seriesStyle[baseline].name) {
		t.Error("the legend names the baseline, which has no value")
	}
	if got := strings.Count(b.String(), "<polyline"); got != 4 {
		t.Errorf("%d polylines, want 4 (2 designs × 2 panels)", got)
	}
}
