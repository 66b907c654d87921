package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Absolute slack of the flatness checks, beside flatTolerance: what sampling moves without any
// leak (a watch event or a request in flight at the moment of the sample).
const (
	heapSlack      = 2 << 20 // bytes
	goroutineSlack = 20
)

// soakCheck is one verdict of the soak.
type soakCheck struct {
	name   string
	ok     bool
	detail string
}

// soakReport is the soak's table, checks and notes.
type soakReport struct {
	title   string
	command string
	rows    [][]string // start, middle, end, settled
	checks  []soakCheck
	failed  int
	notes   []string
}

// soakHeader names the columns of the soak's table.
var soakHeader = []string{"sample", "time", "live heap", "goroutines", "open watchers", "instances", "changes made", "sets delivered", "informer events"}

// buildSoakReport turns what the soak observed into its table and verdicts.
func buildSoakReport(f *flags, machine string, res soakResult) soakReport {
	s := res.s
	r := soakReport{
		title: fmt.Sprintf("kuberegistry-bench, soak: %d pods, %d registered in %d services; one registry, %d watchers; %s of churn at %g changes/s; %s",
			s.Pods, s.Registered, s.Services, f.soak.watchers, f.soak.duration, f.soak.rate, machine),
		command: f.soak.command,
	}
	row := func(name string, sample soakSample) []string {
		st := sample.stats
		return []string{name, sample.at.Round(time.Second).String(), formatMiB(float64(sample.heap)), fmt.Sprint(sample.goroutines),
			fmt.Sprint(st.Watchers), fmt.Sprint(st.Instances), fmt.Sprint(sample.changes), fmt.Sprint(sample.sets),
			fmt.Sprint(st.Adds + st.Updates + st.Deletes)}
	}
	n := len(res.samples)
	if n > 0 {
		r.rows = append(r.rows, row("start", res.samples[0]), row("middle", res.samples[n/2]), row("end of churn", res.samples[n-1]))
	}
	r.rows = append(r.rows, row("settled", res.settled))

	add := func(name string, ok bool, detail string) {
		r.checks = append(r.checks, soakCheck{name: name, ok: ok, detail: detail})
		if !ok {
			r.failed++
		}
	}
	add("Every watcher's last set equals GetService of its service, instance for instance", len(res.disagree) == 0,
		listed(res.disagree, fmt.Sprintf("all %d watchers agree", f.soak.watchers), "watcher(s) disagree"))
	converged := fmt.Sprintf("converged %s after the churn stopped", res.settleTook.Round(time.Millisecond))
	if !res.converged {
		converged = fmt.Sprintf("not converged %s after the churn stopped", f.soak.settle)
	}
	add("GetService serves exactly the fleet's ready pods, in every service", len(res.wrongFleet) == 0,
		listed(res.wrongFleet, fmt.Sprintf("all %d services; %s", s.Services, converged), "service(s) differ; "+converged))
	add("No watcher's Next failed before Close", len(res.endedEarly) == 0,
		listed(res.endedEarly, "none failed", "watcher(s) failed"))
	add("No duplicate set: no Next returned the set its previous Next returned", res.duplicates == 0,
		fmt.Sprintf("%d duplicate(s) in %d sets", res.duplicates, res.settled.sets))

	times, heaps, goroutines := make([]float64, n), make([]float64, n), make([]float64, n)
	wrongWatchers := 0
	for k, sample := range res.samples {
		times[k], heaps[k], goroutines[k] = sample.at.Seconds(), float64(sample.heap), float64(sample.goroutines)
		if sample.stats.Watchers != f.soak.watchers {
			wrongWatchers++
		}
	}
	heap := judgeFlat(times, heaps, heapSlack, formatMiB)
	add("Live heap flat", heap.ok, heap.detail)
	routines := judgeFlat(times, goroutines, goroutineSlack, formatCount)
	add("Goroutines flat", routines.ok, routines.detail)
	if res.settled.stats.Watchers != f.soak.watchers {
		wrongWatchers++
	}
	add("Open watchers flat: Stats().Watchers is the number opened at every sample", wrongWatchers == 0,
		fmt.Sprintf("%d opened; %d of %d samples differ", f.soak.watchers, wrongWatchers, n+1))

	made := res.flips + res.replaced
	r.notes = []string{
		fmt.Sprintf("**Fleet**: `workload` pods in a namespace of their own, created in %s (%d requests at a time, a create and a status write each). "+
			"**Registry**: `kuberegistry.NewForConfig` with `WithNamespace`, started once; watcher *k* watches service *k* mod %d and drains `Next` in its own goroutine.",
			res.created.Round(time.Second), bulkWorkers, s.Services),
		fmt.Sprintf("**Churn**: %d changes in %s (%.1f/s, %g/s asked), through the services in turn and each service's pods in turn: "+
			"%d readiness flips (one strategic merge patch of the status subresource, as a kubelet writes) and %d replacements "+
			"(the pod deleted at once, then a pod of a new name, IP and ID created in the same service, running and ready), one in %d drawn at random with a fixed seed.",
			made, res.churned.Round(time.Second), float64(made)/res.churned.Seconds(), f.soak.rate, res.flips, res.replaced, f.soak.replaceOneIn),
		fmt.Sprintf("**Samples**: every %s from the churn's start to its end (the table shows the start, the middle sample and the end), and once settled: "+
			"the live heap after two `runtime.GC`, `runtime.NumGoroutine`, and `Registry.Stats` (open watchers, instances served, informer adds+updates+deletes); "+
			"sets delivered counts every `Next` that returned, first sets included.", f.soak.sample),
		fmt.Sprintf("**Flat**: over the second half of the churn (middle sample to end), the end is at most %.0f%% above the middle, and the least-squares trend through "+
			"those samples grows by at most %.0f%% of the middle over that half; each plus a slack for sampling noise (heap %s, goroutines %d). Falling is flat.",
			100*flatTolerance, 100*flatTolerance, formatMiB(heapSlack), goroutineSlack),
		fmt.Sprintf("**Settled**: once the churn stopped, the checks were polled every 250 ms for up to %s, until every service served exactly the IPs of its ready pods "+
			"and every watcher's last set equalled `GetService` (compared by ID, name, version, metadata and endpoints, in any order); then again once the process was idle.",
			f.soak.settle),
	}
	return r
}

// listed is ok when items is empty, else how many items there are and the first three.
func listed(items []string, ok, failed string) string {
	if len(items) == 0 {
		return ok
	}
	first := items[:min(len(items), 3)]
	return fmt.Sprintf("%d %s, first: %s", len(items), failed, strings.Join(first, "; "))
}

// renderSoak writes the soak's report as Markdown: caption, command, table, checks, notes.
func renderSoak(w io.Writer, r soakReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n`%s`\n\n", r.title, r.command)
	b.WriteString("| " + strings.Join(soakHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(soakHeader)) + "\n")
	for _, row := range r.rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	fmt.Fprintf(&b, "\nChecks (%d of %d passed):\n\n", len(r.checks)-r.failed, len(r.checks))
	for _, c := range r.checks {
		verdict := "passed"
		if !c.ok {
			verdict = "**FAILED**"
		}
		fmt.Fprintf(&b, "- %s — %s (%s)\n", c.name, verdict, c.detail)
	}
	b.WriteString("\nNotes:\n\n")
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
