package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// row is one line of the table: one metric of the three designs, lower is better.
type row struct {
	metric string
	values [3]float64 // baseline, ours, limit; NaN where not measured
	format func(float64) string
}

// report is the table with what explains it.
type report struct {
	title   string
	rows    []row
	notes   []string // what each row measures, and how
	targets []string // each target and whether it is met
}

// tableHeader names the columns.
var tableHeader = []string{"metric", "baseline", "ours", "limit", "ratio (baseline/ours)", "ours/limit"}

// renderMarkdown writes the report as Markdown: the table, then its notes and targets.
func renderMarkdown(w io.Writer, r report) error {
	var b strings.Builder
	if r.title != "" {
		fmt.Fprintf(&b, "%s\n\n", r.title)
	}
	b.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(tableHeader)) + "\n")
	for _, row := range r.rows {
		cells := []string{row.metric}
		for _, v := range row.values {
			cells = append(cells, formatValue(v, row.format))
		}
		cells = append(cells, ratio(row.values[baseline], row.values[ours]), ratio(row.values[ours], row.values[limit]))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.targets) > 0 {
		b.WriteString("\nTargets:\n\n")
		for _, t := range r.targets {
			fmt.Fprintf(&b, "- %s\n", t)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatValue(v float64, format func(float64) string) string {
	if math.IsNaN(v) {
		return "—"
	}
	return format(v)
}

// ratio formats a/b, or "—" when it means nothing.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return formatRatio(a / b)
}

func formatRatio(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	default:
		return fmt.Sprintf("%.2f×", r)
	}
}

// sig3 formats v with about three significant digits, without an exponent or trailing zeros.
func sig3(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0 || a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	if strings.Contains(s, ".") && !strings.Contains(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatNanos formats a duration given in nanoseconds, in the unit that suits it.
func formatNanos(ns float64) string {
	switch {
	case ns >= 1e9:
		return sig3(ns/1e9) + " s"
	case ns >= 1e6:
		return sig3(ns/1e6) + " ms"
	case ns >= 1e3:
		return sig3(ns/1e3) + " µs"
	default:
		return sig3(ns) + " ns"
	}
}

// formatMiB formats a byte count in MiB.
func formatMiB(bytes float64) string { return sig3(bytes/(1<<20)) + " MiB" }

// formatCount formats a plain number.
func formatCount(v float64) string { return sig3(v) }
