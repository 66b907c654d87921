package xds

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	grpcxds "google.golang.org/grpc/xds"
	"k8s.io/client-go/kubernetes/fake"
)

// grpc-go's own xDS resolver and balancers, with no code of ours in the client, reach the
// greeters through the tier: the Server over a Registry on the fake clientset.

// greeterPods serves the named greeters on loopback and registers a ready pod for each; the pods
// are all at 127.0.0.1, told apart by their port.
func greeterPods(t *testing.T, client *fake.Clientset, names ...string) {
	t.Helper()
	for _, name := range names {
		port := startGreeter(t, name)
		kuberegistrytest.ReadyPod(t, client, "shop", name, &kuberegistry.ServiceInstance{
			ID: name, Name: "greeter", Version: "v1", Endpoints: []string{"grpc://127.0.0.1:" + strconv.Itoa(port)},
		})
	}
}

// dialXDS dials target with grpc-go's xDS resolver, bootstrapped by Bootstrap to the tier at addr.
func dialXDS(t *testing.T, addr, target string) *grpc.ClientConn {
	t.Helper()
	bootstrap, err := Bootstrap(BootstrapConfig{ServerURIs: []string{addr}, NodeID: "greeter-client", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatalf("grpc-go rejects the bootstrap: %v\n%s", err, bootstrap)
	}
	conn, err := grpc.NewClient(target, grpc.WithResolvers(resolver), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// servedBy calls SayHello n times and counts the answers by server. The calls wait for the
// channel to be ready: the first ones are made while grpc-go still resolves the target.
func servedBy(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		who, err := hello(ctx, conn, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatalf("SayHello: %v", err)
		}
		counts[who]++
	}
	return counts
}

// eventuallyServedBy waits until a round of calls is answered by exactly the given servers, each
// as often as round robin gives it.
func eventuallyServedBy(t *testing.T, conn *grpc.ClientConn, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := servedBy(t, conn, 10*len(want))
		if slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want))) && evenly(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("served by %v, want round robin over %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// evenly reports whether every server answered the same number of calls, give or take one.
func evenly(counts map[string]int) bool {
	lo, hi := -1, 0
	for _, n := range counts {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi-lo <= 1
}

func TestGRPCClientsReachTheGreetersThroughTheTier(t *testing.T) {
	for _, target := range []string{"xds:///greeter", "xds:///greeter.shop"} {
		t.Run(target, func(t *testing.T) {
			client := fake.NewClientset()
			greeterPods(t, client, "greeter-0", "greeter-1", "greeter-2")
			reg := kuberegistrytest.NewRegistry(t, client, "shop", "tier")
			tr := startTier(t, "127.0.0.1:0", reg)
			conn := dialXDS(t, tr.addr, target)

			eventuallyServedBy(t, conn, "greeter-0", "greeter-1", "greeter-2")
			kuberegistrytest.SetReady(t, client, "shop", "greeter-1", false)
			eventuallyServedBy(t, conn, "greeter-0", "greeter-2")
			greeterPods(t, client, "greeter-3")
			eventuallyServedBy(t, conn, "greeter-0", "greeter-2", "greeter-3")

			if st := tr.server.Stats(); st.NACKs != 0 || st.Streams == 0 {
				t.Errorf("stats %+v: want an open stream and no NACK", st)
			}
		})
	}
}

// A service that loses its last instance keeps its resources, with an empty assignment: calls
// fail fast with UNAVAILABLE, and succeed again when an instance comes back, on the same channel.
func TestGRPCClientsFailFastWithoutInstances(t *testing.T) {
	client := fake.NewClientset()
	greeterPods(t, client, "greeter-0")
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "tier")
	tr := startTier(t, "127.0.0.1:0", reg)
	conn := dialXDS(t, tr.addr, "xds:///greeter")
	eventuallyServedBy(t, conn, "greeter-0")

	kuberegistrytest.SetReady(t, client, "shop", "greeter-0", false)
	var last error
	waitFor(t, "calls to fail", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, last = hello(ctx, conn)
		if last != nil && time.Since(start) > 2*time.Second {
			t.Errorf("the call waited %v instead of failing fast", time.Since(start))
		}
		return last != nil
	})
	t.Logf("with no instance: %v", last)
	if status.Code(last) != codes.Unavailable {
		t.Errorf("with no instance, calls fail with %v, want UNAVAILABLE", last)
	}
	kuberegistrytest.SetReady(t, client, "shop", "greeter-0", true)
	eventuallyServedBy(t, conn, "greeter-0")
}

// A name the tier has never served fails fast too (the tier serves it, empty, as soon as a client
// asks), and the same channel reaches the service once it is deployed.
func TestGRPCClientsFailFastForAnUnknownService(t *testing.T) {
	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "tier")
	tr := startTier(t, "127.0.0.1:0", reg)
	conn := dialXDS(t, tr.addr, "xds:///greeter")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := hello(ctx, conn)
	t.Logf("an unknown service: %v", err)
	if status.Code(err) != codes.Unavailable || time.Since(start) > 2*time.Second {
		t.Errorf("after %v: %v; want UNAVAILABLE at once", time.Since(start), err)
	}
	greeterPods(t, client, "greeter-0")
	eventuallyServedBy(t, conn, "greeter-0")
	if st := tr.server.Stats(); st.Services != 1 || st.Resources != 2 {
		t.Errorf("stats %+v: want greeter and greeter.shop, one service", st)
	}
}
