//go:build unix

package xds

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The cost of the tier per update of a service, per client watching it: what the design's
// target (at most 4.5 µs of the tier's CPU per client per update) is checked against.
//
// The clients run in a child process (this test binary, running TestADSClientsForBenchmark), so
// that the CPU time this process spends — read from getrusage, user and system — is the tier's
// alone: following the catalog, translating and encoding the assignment once, a response to each
// client, its write to the socket, and reading and handling each client's ACK. Each client is a
// state-of-the-world ADS stream on a connection of its own that subscribes to the four resources
// of greeter as grpc-go does, and ACKs every response.
//
// Reported: ns/op is the wall time of one update until every client has ACKed it;
// cpu-ns/update/client is the tier's CPU time per update divided by the number of clients.
func BenchmarkServerUpdate(b *testing.B) {
	for _, clients := range []int{1, 20, 100} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchmarkServerUpdate(b, clients)
		})
	}
}

func benchmarkServerUpdate(b *testing.B, clients int) {
	c := newFakeCatalog()
	sets := [2][]*kuberegistry.ServiceInstance{}
	for i := range sets {
		for j := range 3 {
			inst := instance("greeter", fmt.Sprintf("greeter-%d", j), fmt.Sprintf("10.0.0.%d", j+1), "shop")
			inst.Version = fmt.Sprintf("v%d", i) // the two sets differ by the instances' version
			sets[i] = append(sets[i], inst)
		}
	}
	c.set("greeter", sets[0]...)
	s, err := NewServer([]kuberegistry.Catalog{c})
	if err != nil {
		b.Fatal(err)
	}
	addr := serveRunning(b, s)
	startBenchClients(b, addr, clients)
	// Each client sends four subscriptions and ACKs four responses before the first update.
	waitFor(b, "the clients' streams", func() bool { return s.Stats().Requests >= uint64(8*clients) })

	b.ReportAllocs()
	b.ResetTimer()
	user, sys := processCPU()
	reads, writes := processSyscalls()
	start := time.Now()
	for i := range b.N {
		requests := s.Stats().Requests
		c.set("greeter", sets[(i+1)%2]...)
		// Every client ACKs the new assignment: one request each.
		for s.Stats().Requests < requests+uint64(clients) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	wall := time.Since(start)
	user2, sys2 := processCPU()
	reads2, writes2 := processSyscalls()
	b.StopTimer()
	perClient := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / float64(clients) }
	b.ReportMetric(perClient(user2-user+sys2-sys), "cpu-ns/update/client")
	b.ReportMetric(perClient(user2-user), "user-ns/update/client")
	b.ReportMetric(perClient(sys2-sys), "sys-ns/update/client")
	b.ReportMetric(perClient(wall), "wall-ns/update/client")
	if writes2 > 0 {
		b.ReportMetric(float64(writes2-writes)/float64(b.N)/float64(clients), "writes/update/client")
		b.ReportMetric(float64(reads2-reads)/float64(b.N)/float64(clients), "reads/update/client")
	}
	if st := s.Stats(); st.NACKs != 0 {
		b.Errorf("the clients rejected %d responses", st.NACKs)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// processSyscalls returns the number of read and write system calls this process has made, from
// /proc/self/io (zero where there is none).
func processSyscalls() (reads, writes int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// serveRunning serves and runs s on a loopback port until the benchmark ends; it returns the
// address once s is synced.
func serveRunning(b *testing.B, s *Server) string {
	b.Helper()
	g := grpc.NewServer(GRPCServerOptions()...)
	s.Register(g)
	ln := listen(b, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = g.Serve(ln)
	}()
	go func() {
		defer wg.Done()
		_ = s.Run(ctx)
	}()
	b.Cleanup(func() {
		g.Stop()
		cancel()
		wg.Wait()
	})
	waitFor(b, "the tier to sync", s.Synced)
	return ln.Addr().String()
}

// Environment of the child process that runs the benchmark's clients.
const (
	benchAddrEnv    = "KUBEREGISTRY_XDS_BENCH_ADDR"
	benchClientsEnv = "KUBEREGISTRY_XDS_BENCH_CLIENTS"
)

// startBenchClients runs the clients in a child process, and returns once each has received the
// current assignment. The child ends when its standard input closes, at the end of the benchmark.
func startBenchClients(b *testing.B, addr string, clients int) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestADSClientsForBenchmark$", "-test.v")
	cmd.Env = append(os.Environ(), benchAddrEnv+"="+addr, benchClientsEnv+"="+strconv.Itoa(clients))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	output := make(chan string, 1)
	go func() {
		defer close(output)
		var all []byte
		lines := bufio.NewScanner(stdout)
		ready := false
		for lines.Scan() {
			all = append(append(all, lines.Bytes()...), '\n')
			if !ready && lines.Text() == "ready" {
				ready = true
				output <- ""
			}
		}
		if !ready {
			output <- string(all)
		}
	}()
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("the clients' process: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			b.Errorf("the clients' process did not end; killed")
		}
	})
	select {
	case out := <-output:
		if out != "" {
			b.Fatalf("the clients' process ended before they were ready:\n%s", out)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("the clients were not ready within 30s")
	}
}

// TestADSClientsForBenchmark is the child process of BenchmarkServerUpdate: it runs its clients
// until its standard input closes. It is skipped otherwise.
func TestADSClientsForBenchmark(t *testing.T) {
	addr := os.Getenv(benchAddrEnv)
	if addr == "" {
		t.Skip("the clients of BenchmarkServerUpdate, run by it")
	}
	clients, err := strconv.Atoi(os.Getenv(benchClientsEnv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	ready := make(chan struct{}, clients)
	errs := make(chan error, clients)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runBenchClient(ctx, conn, fmt.Sprintf("client-%d", i), ready); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	for range clients {
		select {
		case <-ready:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// runBenchClient subscribes to the four resources of greeter, as grpc-go does for
// xds:///greeter, and ACKs every response; it signals ready at its first assignment.
func runBenchClient(ctx context.Context, conn *grpc.ClientConn, node string, ready chan<- struct{}) error {
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	names := []string{"greeter"}
	for i, typeURL := range []string{listenerType, routeType, clusterType, endpointType} {
		req := &discoverygrpc.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := stream.Send(req); err != nil {
			return err
		}
	}
	signaled := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		err = stream.Send(&discoverygrpc.DiscoveryRequest{
			TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names,
		})
		if err != nil {
			return err
		}
		if !signaled && resp.GetTypeUrl() == endpointType {
			signaled = true
			ready <- struct{}{}
		}
	}
}
