package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
)

func TestSoakFlags(t *testing.T) {
	f, err := parseFlags([]string{"-soak", "30m"})
	if err != nil {
		t.Fatal(err)
	}
	if f.soak.rate != 50 || f.soak.watchers != 500 || f.soak.sample != time.Minute || f.scenario() != workload.Default {
		t.Errorf("rate %g, watchers %d, sample %s, fleet %+v; want 50, 500, 1m, the default", f.soak.rate, f.soak.watchers, f.soak.sample, f.scenario())
	}
	if f, err := parseFlags([]string{"-soak", "2m", "-soak-rate", "20", "-pods", "2000", "-registered", "1000", "-services", "100"}); err != nil || f.soak.rate != 20 {
		t.Errorf("a small soak: %v, %v", f, err)
	}
	for _, bad := range [][]string{
		{"-soak", "1m"},                         // no middle sample
		{"-soak", "2h"},                         // -timeout 1h
		{"-soak", "-5m"},                        // negative
		{"-soak", "30m", "-soak-rate", "0"},     // no churn
		{"-soak", "30m", "-soak-watchers", "0"}, // no watcher
		{"-soak", "30m", "-soak-replace", "0"},  // every change a replacement is 1
		{"-soak", "30m", "-soak-settle", "0s"},  // no time to converge
		{"-soak", "30m", "-scale", "2000,4000"}, // two modes
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", bad)
		}
	}
	if _, err := parseFlags([]string{"-soak", "2m", "-pods", "40", "-registered", "20", "-services", "2"}); err != nil {
		t.Errorf("a soak of 2 services: %v", err)
	}
	if _, err := parseFlags([]string{"-soak", "2h", "-timeout", "3h"}); err != nil {
		t.Errorf("-soak 2h with -timeout 3h: %v", err)
	}
}

// instance is an instance of service svc at ip, as kuberegistry discovers a workload pod.
func instance(svc, ip string) *kuberegistry.ServiceInstance {
	return &kuberegistry.ServiceInstance{
		ID: "id-" + ip, Name: svc, Version: "v1.42.0",
		Metadata:  map[string]string{"zone": "eu-west-1a", "team": "checkout"},
		Endpoints: []string{"grpc://" + ip + ":9000", "http://" + ip + ":8000"},
	}
}

