package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestXDSFlags(t *testing.T) {
	f, err := parseFlags([]string{"-xds-clients", "0,20,100,500", "-xds-svg", "/tmp/x.svg"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 20, 100, 500}; !slices.Equal(f.xds.clients, want) {
		t.Errorf("clients = %v, want %v (1 added)", f.xds.clients, want)
	}
	if f.xds.kind != clientADS || f.xds.directMax != -1 || f.xds.idle != 10*time.Second || f.xds.gap != 50*time.Millisecond || f.xds.svg != "/tmp/x.svg" || !f.xds.active() {
		t.Errorf("defaults: kind %q, direct max %d, idle %s, gap %s, svg %q", f.xds.kind, f.xds.directMax, f.xds.idle, f.xds.gap, f.xds.svg)
	}
	if want := "go run ./cmd/kuberegistry-bench -xds-clients 0,20,100,500 -xds-svg /tmp/x.svg"; f.xds.command != want {
		t.Errorf("command = %q, want %q", f.xds.command, want)
	}
	f, err = parseFlags([]string{"-xds-clients", "20, 100", "-xds-client", "discovery", "-xds-svg", "none", "-xds-direct-max", "20"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 20, 100}; !slices.Equal(f.xds.clients, want) || f.xds.kind != clientDiscovery || f.xds.svg != "" || f.xds.directMax != 20 {
		t.Errorf("clients %v, kind %q, svg %q, direct max %d", f.xds.clients, f.xds.kind, f.xds.svg, f.xds.directMax)
	}
	if f, err := parseFlags(nil); err != nil || f.xds.active() {
		t.Errorf("without -xds-clients the mode is on (%v) or an error: %v", f, err)
	}
	for _, bad := range [][]string{
		{"-xds-clients", "100,20"},
		{"-xds-clients", "20,20"},
		{"-xds-clients", "-1,20"},
		{"-xds-clients", "x"},
		{"-xds-clients", "20", "-xds-client", "grpc"},
		{"-xds-clients", "20", "-xds-direct-max", "-2"},
		{"-xds-clients", "20", "-xds-idle", "100ms"},
		{"-xds-clients", "20", "-xds-gap", "-1ms"},
		{"-xds-clients", "20", "-kubeconfig", "/tmp/kubeconfig"},
		{"-xds-clients", "20", "-scale", "2000,4000"},
		{"-xds-clients", "20", "-soak", "1m"},
		{"-xds-clients", "20", "-service-sizes", "1000"},
		{"-xds-clients", "20", "-pods", "100", "-registered", "10", "-services", "10", "-watchers", "10", "-few-watchers", "0"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", bad)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// comm with a space and a parenthesis; utime 1234 and stime 56 ticks.
	line := "4242 (kube apiserver)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 30 0 100 200 300"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "kube apiserver)" || st.ppid != 17 || st.cpu != 1290*clockTick {
		t.Errorf("got %+v", st)
	}
	for _, bad := range []string{"", "4242 kube-apiserver S 1", "4242 (kube-apiserver) S 1 2 3", "4242 (x) S a 1 1 0 -1 0 0 0 0 0 1 2"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted it", bad)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	if got, err := parseSchedstat("378532 113263616 2\n"); err != nil || got != 378532 {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "x 1 2"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("parseSchedstat(%q) accepted it", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tkuberegistry-be\nVmPeak:\t  999 kB\nVmRSS:\t   2048 kB\nThreads:\t9\n"
	if got, err := parseVmRSS(status); err != nil || got != 2048<<10 {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseVmRSS("Name:\tx\n"); err == nil {
		t.Error("no VmRSS accepted")
	}
}

// TestProcCPUOfSelf reads this process's own CPU time from /proc as the benchmark reads
// kube-apiserver's.
func TestProcCPUOfSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	used := spin(20 * time.Millisecond)
	after, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < used*3/4 {
		t.Errorf("%s of CPU (getrusage) read as %s", used, got)
	}
	if _, err := statCPU(pid); err != nil {
		t.Error(err)
	}
	if _, err := procRSS(pid); err != nil {
		t.Error(err)
	}
}

// spin uses at least d of CPU time, as getrusage counts it, and returns how much.
func spin(d time.Duration) time.Duration {
	start := cpuTime()
	for cpuTime()-start < d {
	}
	return cpuTime() - start
}

func TestAwaitCommand(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	line := encodeAwait(500, true, 10, sent)
	pod, ready, size, got, err := parseAwait(line)
	if err != nil || pod != 500 || !ready || size != 10 || !got.Equal(sent) {
		t.Errorf("parseAwait(%q) = %d, %v, %d, %v, %v", line, pod, ready, size, got, err)
	}
	for _, bad := range []string{"await 1 2 3 4", "await x 1 3 4", "await 1 1 3", "wait 1 1 3 4"} {
		if _, _, _, _, err := parseAwait(bad); err == nil {
			t.Errorf("parseAwait(%q) accepted it", bad)
		}
	}
	delays, err := parseSeen("seen 1500 -20 3000000")
	if err != nil || !slices.Equal(delays, []time.Duration{1500, -20, 3000000}) {
		t.Errorf("parseSeen = %v, %v", delays, err)
	}
	if delays, err := parseSeen("seen"); err != nil || len(delays) != 0 {
		t.Errorf("parseSeen(seen) = %v, %v", delays, err)
	}
	for _, bad := range []string{"", "ready 1", "seen 1 x"} {
		if _, err := parseSeen(bad); err == nil {
			t.Errorf("parseSeen(%q) accepted it", bad)
		}
	}
}

func TestTierUsage(t *testing.T) {
	u := tierUsage{user: 3 * time.Millisecond, system: time.Millisecond, reads: 10, writes: 20, readBytes: 3000, writeBytes: 7000, streams: 5, pushes: 40}
	got, err := decodeTierUsage(u.encode())
	if err != nil || got != u {
		t.Errorf("decode(encode(%+v)) = %+v, %v", u, got, err)
	}
	if _, err := decodeTierUsage("1 2 3"); err == nil {
		t.Error("a short usage was accepted")
	}
	later := tierUsage{user: 5 * time.Millisecond, system: 2 * time.Millisecond, reads: 15, writes: 30, readBytes: 4000, writeBytes: 9000, streams: 6, pushes: 50}
	want := tierUsage{user: 2 * time.Millisecond, system: time.Millisecond, reads: 5, writes: 10, readBytes: 1000, writeBytes: 2000, streams: 6, pushes: 10}
	if d := later.sub(u); d != want || d.cpu() != 3*time.Millisecond {
		t.Errorf("sub = %+v, want %+v", d, want)
	}
}

func TestClientSets(t *testing.T) {
	set := []*kuberegistry.ServiceInstance{
		{ID: "a", Endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		{ID: "b", Endpoints: []string{"http://10.0.0.2:8000"}},
		{ID: "c", Endpoints: []string{"grpc://[fd00::3]:9000"}},
		{ID: "d"},
	}
	if got := instanceIPs(set); len(got) != 4 || !got["10.0.0.1"] || !got["10.0.0.2"] || !got["fd00::3"] || !got[""] {
		t.Errorf("instanceIPs = %v", got)
	}
	lb := func(ip string) *endpointv3.LbEndpoint {
		return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip}}},
		}}}
	}
	md, err := structpb.NewStruct(map[string]any{"id": "a", "endpoints": []any{"grpc://10.9.9.9:9000"}})
	if err != nil {
		t.Fatal(err)
	}
	withMetadata := lb("10.0.0.2")
	withMetadata.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"kuberegistry.io/instance": md}}
	withMetadata.HealthStatus = corev3.HealthStatus_HEALTHY
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: "svc-000", Endpoints: []*endpointv3.LocalityLbEndpoints{
		{LbEndpoints: []*endpointv3.LbEndpoint{lb("10.0.0.1"), withMetadata}, LoadBalancingWeight: wrapperspb.UInt32(2)},
		{LbEndpoints: []*endpointv3.LbEndpoint{lb("10.0.0.3")}, Locality: &corev3.Locality{Zone: "eu-west-1a"}},
	}}
	encoded, err := proto.Marshal(cla)
	if err != nil {
		t.Fatal(err)
	}
	cluster, ips, err := assignmentIPs(encoded)
	if err != nil || cluster != "svc-000" || !maps.Equal(ips, map[string]bool{"10.0.0.1": true, "10.0.0.2": true, "10.0.0.3": true}) {
		t.Errorf("assignmentIPs = %q, %v, %v", cluster, ips, err)
	}
	if _, _, err := assignmentIPs(encoded[:len(encoded)-3]); err == nil {
		t.Error("a truncated assignment was read")
	}
	if cluster, ips, err := assignmentIPs(nil); err != nil || cluster != "" || len(ips) != 0 {
		t.Errorf("an empty assignment: %q, %v, %v", cluster, ips, err)
	}
}

