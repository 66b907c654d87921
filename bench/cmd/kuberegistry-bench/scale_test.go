package main

import (
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestScaleFlags(t *testing.T) {
	f, err := parseFlags([]string{"-scale", "10000, 100000"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.scale.sizes, []int{10000, 100000}) || f.runs != 3 || f.scale.watchers != 500 || f.scale.baselineMax != 10000 {
		t.Errorf("sizes %v, runs %d, watchers %d, baseline max %d; want [10000 100000], 3, 500, 10000",
			f.scale.sizes, f.runs, f.scale.watchers, f.scale.baselineMax)
	}
	if want := "go run ./cmd/kuberegistry-bench -scale \"10000, 100000\""; f.scale.command != want {
		t.Errorf("command = %q, want %q", f.scale.command, want)
	}
	if f, err := parseFlags([]string{"-scale", "2000,4000", "-runs", "5"}); err != nil || f.runs != 5 {
		t.Errorf("an explicit -runs 5 gave runs %v, %v", f, err)
	}
	for _, bad := range [][]string{
		{"-scale", "10000"},
		{"-scale", "100000,10000"},
		{"-scale", "10000,10000"},
		{"-scale", "10010,20000"},
		{"-scale", "10000,x"},
		{"-scale", "2000,4000", "-scale-watchers", "0"},
		{"-scale", "2000,4000", "-scale-baseline-max", "-1"},
		{"-scale", "2000,4000", "-service-sizes", "1000"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", bad)
		}
	}
}

func TestScaleTable(t *testing.T) {
	f, err := parseFlags([]string{"-scale", "10000,100000"})
	if err != nil {
		t.Fatal(err)
	}
	ms, us := time.Millisecond, time.Microsecond
	points := []scalePoint{
		{
			s: chartScenario(10000), watchers: 500, created: 35 * time.Second, naive: true,
			start: [3]time.Duration{0, 900 * ms, 850 * ms}, heap: 4500 << 10,
			lookup: callCost{ns: 40}, cpu: cpuResult{sequential: [3]time.Duration{13 * ms, 600 * us, 550 * us}},
		},
		{
			s: chartScenario(100000), watchers: 500, created: 350 * time.Second,
			start: [3]time.Duration{0, 10 * time.Second, 8 * time.Second}, heap: 46000 << 10,
			lookup: callCost{ns: 60}, cpu: cpuResult{sequential: [3]time.Duration{0, 650 * us, 560 * us}},
		},
	}
	r := buildScaleReport(f, "a machine", points)
	var b strings.Builder
	if err := renderScale(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	header := "| metric | 10,000 pods (5,000 registered, 500 services, 500 watchers) | 100,000 pods (50,000 registered, 5,000 services, 500 watchers) | 100,000 / 10,000 | target | verdict |"
	for _, want := range []string{
		"`go run ./cmd/kuberegistry-bench -scale 10000,100000`",
		header,
		"| Creating the fleet (a create and a status write per pod) | 35 s (286 pods/s) | 350 s (286 pods/s) | — | — | — |",
		"| Start → synced, ours / bare List | 1.06× | 1.25× | — | ≤ 1.10× at every size | **missed** |",
		"| Cache memory per registered pod, ours | 922 B | 942 B | 1.02× | ≤ 1.20× | met |",
		"| GetService latency, ours | 40 ns | 60 ns | 1.50× | ≤ 1.20× | **missed** |",
		"| CPU per pod update, ours, one at a time | 600 µs | 650 µs | 1.08× | ≤ 1.20× | met |",
		"| CPU per pod update, naive registry (baseline, one session) | 13 ms | skipped | — | — | — |",
		"- GetService latency at 100,000 pods within 1.20× of 10,000 pods — **missed** (1.50×: 60 ns against 40 ns)",
		"(1.06× at 10,000 pods, 1.25× at 100,000 pods)",
		"skipped beyond",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
	separators := strings.Count(header, "|")
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Count(line, "|") != separators {
			t.Errorf("row %q has %d separators, want %d", line, strings.Count(line, "|"), separators)
		}
	}
}

func TestJudgeAndGroup(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{judge(1.2, 1.2), "met"},
		{judge(1.21, 1.2), "**missed**"},
		{judge(maxOf([]float64{1, 0.5}), 1.1), "met"},
		{judge(maxOf([]float64{1, math.NaN()}), 1.1), "not measured"},
		{groupThousands(0), "0"},
		{groupThousands(999), "999"},
		{groupThousands(1000), "1,000"},
		{groupThousands(100000), "100,000"},
		{groupThousands(-1234567), "-1,234,567"},
		{formatBytes(900), "900 B"},
		{formatBytes(1536), "1.5 KiB"},
		{formatBytes(3 << 20), "3 MiB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestWorkloadAt100k checks that the workload's names, addresses and labels stay valid and
// distinct at the scale table's largest fleet (100,000 pods, 5,000 services) and for the soak's
// replacement pods beyond it.
func TestWorkloadAt100k(t *testing.T) {
	s := chartScenario(100000)
	names := make(map[string]bool, s.Pods)
	ips := make(map[string]bool, s.Pods)
	check := func(i int) {
		name, ip := workload.PodName(i), workload.IP(i)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || names[name] {
			t.Fatalf("pod %d: name %q invalid or repeated: %v", i, name, errs)
		}
		if parsed := net.ParseIP(ip); parsed == nil || parsed.To4() == nil || ips[ip] {
			t.Fatalf("pod %d: IP %q invalid or repeated", i, ip)
		}
		names[name], ips[ip] = true, true
		if i, ok := podIndex(name); !ok || workload.PodName(i) != name {
			t.Fatalf("podIndex(%q) = %d, %v", name, i, ok)
		}
	}
	// Every pod would take seconds under the race detector: the first thousand, every 37th, and
	// those around the boundaries of the formats (digits of the name, bytes of the IP).
	indexes := []int{s.Pods + 1, 1_000_000, lastFreshIndex - 1}
	for i := 0; i < s.Pods; i++ {
		if i < 1000 || i%37 == 0 {
			indexes = append(indexes, i)
		}
	}
	for _, edge := range []int{256, 65536, 99999, s.Registered, s.Pods - 1} {
		for i := max(edge-3, 1000); i <= edge+3 && i < s.Pods; i++ {
			if i%37 != 0 {
				indexes = append(indexes, i)
			}
		}
	}
	slices.Sort(indexes)
	for _, i := range slices.Compact(indexes) {
		check(i)
	}
	services := make(map[string]bool, s.Services)
	for svc := range s.Services {
		name := workload.Service(svc)
		if errs := validation.IsValidLabelValue(name); len(errs) > 0 || services[name] {
			t.Fatalf("service %d: %q invalid or repeated: %v", svc, name, errs)
		}
		services[name] = true
	}
	for _, i := range []int{0, s.Registered - 1, s.Registered, s.Pods - 1} {
		pod := s.Pod("ns", i)
		for k, v := range pod.Labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("pod %d: label %s=%q: %v", i, k, v, errs)
			}
		}
		if want := i < s.Registered; (pod.Labels[kuberegistry.LabelsKeyServiceName] != "") != want {
			t.Errorf("pod %d: registered = %v, want %v", i, !want, want)
		}
	}
	if got := s.Pod("ns", s.Registered-1).Labels[kuberegistry.LabelsKeyServiceName]; got != "svc-4999" {
		t.Errorf("the last registered pod is in %q, want svc-4999", got)
	}
}