func TestSameSet(t *testing.T) {
	a, b := instance("svc-000", "10.100.0.1"), instance("svc-000", "10.100.0.2")
	changed := func(change func(in *kuberegistry.ServiceInstance)) *kuberegistry.ServiceInstance {
		in := a.Clone()
		change(in)
		return in
	}
	set := []*kuberegistry.ServiceInstance{a, b}
	tests := []struct {
		name string
		x, y []*kuberegistry.ServiceInstance
		same bool
	}{
		{"the same snapshot", set, set, true},
		{"copies in another order", []*kuberegistry.ServiceInstance{a.Clone(), b.Clone()}, []*kuberegistry.ServiceInstance{b, a}, true},
		{"both empty", nil, []*kuberegistry.ServiceInstance{}, true},
		{"one more", set, set[:1], false},
		{"another pod", set, []*kuberegistry.ServiceInstance{a, instance("svc-000", "10.100.0.3")}, false},
		{"a version", []*kuberegistry.ServiceInstance{a}, []*kuberegistry.ServiceInstance{changed(func(in *kuberegistry.ServiceInstance) { in.Version = "v2" })}, false},
		{"metadata", []*kuberegistry.ServiceInstance{a}, []*kuberegistry.ServiceInstance{changed(func(in *kuberegistry.ServiceInstance) { in.Metadata["zone"] = "b" })}, false},
		{"a metadata key", []*kuberegistry.ServiceInstance{a}, []*kuberegistry.ServiceInstance{changed(func(in *kuberegistry.ServiceInstance) { in.Metadata["x"] = "" })}, false},
		{"an ID", []*kuberegistry.ServiceInstance{a}, []*kuberegistry.ServiceInstance{changed(func(in *kuberegistry.ServiceInstance) { in.ID = "other" })}, false},
		{"endpoints", []*kuberegistry.ServiceInstance{a}, []*kuberegistry.ServiceInstance{changed(func(in *kuberegistry.ServiceInstance) { in.Endpoints = in.Endpoints[:1] })}, false},
		{"fields that run together", []*kuberegistry.ServiceInstance{{ID: "a b", Name: "c"}}, []*kuberegistry.ServiceInstance{{ID: "a", Name: "b c"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameSet(tt.x, tt.y); got != tt.same {
				t.Errorf("sameSet = %v, want %v", got, tt.same)
			}
			if got := sameSet(tt.y, tt.x); got != tt.same {
				t.Errorf("sameSet reversed = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestSetHosts(t *testing.T) {
	set := []*kuberegistry.ServiceInstance{instance("s", "10.100.0.9"), instance("s", "10.100.0.10"), {ID: "bare"}}
	if got, want := setHosts(set), []string{"10.100.0.10", "10.100.0.9", "?"}; !slices.Equal(got, want) {
		t.Errorf("setHosts = %v, want %v", got, want)
	}
}

// scriptedWatcher returns its sets one by one from Next, then fails.
type scriptedWatcher struct {
	sets [][]*kuberegistry.ServiceInstance
	err  error
}

func (w *scriptedWatcher) Next() ([]*kuberegistry.ServiceInstance, error) {
	if len(w.sets) == 0 {
		return nil, w.err
	}
	set := w.sets[0]
	w.sets = w.sets[1:]
	return set, nil
}

func (w *scriptedWatcher) Stop() error { return nil }

func TestDrainCountsDuplicates(t *testing.T) {
	a, b := instance("svc-000", "10.100.0.1"), instance("svc-000", "10.100.0.2")
	sets := [][]*kuberegistry.ServiceInstance{
		{a, b},
		{b.Clone(), a.Clone()}, // the same set again: a duplicate
		{a},
		{a}, // again
		nil, // none left
		{},  // still none: a duplicate
		{b},
	}
	var closing atomic.Bool
	sw := &soakWatcher{}
	sw.drain(&scriptedWatcher{sets: sets, err: context.Canceled}, &closing)
	if got := sw.sets.Load(); got != int64(len(sets)) {
		t.Errorf("%d sets counted, want %d", got, len(sets))
	}
	if got := sw.duplicates.Load(); got != 3 {
		t.Errorf("%d duplicates, want 3", got)
	}
	last, err := sw.lastSet()
	if !sameSet(last, []*kuberegistry.ServiceInstance{b}) || !errors.Is(err, context.Canceled) {
		t.Errorf("last set %v, error %v; want [b] and the Next error, the registry not closing", setHosts(last), err)
	}

	closing.Store(true)
	sw = &soakWatcher{}
	sw.drain(&scriptedWatcher{err: context.Canceled}, &closing)
	if _, err := sw.lastSet(); err != nil {
		t.Errorf("a Next that fails at Close was recorded: %v", err)
	}
}

func TestJudgeFlat(t *testing.T) {
	minutes := func(n int) []float64 {
		times := make([]float64, n)
		for k := range times {
			times[k] = float64(60 * k)
		}
		return times
	}
	tests := []struct {
		name   string
		values []float64
		ok     bool
	}{
		{"constant", []float64{100, 100, 100, 100, 100}, true},
		{"warming up, then flat", []float64{50, 90, 100, 101, 99, 100, 102}, true},
		{"falling", []float64{100, 100, 100, 80, 60}, true},
		{"noise within the slack", []float64{10, 10, 10, 11, 10}, true},
		{"end above the middle", []float64{100, 100, 100, 100, 115}, false},
		{"a steady leak", []float64{100, 103, 106, 109, 112, 115, 118, 121, 124, 127, 130}, false},
		{"a trend the end hides", []float64{100, 100, 100, 100, 112, 124, 110}, false},
		{"two samples", []float64{100, 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeFlat(minutes(len(tt.values)), tt.values, 1, formatCount)
			if got.ok != tt.ok {
				t.Errorf("judgeFlat(%v) = %v (%s), want %v", tt.values, got.ok, got.detail, tt.ok)
			}
		})
	}
	got := judgeFlat(minutes(3), []float64{100, 100, 110}, 0, formatCount)
	if want := "middle 100, end 110 (+10.0%); trend over the second half +10 (+10.0%); allowed +10"; got.detail != want || !got.ok {
		t.Errorf("detail %q, ok %v; want %q, true", got.detail, got.ok, want)
	}
}

func TestSoakReport(t *testing.T) {
	f, err := parseFlags([]string{"-soak", "2m", "-soak-watchers", "3", "-pods", "2000", "-registered", "1000", "-services", "100"})
	if err != nil {
		t.Fatal(err)
	}
	sample := func(minute int, heap uint64, goroutines, watchers int) soakSample {
		return soakSample{at: time.Duration(minute) * time.Minute, heap: heap, goroutines: goroutines,
			stats: kuberegistry.Stats{Watchers: watchers, Instances: 20, Updates: uint64(100 * minute)}, changes: int64(60 * minute), sets: int64(3 + 50*minute)}
	}
	res := soakResult{
		s:       f.scenario(),
		created: 2 * time.Second,
		samples: []soakSample{sample(0, 20<<20, 100, 3), sample(1, 30<<20, 110, 3), sample(2, 40<<20, 110, 2)},
		settled: sample(2, 30<<20, 95, 3),
		churned: 2 * time.Minute, flips: 100, replaced: 20, converged: true, settleTook: 300 * time.Millisecond,
		duplicates: 1,
		disagree:   []string{"watcher 1 of svc-001: last set [a], GetService [b]"},
	}
	r := buildSoakReport(f, "a machine", res)
	var b strings.Builder
	if err := renderSoak(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"`go run ./cmd/kuberegistry-bench -pods 2000 -registered 1000 -services 100 -soak 2m0s -soak-watchers 3`",
		"| " + strings.Join(soakHeader, " | ") + " |",
		"| start | 0s | 20 MiB | 100 | 3 | 20 | 0 | 3 | 0 |",
		"| middle | 1m0s | 30 MiB | 110 | 3 | 20 | 60 | 53 | 100 |",
		"| end of churn | 2m0s | 40 MiB | 110 | 2 | 20 | 120 | 103 | 200 |",
		"| settled | 2m0s | 30 MiB | 95 | 3 |",
		"Checks (3 of 7 passed):",
		"- Every watcher's last set equals GetService of its service, instance for instance — **FAILED** (1 watcher(s) disagree, first: watcher 1 of svc-001",
		"- GetService serves exactly the fleet's ready pods, in every service — passed (all 100 services; converged 300ms after the churn stopped)",
		"- No duplicate set: no Next returned the set its previous Next returned — **FAILED** (1 duplicate(s) in 103 sets)",
		"- Live heap flat — **FAILED**",
		"- Goroutines flat — passed",
		"- Open watchers flat: Stats().Watchers is the number opened at every sample — **FAILED** (3 opened; 1 of 4 samples differ)",
		"120 changes in 2m0s (1.0/s, 50/s asked)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	if r.failed != 4 {
		t.Errorf("%d checks failed, want 4", r.failed)
	}
}

// TestChurnKeepsTrackOfTheFleet churns a fleet on the fake clientset and checks that what the
// churn believes the fleet is — which the soak compares the registry with — is what the API holds.
func TestChurnKeepsTrackOfTheFleet(t *testing.T) {
	s := workload.Scenario{Pods: 12, Registered: 8, Services: 2}
	// A bare object tracker: fake.NewClientset's managed fields cost seconds under -race.
	client := &fake.Clientset{}
	tracker := clienttesting.NewObjectTracker(scheme.Scheme, scheme.Codecs.UniversalDecoder())
	client.AddReactor("*", "*", clienttesting.ObjectReaction(tracker))
	ctx := t.Context()
	for i := range s.Pods {
		if err := createPod(ctx, client, s.Pod("ns", i), i); err != nil {
			t.Fatal(err)
		}
	}
	ch := newChurn(client, "ns", s, 3)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- ch.run(ctx, stop, 2000) }()
	deadline := time.After(10 * time.Second)
	for ch.done() < 24 {
		select {
		case err := <-done:
			t.Fatalf("the churn ended early: %v", err)
		case <-deadline:
			t.Fatalf("only %d changes in 10s", ch.done())
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ch.replacements.Load() == 0 || ch.flips.Load() == 0 {
		t.Fatalf("%d flips, %d replacements; want both", ch.flips.Load(), ch.replacements.Load())
	}

	pods, err := client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{LabelSelector: kuberegistry.LabelsKeyServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != s.Registered {
		t.Errorf("%d registered pods, want %d: a replacement lost or doubled a pod", len(pods.Items), s.Registered)
	}
	actual := make([][]string, s.Services)
	for _, pod := range pods.Items {
		svc := slices.Index(serviceNames(s.Services), pod.Labels[kuberegistry.LabelsKeyServiceName])
		if svc < 0 {
			t.Fatalf("pod %s is in service %q", pod.Name, pod.Labels[kuberegistry.LabelsKeyServiceName])
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				actual[svc] = append(actual[svc], pod.Status.PodIP)
			}
		}
	}
	expected := ch.expected()
	for svc := range actual {
		slices.Sort(actual[svc])
		if !slices.Equal(actual[svc], expected[svc]) {
			t.Errorf("service %d: ready pods %v, the churn expects %v", svc, actual[svc], expected[svc])
		}
	}
}