func TestClientViewAwait(t *testing.T) {
	v := newClientView()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := time.Unix(100, 0)
	v.observe(first, map[string]bool{"10.0.0.1": true, "10.0.0.2": true})
	if at, err := v.await(ctx, "10.0.0.1", true, 2); err != nil || !at.Equal(first) {
		t.Errorf("await of the current set = %v, %v", at, err)
	}
	// The next change: 10.0.0.1 leaves. await waits for it.
	second := time.Unix(200, 0)
	done := make(chan time.Time)
	go func() {
		at, err := v.await(ctx, "10.0.0.1", false, 1)
		if err != nil {
			t.Error(err)
		}
		done <- at
	}()
	select {
	case <-done:
		t.Fatal("await returned before the change")
	case <-time.After(20 * time.Millisecond):
	}
	v.observe(second, map[string]bool{"10.0.0.2": true})
	select {
	case at := <-done:
		if !at.Equal(second) {
			t.Errorf("await = %v, want %v", at, second)
		}
	case <-ctx.Done():
		t.Fatal("await did not return after the change")
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if _, err := v.await(short, "10.0.0.9", true, 2); err == nil {
		t.Error("await of a set that never comes returned")
	}
}

// xdsTestResults is a run at 0, 1, 20 and 100 clients: the API server pays 4 ms per write and
// 45 µs per direct client, the tier 0.3 ms per update and 30 µs per client.
func xdsTestResults(directAt100 bool) xdsResults {
	var res xdsResults
	const updates = 100
	for _, n := range []int{0, 1, 20, 100} {
		p := xdsPoint{clients: n, idle: 0.01}
		wall := time.Second
		idle := time.Duration(0.01 * float64(wall))
		for setup := range 2 {
			if setup == setupDirect && n == 100 && !directAt100 {
				continue
			}
			for round := range 3 {
				perUpdate := 4*time.Millisecond + time.Duration(round)*10*time.Microsecond
				s := xdsSession{updates: updates, wall: wall, ready: time.Second, rss: uint64(n) << 20}
				if setup == setupDirect {
					perUpdate += time.Duration(n) * 45 * time.Microsecond
					s.clients = time.Duration(n) * 100 * time.Microsecond * updates
				} else {
					perUpdate += 45 * time.Microsecond
					tierCPU := 300*time.Microsecond + time.Duration(n)*30*time.Microsecond
					s.tier = tierUsage{user: tierCPU * updates * 2 / 3, system: tierCPU * updates / 3, reads: int64(2 * n * updates), writes: int64(2 * n * updates), writeBytes: int64(3000 * n * updates)}
					for range updates {
						s.tierUpdates = append(s.tierUpdates, tierCPU-time.Duration(round)*time.Microsecond)
					}
					s.clients = time.Duration(n) * 20 * time.Microsecond * updates
				}
				s.apiServer = perUpdate*updates + idle
				for range updates {
					s.apiUpdates = append(s.apiUpdates, perUpdate)
				}
				if round == 0 { // a garbage collection: the session's total moves, not the median update
					s.apiServer += 500 * time.Millisecond
					s.apiUpdates[7] += 500 * time.Millisecond
				}
				for k := range n {
					s.latencies = append(s.latencies, time.Duration(3+setup)*time.Millisecond+time.Duration(k)*time.Microsecond)
				}
				p.sessions[setup] = append(p.sessions[setup], s)
			}
		}
		res.points = append(res.points, p)
	}
	res.floor = floorResult{clients: 100, message: 3000, reply: 1500, rounds: 1000, write: 3 * time.Microsecond, writeRead: 8 * time.Microsecond}
	return res
}

func TestXDSTable(t *testing.T) {
	f, err := parseFlags([]string{"-xds-clients", "0,20,100", "-xds-svg", "none"})
	if err != nil {
		t.Fatal(err)
	}
	r := buildXDSReport(f, "test machine", xdsTestResults(true))
	var b bytes.Buffer
	if err := renderXDS(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"`go run ./cmd/kuberegistry-bench -xds-clients 0,20,100 -xds-svg none`",
		"| metric | N = 0 | N = 1 | N = 20 | N = 100 | target | verdict |",
		// Idle (1% of 1 s over 100 updates) subtracted: 4.01 ms, the median round, + 45 µs × N.
		"| API server CPU per update, direct: median update | 4.01 ms | 4.05 ms | 4.91 ms | 8.51 ms | — | — |",
		// A garbage collection in one session of three moves the sessions' spread, not their median.
		"| … whole sessions: median (least – most) | 4.02 ms (4.01 ms – 9 ms) | 4.07 ms (4.05 ms – 9.04 ms) | 4.92 ms (4.91 ms – 9.9 ms) | 8.52 ms (8.51 ms – 13.5 ms) | — | — |",
		"| Tier process CPU per update, median update | 299 µs | 329 µs | 899 µs | 3.3 ms | — | — |",
		"| API server CPU per update, tier: median update | 4.05 ms | 4.05 ms | 4.05 ms | 4.05 ms | — | — |",
		"| API server CPU per update, tier / a single direct Registry (direct, N = 1) | 1.00× | 1.00× | 1.00× | 1.00× | ≤ 1.20× | met |",
		"| API server CPU per update per direct client: (direct at N − at 0) / N | — | 45 µs | 45 µs | 45 µs | — | — |",
		"| Tier CPU per update per client, marginal: (tier CPU at N − at 0) / N | — | 30 µs | 30 µs | 30 µs |",
		"| Tier write system calls per update per client | — | 2 | 2 | 2 | — | — |",
		"| Change → client latency, median, tier − direct | — | +1 ms | +1 ms | +1 ms | ≤ 5 ms | met |",
		"Tier CPU per update per client: tier CPU / N — **missed**: N = 20: **missed** (45 µs against 4.5 µs); N = 100: **missed** (33 µs against 4.5 µs)",
		"Floor under the tier's cost per client, at N = 100: one write per client costs 3 µs and a write and a read 8 µs, against a target of 4.5 µs",
		"| Clients process resident memory per client, direct | — | 1 MiB | 1 MiB | 1 MiB | — | — |",
		"**Loopback floor**: a process that only writes 2.93 KiB to each of 100 loopback TCP connections",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NaN") {
		t.Errorf("the table shows NaN:\n%s", out)
	}

	// Direct not measured at 100 (-xds-direct-max 20): the tier there is held to 20's figure.
	f, err = parseFlags([]string{"-xds-clients", "0,20,100", "-xds-direct-max", "20", "-xds-svg", "none"})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := renderXDS(&b, buildXDSReport(f, "test machine", xdsTestResults(false))); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	for _, want := range []string{
		"| API server CPU per update, direct: median update | 4.01 ms | 4.05 ms | 4.91 ms | — | — | — |",
		"| … whole sessions: median (least – most) | 4.02 ms (4.01 ms – 9 ms) | 4.07 ms (4.05 ms – 9.04 ms) | 4.92 ms (4.91 ms – 9.9 ms) | — | — | — |",
		"N = 100: **missed** (33 µs against 4.5 µs)",
		"**Direct beyond 20 clients** was not measured",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

func TestXDSTargetsMet(t *testing.T) {
	// A tier at 2 µs per client, with the API server's cost flat, meets every target.
	res := xdsTestResults(true)
	for k := range res.points {
		p := &res.points[k]
		for j := range p.sessions[setupTier] {
			s := &p.sessions[setupTier][j]
			cpu := 300*time.Microsecond + time.Duration(p.clients)*2*time.Microsecond
			s.tier.user, s.tier.system = cpu*time.Duration(s.updates), 0
		}
	}
	f, err := parseFlags([]string{"-xds-clients", "0,20,100", "-xds-svg", "none"})
	if err != nil {
		t.Fatal(err)
	}
	r := buildXDSReport(f, "m", res)
	for _, row := range r.rows {
		if row.verdict != "" && row.verdict != "met" && !strings.HasPrefix(row.metric, "Tier CPU per update per client: tier CPU / N") {
			t.Errorf("%s: %s", row.metric, row.verdict)
		}
	}
	if row := r.rows[slices.IndexFunc(r.rows, func(r xdsRow) bool { return strings.HasPrefix(r.metric, "Tier CPU per update per client, marginal") })]; row.verdict != "met" {
		t.Errorf("marginal: %s", row.verdict)
	}
}

func TestMedianFloat(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := medianFloat(tc.in); got != tc.want {
			t.Errorf("medianFloat(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(medianFloat(nil)) || !math.IsNaN(medianFloat([]float64{1, math.NaN()})) {
		t.Error("medianFloat of nothing or of a NaN is not NaN")
	}
}

func TestNiceCeiling(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {3.2e6, 5e6}, {4e6, 5e6}, {5e6, 5e6}, {1.1e4, 2e4}, {7, 10}, {100, 100}} {
		if got := niceCeiling(tc.in); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("niceCeiling(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestXDSChart(t *testing.T) {
	f, err := parseFlags([]string{"-xds-clients", "0,20,100", "-xds-svg", "none"})
	if err != nil {
		t.Fatal(err)
	}
	d := xdsChart(f, "test machine", xdsTestResults(true))
	var b bytes.Buffer
	if err := renderXDSChart(&b, d); err != nil {
		t.Fatal(err)
	}
	var svg struct {
		XMLName xml.Name
		Groups  []struct {
			Polylines []struct {
				Points string `xml:"points,attr"`
			} `xml:"polyline"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal(b.Bytes(), &svg); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if svg.XMLName.Local != "svg" || len(svg.Groups) != 2 {
		t.Fatalf("root %q with %d panels", svg.XMLName.Local, len(svg.Groups))
	}
	// Panel 1: direct, tier and the target over the 4 numbers of clients; panel 2 from 2 clients.
	for k, want := range [][]int{{4, 4, 4}, {2, 2, 2, 2}} {
		var got []int
		for _, p := range svg.Groups[k].Polylines {
			got = append(got, len(strings.Fields(p.Points)))
		}
		if !slices.Equal(got, want) {
			t.Errorf("panel %d: points per line %v, want %v", k+1, got, want)
		}
	}
	if strings.Contains(b.String(), "NaN") {
		t.Error("the chart holds NaN")
	}
	if err := renderXDSChart(&b, xdsChartData{clients: []int{0}}); err == nil {
		t.Error("a chart of one point was rendered")
	}
}
