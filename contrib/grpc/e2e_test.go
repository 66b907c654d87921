package grpc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes/fake"
)

// The resolver with real gRPC servers and ClientConns, over a registry on the fake clientset;
// test/integration does the same against a real kube-apiserver.

// greeterPods serves n greeters on loopback and registers a ready pod for each; the pods of
// greeter-i are all at 127.0.0.1, told apart by their port.
func greeterPods(t *testing.T, client *fake.Clientset, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("greeter-%d", i)
		port := startGreeter(t, name)
		kuberegistrytest.ReadyPod(t, client, "shop", name, &kuberegistry.ServiceInstance{
			ID: name, Name: "greeter", Version: "v1", Endpoints: []string{"grpc://127.0.0.1:" + strconv.Itoa(port)},
		})
	}
}

func dial(t *testing.T, b *Builder, policy string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("kubernetes:///greeter", b.DialOption(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, policy)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// served calls SayHello n times and counts the answers by server.
func served(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		who, err := hello(ctx, conn)
		cancel()
		require.NoError(t, err)
		counts[who]++
	}
	return counts
}

// eventuallyServedBy waits until a round of calls is answered by exactly the given servers.
func eventuallyServedBy(t *testing.T, conn *grpc.ClientConn, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := served(t, conn, 30)
		if len(got) == len(want) && allIn(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("served by %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allIn(got map[string]int, want []string) bool {
	for _, w := range want {
		if got[w] == 0 {
			return false
		}
	}
	return true
}

func TestRoundRobinFollowsReadiness(t *testing.T) {
	client := fake.NewClientset()
	greeterPods(t, client, 3)
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "client-0")
	b, err := NewBuilder(reg)
	require.NoError(t, err)
	conn := dial(t, b, "round_robin")

	eventuallyServedBy(t, conn, "greeter-0", "greeter-1", "greeter-2")
	kuberegistrytest.SetReady(t, client, "shop", "greeter-1", false)
	eventuallyServedBy(t, conn, "greeter-0", "greeter-2")
	kuberegistrytest.Terminate(t, client, "shop", "greeter-0")
	eventuallyServedBy(t, conn, "greeter-2")
	kuberegistrytest.SetReady(t, client, "shop", "greeter-1", true)
	eventuallyServedBy(t, conn, "greeter-1", "greeter-2")
}

// With no ready instance, RPCs fail at once with Unavailable, whatever the policy, and succeed
// again when an instance comes back; a call that waits for ready waits for it.
func TestNoInstanceFailsFast(t *testing.T) {
	for _, policy := range []string{"round_robin", "pick_first"} {
		t.Run(policy, func(t *testing.T) {
			client := fake.NewClientset()
			greeterPods(t, client, 1)
			reg := kuberegistrytest.NewRegistry(t, client, "shop", "client-0")
			b, err := NewBuilder(reg)
			require.NoError(t, err)
			conn := dial(t, b, policy)
			eventuallyServedBy(t, conn, "greeter-0")

			kuberegistrytest.SetReady(t, client, "shop", "greeter-0", false)
			var err2 error
			require.Eventually(t, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				start := time.Now()
				_, err2 = hello(ctx, conn)
				if err2 == nil {
					return false // the server still runs: only discovery says it is gone
				}
				assert.Less(t, time.Since(start), time.Second, "the RPC waited instead of failing fast")
				return true
			}, 5*time.Second, 5*time.Millisecond)
			assert.Equal(t, codes.Unavailable, status.Code(err2), "%v", err2)
			t.Logf("%s with no instance: %v", policy, err2)

			waited := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := hello(ctx, conn, grpc.WaitForReady(true))
				waited <- err
			}()
			time.Sleep(50 * time.Millisecond)
			kuberegistrytest.SetReady(t, client, "shop", "greeter-0", true)
			require.NoError(t, <-waited, "a call that waits for ready is served once an instance is back")
			eventuallyServedBy(t, conn, "greeter-0")
		})
	}
}

// An unresolvable service fails fast too, from the first resolution on.
func TestUnknownServiceFailsFast(t *testing.T) {
	reg := kuberegistrytest.NewRegistry(t, fake.NewClientset(), "shop", "client-0")
	b, err := NewBuilder(reg)
	require.NoError(t, err)
	conn := dial(t, b, "pick_first")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = hello(ctx, conn)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Less(t, time.Since(start), 2*time.Second)
	// The error naming the service follows the empty update at once; a call made between the
	// two reads pick_first's own "produced zero addresses".
	assert.Eventually(t, func() bool {
		_, err := hello(ctx, conn)
		return err != nil && strings.Contains(err.Error(), `service "greeter" has no ready instance`)
	}, 5*time.Second, time.Millisecond)
}

// resolver.Register makes the scheme global; WithScheme avoids clashing with another resolver.
func TestGlobalRegistration(t *testing.T) {
	client := fake.NewClientset()
	greeterPods(t, client, 1)
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "client-0")
	b, err := NewBuilder(reg, WithScheme("kuberegistry-test"))
	require.NoError(t, err)
	resolver.Register(b)
	conn, err := grpc.NewClient("kuberegistry-test:///greeter", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	who, err := hello(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, "greeter-0", who)
}
