package integration

// Real servers for the end-to-end tests of the gRPC and go-kratos adapters: a greeter service
// written by hand (no generated code), served on loopback addresses that stand in for pod IPs.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nextLoopback hands out loopback addresses. Linux routes all of 127.0.0.0/8 to the loopback
// interface, so each server gets an IP of its own, as each pod does.
var nextLoopback atomic.Uint32

// loopbackIP returns 127.0.0.10 to 127.0.0.249 in turn; ports are chosen by the kernel, so an
// address used again later by another test does not clash.
func loopbackIP() string {
	n := nextLoopback.Add(1) - 1
	return fmt.Sprintf("127.0.0.%d", 10+n%240)
}

// sayHelloMethod is the greeter's only method: it answers with the name of the server.
const sayHelloMethod = "/kuberegistry.e2e.Greeter/SayHello"

var greeterServiceDesc = grpc.ServiceDesc{
	ServiceName: "kuberegistry.e2e.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "SayHello",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			g := srv.(*greeter)
			handle := func(ctx context.Context, _ any) (any, error) { return g.sayHello(ctx) }
			if intercept == nil {
				return handle(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: sayHelloMethod}, handle)
		},
	}},
}

// greeter is the service's implementation; it counts what it serves.
type greeter struct {
	name    string
	latency time.Duration // how long each call takes, so that calls are in flight at any time
	served  atomic.Int64
	last    atomic.Int64 // when it last served, in Unix nanoseconds
}

func (g *greeter) sayHello(ctx context.Context) (*wrapperspb.StringValue, error) {
	g.served.Add(1)
	g.last.Store(time.Now().UnixNano())
	if g.latency > 0 {
		t := time.NewTimer(g.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return wrapperspb.String(g.name), nil
}

// lastServed returns when the greeter last served a call; zero if never.
func (g *greeter) lastServed() time.Time {
	if n := g.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// greeterServer is a plain gRPC server of the greeter on ip, standing for the process of a pod.
type greeterServer struct {
	*greeter
	ip   string
	port int
	srv  *grpc.Server
	done chan struct{} // closed when Serve returns

	stopOnce sync.Once
}

// startGreeterServer serves the greeter on ip:<a free port>; the server is stopped with the test.
func startGreeterServer(t *testing.T, name, ip string, latency time.Duration) *greeterServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listening on %s: %v", ip, err)
	}
	g := &greeterServer{
		greeter: &greeter{name: name, latency: latency},
		ip:      ip,
		port:    ln.Addr().(*net.TCPAddr).Port,
		srv:     grpc.NewServer(),
		done:    make(chan struct{}),
	}
	g.srv.RegisterService(&greeterServiceDesc, g.greeter)
	go func() {
		defer close(g.done)
		_ = g.srv.Serve(ln)
	}()
	t.Cleanup(g.kill)
	return g
}

// kill stops the server at once, as the end of a pod's grace period does (the kubelet's SIGKILL):
// the listener and every connection close, and calls in flight fail. It is idempotent.
func (g *greeterServer) kill() {
	g.stopOnce.Do(g.srv.Stop)
	<-g.done
}

// greeterPodOptions describe the pod of a greeterServer.
type greeterPodOptions struct {
	service   string
	finalizer string // kept on the pod so that a delete leaves it terminating; "" for none
}

// createGreeterPod creates a pod registered by hand for the server — labels, and the protocols
// annotation naming the server's port grpc — and makes it Running and Ready at the server's IP.
// Call it once the server listens, as the kubelet reports Ready once a readiness probe passes.
func createGreeterPod(t *testing.T, ns string, g *greeterServer, o greeterPodOptions) {
	t.Helper()
	labels := map[string]string{
		kuberegistry.LabelsKeyServiceName:    o.service,
		kuberegistry.LabelsKeyServiceID:      g.name,
		kuberegistry.LabelsKeyServiceVersion: "v1",
	}
	annotations := map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"` + strconv.Itoa(g.port) + `":"grpc"}`}
	pod := createPod(t, ns, g.name, labels, annotations)
	if o.finalizer != "" {
		pods := adminClient(t).CoreV1().Pods(ns)
		pod.Finalizers = []string{o.finalizer}
		if _, err := pods.Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("adding a finalizer to pod %s/%s: %v", ns, g.name, err)
		}
		t.Cleanup(func() { removeFinalizers(t, adminClient(t), ns, g.name) })
	}
	setPodStatus(t, ns, g.name, corev1.PodRunning, true, g.ip)
}

// verifyClientsLeftNothing checks that no goroutine started after the baseline is left, but those
// of running registries' informers: a reflector re-establishes its watch whenever the API server
// ends one, with a new goroutine or two each time. The registries must stay open while this
// checks the clients: closing them would end the clients' watch loops too, and hide a client that
// was never closed.
func verifyClientsLeftNothing(t *testing.T, before leakBaseline) {
	t.Helper()
	opts := append(slices.Clone(before.opts),
		goleak.IgnoreAnyFunction("k8s.io/client-go/tools/cache.(*Reflector).startResync"),
		goleak.IgnoreAnyFunction("k8s.io/apimachinery/pkg/watch.(*StreamWatcher).receive"),
		// The HTTP/2 stream of a registry's open watch (gRPC has an HTTP/2 of its own).
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*clientStream).writeRequest"),
		// The registry's own follower of that watch (its health; the registry's Close waits for it).
		goleak.IgnoreAnyFunction("github.com/kuberegistry/kuberegistry.(*informerHealth).follow.func1"),
	)
	goleak.VerifyNone(t, opts...)
}
