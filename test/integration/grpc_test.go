package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	kuberegistrygrpc "github.com/kuberegistry/kuberegistry/contrib/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// roundRobin is the service config of the tests' ClientConns.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// dialKubernetes dials target, such as "kubernetes:///greeter", through the kuberegistry
// resolver over reg, with round_robin; the ClientConn is closed with the test.
func dialKubernetes(t *testing.T, reg *kuberegistry.Registry, target string) *grpc.ClientConn {
	t.Helper()
	b, err := kuberegistrygrpc.NewBuilder(reg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(target, b.DialOption(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(roundRobin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// sayHello makes one call with a deadline and returns who served it.
func sayHello(conn *grpc.ClientConn, timeout time.Duration, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, sayHelloMethod, wrapperspb.String("hi"), out, opts...); err != nil {
		return "", err
	}
	return out.Value, nil
}

// servedBy makes n calls, failing the test on any error, and counts them by server.
func servedBy(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		who, err := sayHello(conn, 5*time.Second)
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
		counts[who]++
	}
	return counts
}

// waitServedBy makes calls until a round of 60 is served by exactly the named servers.
func waitServedBy(t *testing.T, conn *grpc.ClientConn, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := servedBy(t, conn, 60)
		if len(got) == len(names) && !slices.ContainsFunc(names, func(n string) bool { return got[n] == 0 }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls served by %v, want exactly %v", got, names)
		}
	}
}

// quietSince waits until g has served nothing for quiet while the load goes on (at most 5s),
// and returns how long after since g last served a call: how long the client kept sending to it.
func quietSince(t *testing.T, g *greeter, since time.Time, quiet time.Duration) time.Duration {
	t.Helper()
	for time.Since(later(g.lastServed(), since)) < quiet {
		if time.Since(since) > 5*time.Second {
			t.Fatalf("%s still served calls 5s later", g.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return max(0, g.lastServed().Sub(since))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Traffic spreads over the ready pods, follows readiness flips within a second both ways, fails
// fast when no pod is ready and recovers when pods come back; closing the ClientConn leaves no
// goroutine behind.
func TestGRPCResolverFollowsReadiness(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	servers := make([]*greeterServer, 3)
	names := make([]string, 3)
	for i := range servers {
		names[i] = fmt.Sprintf("greeter-%d", i)
		servers[i] = startGreeterServer(t, names[i], loopbackIP(), 0)
		createGreeterPod(t, ns, servers[i], greeterPodOptions{service: "greeter"})
	}
	reg := startRegistry(t, client, kuberegistry.WithNamespace(ns))
	before := goroutineBaseline(t)
	conn := dialKubernetes(t, reg, "kubernetes:///greeter")

	waitServedBy(t, conn, names...)
	counts := servedBy(t, conn, 300)
	t.Logf("300 calls over 3 ready pods: %v", counts)
	for _, n := range names {
		if counts[n] < 80 || counts[n] > 120 {
			t.Errorf("%s served %d of 300 calls; round_robin over 3 pods should give about 100 each", n, counts[n])
		}
	}

	// Readiness flips, under a steady load that must not see a single failure.
	l := startLoad(conn, 4)
	flip := time.Now()
	setPodStatus(t, ns, names[1], corev1.PodRunning, false, servers[1].ip)
	drain := quietSince(t, servers[1].greeter, flip, 300*time.Millisecond)
	t.Logf("Ready=False: the client stopped sending to the pod %v after the status write began", drain)
	if drain > time.Second {
		t.Errorf("the client kept sending to a pod that is not ready for %v, want under a second", drain)
	}
	back := time.Now()
	servedBefore := servers[1].served.Load()
	setPodStatus(t, ns, names[1], corev1.PodRunning, true, servers[1].ip)
	for servers[1].served.Load() == servedBefore && time.Since(back) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	comeback := time.Since(back)
	t.Logf("Ready=True: the pod served again %v after the status write began", comeback)
	if comeback > time.Second {
		t.Errorf("the pod took %v to get traffic again, want under a second", comeback)
	}
	if r := l.stop(); r.failed != 0 {
		t.Errorf("%d of %d calls failed while readiness flipped: %v", r.failed, r.ok+r.failed, r.errors)
	}

	// No ready pod: calls fail at once with Unavailable, though every server still runs.
	for i, n := range names {
		setPodStatus(t, ns, n, corev1.PodRunning, false, servers[i].ip)
	}
	var callErr error
	eventually(t, func() error {
		start := time.Now()
		_, callErr = sayHello(conn, 10*time.Second)
		if callErr == nil {
			return errors.New("calls are still served")
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("a call took %v to fail, want it to fail fast", took)
		}
		return nil
	})
	if status.Code(callErr) != codes.Unavailable {
		t.Errorf("with no ready pod a call failed with %v, want Unavailable", callErr)
	}
	t.Logf("with no ready pod: %v", callErr)

	// Pods come back: calls succeed again, and one that waits for ready is served.
	waited := make(chan error, 1)
	go func() {
		_, err := sayHello(conn, 20*time.Second, grpc.WaitForReady(true))
		waited <- err
	}()
	for i, n := range names {
		setPodStatus(t, ns, n, corev1.PodRunning, true, servers[i].ip)
	}
	if err := <-waited; err != nil {
		t.Errorf("a call waiting for ready failed: %v", err)
	}
	waitServedBy(t, conn, names...)

	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	verifyClientsLeftNothing(t, before)
}

// A target with a namespace, kubernetes://<namespace>/<service>, resolves the service's pods of
// that namespace only, through a registry that discovers several namespaces.
func TestGRPCNamespacedTarget(t *testing.T) {
	shop, other := newNamespace(t), newNamespace(t)
	inShop := startGreeterServer(t, "greeter-shop", loopbackIP(), 0)
	createGreeterPod(t, shop, inShop, greeterPodOptions{service: "greeter"})
	inOther := startGreeterServer(t, "greeter-other", loopbackIP(), 0)
	createGreeterPod(t, other, inOther, greeterPodOptions{service: "greeter"})
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespaces(shop, other))

	waitServedBy(t, dialKubernetes(t, reg, "kubernetes://"+shop+"/greeter"), "greeter-shop")
	waitServedBy(t, dialKubernetes(t, reg, "kubernetes://"+other+"/greeter"), "greeter-other")
	waitServedBy(t, dialKubernetes(t, reg, "kubernetes:///greeter"), "greeter-other", "greeter-shop")
}

// rolloutResult is what one rollout measured.
type rolloutResult struct {
	ok, failed int64
	elapsed    time.Duration
	drains     []time.Duration // per rolled pod: from "marked terminating" to its last served call
	errors     []string        // the first distinct errors
}

func (r rolloutResult) String() string {
	return fmt.Sprintf("%d calls in %v (%.0f/s), %d failed; marked terminating → last call served: %v",
		r.ok+r.failed, r.elapsed.Round(time.Millisecond), float64(r.ok+r.failed)/r.elapsed.Seconds(), r.failed, r.drains)
}

// Rollout parameters: calls take callLatency, so that calls are in flight at every moment;
// a terminating pod's server serves for gracePeriod, then is killed.
const (
	rolloutPods    = 3
	rolloutWorkers = 8
	callLatency    = 2 * time.Millisecond
	gracePeriod    = time.Second
	testFinalizer  = "kuberegistry.io/e2e"
)

// Zero-failure rollout: while a client sends a steady stream of calls through the kuberegistry
// resolver, every pod is rolled one by one the way the kubelet does it — the pod is deleted
// while a finalizer holds it, so it is terminating with a deletion timestamp; its server keeps
// serving for a grace period, then is killed; a new ready pod on a new address takes its place.
// Not a single call may fail. The same rollout through a resolver that trusts the pod phase
// alone fails calls: those in flight on each pod when it is killed.
func TestGRPCZeroFailureRollout(t *testing.T) {
	requireControlPlane(t)
	var ours, naive rolloutResult
	t.Run("kuberegistry resolver", func(t *testing.T) {
		ours = rollout(t, func(t *testing.T, ns string) *grpc.ClientConn {
			reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
			return dialKubernetes(t, reg, "kubernetes:///greeter")
		})
		t.Logf("kuberegistry resolver: %v", ours)
		if ours.failed != 0 {
			t.Errorf("%d calls failed during the rollout, want none: %v", ours.failed, ours.errors)
		}
		for i, d := range ours.drains {
			if d > gracePeriod/2 {
				t.Errorf("the client kept sending to rolled pod %d for %v after it was marked terminating", i, d)
			}
		}
	})
	t.Run("phase-only resolver", func(t *testing.T) {
		naive = rollout(t, func(t *testing.T, ns string) *grpc.ClientConn {
			b := &phaseOnlyBuilder{client: adminClient(t), namespace: ns}
			conn, err := grpc.NewClient(b.Scheme()+":///greeter", grpc.WithResolvers(b),
				grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(roundRobin))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			return conn
		})
		t.Logf("phase-only resolver: %v; errors: %v", naive, naive.errors)
		if naive.failed == 0 {
			t.Errorf("no call failed through the phase-only resolver: the rollout does not exercise what it should")
		}
	})
	t.Logf("failed calls during the rollout: kuberegistry %d of %d, phase-only %d of %d",
		ours.failed, ours.ok+ours.failed, naive.failed, naive.ok+naive.failed)
}

// rollout runs the rollout against the ClientConn dial returns, and measures it.
func rollout(t *testing.T, dial func(t *testing.T, ns string) *grpc.ClientConn) rolloutResult {
	ns := newNamespace(t)
	pods := adminClient(t).CoreV1().Pods(ns)
	current := make([]*greeterServer, rolloutPods)
	for i := range current {
		current[i] = startGreeterServer(t, fmt.Sprintf("greeter-%d", i), loopbackIP(), callLatency)
		createGreeterPod(t, ns, current[i], greeterPodOptions{service: "greeter", finalizer: testFinalizer})
	}
	conn := dial(t, ns)
	names := make([]string, len(current))
	for i, g := range current {
		names[i] = g.name
	}
	waitServedBy(t, conn, names...)

	l := startLoad(conn, rolloutWorkers)
	time.Sleep(200 * time.Millisecond) // steady state first
	var drains []time.Duration
	for i, old := range current {
		marked := time.Now()
		if err := pods.Delete(t.Context(), old.name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting pod %s: %v", old.name, err)
		}
		time.Sleep(gracePeriod) // the server keeps serving out its grace period
		old.kill()
		drains = append(drains, max(0, old.lastServed().Sub(marked)).Round(time.Millisecond))
		removeFinalizers(t, adminClient(t), ns, old.name) // the kubelet is done: the pod goes

		next := startGreeterServer(t, fmt.Sprintf("greeter-%d", rolloutPods+i), loopbackIP(), callLatency)
		createGreeterPod(t, ns, next, greeterPodOptions{service: "greeter", finalizer: testFinalizer})
		for start := time.Now(); next.served.Load() == 0; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the new pod %s got no call within 10s", next.name)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	r := l.stop()
	r.drains = drains
	return r
}

// load sends calls from several workers until stopped.
type load struct {
	conn    *grpc.ClientConn
	start   time.Time
	ok      atomic.Int64
	failed  atomic.Int64
	stopped chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex // guards errors
	errors []string
}

func startLoad(conn *grpc.ClientConn, workers int) *load {
	l := &load{conn: conn, start: time.Now(), stopped: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go l.work()
	}
	return l
}

func (l *load) work() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stopped:
			return
		default:
		}
		if _, err := sayHello(l.conn, 2*time.Second); err != nil {
			l.failed.Add(1)
			l.note(err)
			continue
		}
		l.ok.Add(1)
	}
}

func (l *load) note(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := err.Error()
	if len(l.errors) < 5 && !slices.Contains(l.errors, msg) {
		l.errors = append(l.errors, msg)
	}
}

func (l *load) stop() rolloutResult {
	close(l.stopped)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return rolloutResult{ok: l.ok.Load(), failed: l.failed.Load(), elapsed: time.Since(l.start), errors: l.errors}
}

// phaseOnlyBuilder builds the naive resolver the rollout is compared with: it sends to every
// pod of the service whose phase is Running, the way a resolver that reads the phase alone
// does. It ignores the Ready condition and the deletion timestamp, so a terminating pod keeps
// its traffic until it is gone.
type phaseOnlyBuilder struct {
	client    kubernetes.Interface
	namespace string
}

func (b *phaseOnlyBuilder) Scheme() string { return "phase-only" }

func (b *phaseOnlyBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	pods := b.client.CoreV1().Pods(b.namespace)
	selector := kuberegistry.LabelsKeyServiceName + "=" + target.Endpoint()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return pods.Watch(ctx, o)
		},
	}
	informer := cache.NewSharedIndexInformerWithOptions(lw, &corev1.Pod{}, cache.SharedIndexInformerOptions{})
	push := func() {
		var addrs []resolver.Address
		for _, obj := range informer.GetStore().List() {
			pod := obj.(*corev1.Pod)
			if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
				continue
			}
			if port := grpcPort(pod); port != "" {
				addrs = append(addrs, resolver.Address{Addr: net.JoinHostPort(pod.Status.PodIP, port)})
			}
		}
		_ = cc.UpdateState(resolver.State{Addresses: addrs})
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { push() },
		UpdateFunc: func(any, any) { push() },
		DeleteFunc: func(any) { push() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := &phaseOnlyResolver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		informer.RunWithContext(ctx)
	}()
	return r, nil
}

// grpcPort reads the port registered as grpc in the pod's protocols annotation.
func grpcPort(pod *corev1.Pod) string {
	var protocols map[string]string
	if err := json.Unmarshal([]byte(pod.Annotations[kuberegistry.AnnotationsKeyProtocolMap]), &protocols); err != nil {
		return ""
	}
	for port, scheme := range protocols {
		if strings.EqualFold(scheme, "grpc") {
			if _, err := strconv.Atoi(port); err == nil {
				return port
			}
		}
	}
	return ""
}

type phaseOnlyResolver struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *phaseOnlyResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *phaseOnlyResolver) Close() {
	r.cancel()
	<-r.done
}
