package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	klog "github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/registry"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/kuberegistry/kuberegistry"
	kuberegistrykratos "github.com/kuberegistry/kuberegistry/contrib/kratos"
	kuberegistryxds "github.com/kuberegistry/kuberegistry/contrib/xds"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// xdsEnv is what the subtests of TestXDS share: the built program and one tier process that
// discovers every namespace, pods and Services both. Each subtest works in namespaces of its own
// and dials names of its own, so that they do not see each other through the shared tier.
type xdsEnv struct {
	bin        string
	kubeconfig string
	tier       *xdsTier
	bootstrap  []byte // GRPC_XDS_BOOTSTRAP for clients of tier, as the program prints it
}

// The xDS tier (cmd/kuberegistry-xds) on the real API server, as a user runs it: gRPC clients
// with grpc-go's own xds:/// resolver and no kuberegistry code, and xds.NewDiscovery for the
// rest.
func TestXDS(t *testing.T) {
	requireControlPlane(t)
	env := &xdsEnv{bin: buildXDSTier(t), kubeconfig: tierKubeconfig(t)}
	env.tier = startXDSTier(t, env.bin, env.kubeconfig, "tier", "-all-namespaces", "-services")
	env.bootstrap = printBootstrap(t, env.bin, "dns:///"+env.tier.xdsAddr)

	t.Run("RoundRobinAndReadiness", env.testRoundRobinAndReadiness)
	t.Run("ZeroFailureRollout", env.testZeroFailureRollout)
	t.Run("Kratos", env.testKratos)
	t.Run("SameInstancesAsDirectSources", env.testSameInstances)
	t.Run("Replicas", env.testReplicas)
	t.Run("Manifests", env.testManifests)
}

// Three greeter pods behind xds:///greeter and xds:///greeter.<namespace>: calls spread evenly,
// a pod that turns not ready stops getting calls within a second and gets them again within a
// second of turning ready, with no failed call; with no ready pod calls fail fast with
// Unavailable, and a call waiting for ready is served when the pods come back.
func (e *xdsEnv) testRoundRobinAndReadiness(t *testing.T) {
	ns := newNamespace(t)
	// The tier serves every namespace of a control plane that other tests share, some with
	// greeters of their own: the plain name is one no other test uses.
	service := "greeter-" + ns[len(ns)-5:] // the namespace's random suffix
	servers := make([]*greeterServer, 3)
	names := make([]string, 3)
	for i := range servers {
		names[i] = fmt.Sprintf("greeter-%d", i)
		servers[i] = startGreeterServer(t, names[i], loopbackIP(), 0)
		createGreeterPod(t, ns, servers[i], greeterPodOptions{service: service})
	}
	conn := dialXDS(t, e.bootstrap, "xds:///"+service)
	start := time.Now()
	waitServedBy(t, conn, names...)
	t.Logf("xds:///%s served by all three pods %v after the dial", service, time.Since(start).Round(time.Millisecond))
	counts := servedBy(t, conn, 300)
	t.Logf("300 calls over 3 ready pods: %v", counts)
	for _, n := range names {
		if counts[n] < 80 || counts[n] > 120 {
			t.Errorf("%s served %d of 300 calls; round robin over 3 pods should give about 100 each", n, counts[n])
		}
	}
	waitServedBy(t, dialXDS(t, e.bootstrap, "xds:///"+service+"."+ns), names...)

	// Readiness flips, under a steady load that must not see a single failure. The bounds are
	// those of the kuberegistry resolver (TestGRPCResolverFollowsReadiness).
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

	// No ready pod: the tier keeps the service with no endpoint, and calls fail at once with
	// Unavailable, though every server still runs.
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
}

// The rollout of TestGRPCZeroFailureRollout, with the client on xds:///greeter.<namespace>: not
// a single call may fail, and the client leaves each rolled pod well within its grace period.
func (e *xdsEnv) testZeroFailureRollout(t *testing.T) {
	r := rollout(t, func(t *testing.T, ns string) *grpc.ClientConn {
		return dialXDS(t, e.bootstrap, "xds:///greeter."+ns)
	})
	t.Logf("through the xDS tier: %v", r)
	if r.failed != 0 {
		t.Errorf("%d calls failed during the rollout, want none: %v", r.failed, r.errors)
	}
	for i, d := range r.drains {
		if d > gracePeriod/2 {
			t.Errorf("the client kept sending to rolled pod %d for %v after it was marked terminating", i, d)
		}
	}
}

// discoveryOnly gives a kuberegistry.Discovery the Registrar half that the go-kratos adapter's
// Backend also asks for; clients never register, and a call to it is a bug of the test.
type discoveryOnly struct{ kuberegistry.Discovery }

var errDiscoveryOnly = errors.New("the xDS tier is discovery only: register with kuberegistry.New in the pod")

func (discoveryOnly) Register(context.Context, *kuberegistry.ServiceInstance) error {
	return errDiscoveryOnly
}

func (discoveryOnly) Deregister(context.Context, *kuberegistry.ServiceInstance) error {
	return errDiscoveryOnly
}

// TestKratosEndToEnd with the go-kratos adapter on top of xds.NewDiscovery over the tier instead
// of a Registry: the pods register themselves with kuberegistry, the clients read the tier.
// What the tier serves is exactly what a Registry of the same scope returns.
func (e *xdsEnv) testKratos(t *testing.T) {
	// go-kratos logs through a global logger; keep its warnings ("Zero endpoint found…").
	klog.SetLogger(klog.NewFilter(klog.NewStdLogger(os.Stderr), klog.FilterLevel(klog.LevelWarn)))
	ns := newNamespace(t)
	// Other tests of the shared control plane run greeters of their own, which the tier's
	// all-namespace scope serves under the plain name: this one is named in its namespace.
	greeter := "greeter." + ns
	a := startKratosPod(t, ns, "greeter-a", loopbackIP())
	b := startKratosPod(t, ns, "greeter-b", loopbackIP())
	// The tier's scope: every namespace.
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(""))

	beforeDiscovery := kratosPodsBaseline(t)
	tierConn := dialTier(t, e.tier)
	d, err := kuberegistryxds.NewDiscovery(tierConn, kuberegistryxds.WithNodeID("kratos-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	discovery, err := kuberegistrykratos.New(discoveryOnly{d})
	if err != nil {
		t.Fatal(err)
	}
	// What kratos.App registered, as the tier serves it: the pods' IPs, both ports, exact values.
	eventually(t, func() error {
		instances, err := discovery.GetService(t.Context(), greeter)
		if err != nil {
			return err
		}
		return registeredByKratos(instances, a.name, b.name)
	})
	sameAsDirect(t, d, reg, greeter)

	before := kratosPodsBaseline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint("discovery:///"+greeter), kgrpc.WithDiscovery(discovery),
		kgrpc.WithPrintDiscoveryDebugLog(false), kgrpc.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{}
	// The HTTP client watches for as long as the context given here lives: not a deadline.
	hc, err := khttp.NewClient(context.Background(), khttp.WithEndpoint("discovery:///"+greeter), khttp.WithDiscovery(discovery),
		khttp.WithBlock(), khttp.WithTransport(transport), khttp.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	clients := &kratosClients{conn: conn, http: hc, transport: transport}
	clients.waitAnsweredBy(t, a.name, b.name)

	// greeter-a's readiness probe fails: its servers still run, but the clients leave it.
	setPodStatus(t, ns, a.name, corev1.PodRunning, false, a.ip)
	clients.waitAnsweredBy(t, b.name)
	servedByA := a.served()
	grpcBy, httpBy := clients.answers(t, 40)
	if !exactly(grpcBy, []string{b.name}) || !exactly(httpBy, []string{b.name}) || a.served() != servedByA {
		t.Fatalf("with greeter-a not ready: answered by %v over gRPC and %v over HTTP, greeter-a served %d",
			grpcBy, httpBy, a.served()-servedByA)
	}
	sameAsDirect(t, d, reg, greeter)

	// The last ready pod goes: its application deregisters and stops. The clients fail fast, and
	// never fall back on greeter-a, which still runs but is not ready.
	b.stop(t)
	for _, call := range []struct {
		protocol string
		do       func(time.Duration) (string, error)
	}{{"gRPC", clients.callGRPC}, {"HTTP", clients.callHTTP}} {
		var callErr error
		eventually(t, func() error {
			start := time.Now()
			who, err := call.do(10 * time.Second)
			if err == nil {
				return fmt.Errorf("%s call answered by %s after the last ready pod went", call.protocol, who)
			}
			callErr = err
			if took := time.Since(start); took > time.Second {
				t.Errorf("a %s call took %v to fail, want it to fail fast", call.protocol, took)
			}
			return nil
		})
		t.Logf("%s call with no ready pod: %v", call.protocol, callErr)
		if call.protocol == "gRPC" && status.Code(callErr) != codes.Unavailable {
			t.Errorf("the gRPC call failed with %v, want Unavailable", callErr)
		}
	}
	if a.served() != servedByA {
		t.Errorf("greeter-a, not ready, served %d calls", a.served()-servedByA)
	}
	sameAsDirect(t, d, reg, greeter)

	// Closing the clients ends every goroutine they started, the watchers they opened on the
	// Discovery included; closing the Discovery ends its own.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hc.Close(); err != nil {
		t.Fatal(err)
	}
	transport.CloseIdleConnections()
	verifyClientsLeftNothing(t, before)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tierConn.Close(); err != nil {
		t.Fatal(err)
	}
	verifyClientsLeftNothing(t, beforeDiscovery)
}

// kratosPodsBaseline is goroutineBaseline for a test whose kratos pods (startKratosPod) run on:
// an App starts its signal watcher only once Register has returned, which may be after the
// instance is discovered, and so after the baseline. It belongs to the pod, not to the clients.
func kratosPodsBaseline(t *testing.T) leakBaseline {
	t.Helper()
	b := goroutineBaseline(t)
	b.opts = append(b.opts, goleak.IgnoreAnyFunction("github.com/go-kratos/kratos/v2.(*App).Run.func3"))
	return b
}

// registeredByKratos checks that instances are exactly the two that startKratosPod's
// applications registered, named names.
func registeredByKratos(instances []*registry.ServiceInstance, names ...string) error {
	var got []string
	for _, in := range instances {
		if len(in.Endpoints) != 2 || in.Version != "v1.0.0+build.7" || in.Metadata["pod"] != in.ID {
			return fmt.Errorf("instance %+v is not what its application registered", in)
		}
		got = append(got, in.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		return fmt.Errorf("instances %v, want %v", got, names)
	}
	return nil
}

// sameAsDirect waits until GetService of name through the tier returns exactly what it returns on
// a direct source: the same instances, field by field, in the same order.
func sameAsDirect(t *testing.T, tier, direct kuberegistry.Discovery, name string) []*kuberegistry.ServiceInstance {
	t.Helper()
	var want []*kuberegistry.ServiceInstance
	eventually(t, func() error {
		var err error
		if want, err = direct.GetService(t.Context(), name); err != nil {
			return fmt.Errorf("direct GetService(%q): %w", name, err)
		}
		got, err := tier.GetService(t.Context(), name)
		if err != nil {
			return fmt.Errorf("GetService(%q) through the tier: %w", name, err)
		}
		return diffInstances(got, want)
	})
	return want
}

// diffInstances says how got differs from want, instance by instance; nil when they are equal,
// field by field, down to a nil map or slice against an empty one.
func diffInstances(got, want []*kuberegistry.ServiceInstance) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d instances %s, want %d %s", len(got), describe(got), len(want), describe(want))
	}
	for i := range got {
		if !reflect.DeepEqual(*got[i], *want[i]) {
			return fmt.Errorf("instance %d is %#v, want %#v", i, *got[i], *want[i])
		}
	}
	return nil
}

func describe(instances []*kuberegistry.ServiceInstance) string {
	var parts []string
	for _, in := range instances {
		parts = append(parts, in.ID+"="+strings.Join(in.Endpoints, ","))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// GetService through the tier equals GetService on the direct sources of the same scope for
// every kind of instance: several ports, endpoint parameters, dual stack, exact IDs and versions
// that labels cannot hold, metadata, a not-ready pod left out; Services from EndpointSlices with
// zones; a name both have (the pods win); plain and namespaced names. The catalog lists the same
// names, and watches through the tier follow a change to the same sets.
func (e *xdsEnv) testSameInstances(t *testing.T) {
	ns := sliceNamespace(t)
	rich := registeredLabels("xcart", "xcart-0")
	createPod(t, ns, "xcart-0", rich, map[string]string{
		kuberegistry.AnnotationsKeyProtocolMap:    `{"9000":"grpc","8443":"http"}`,
		kuberegistry.AnnotationsKeyEndpointParams: `{"8443":"isSecure=true"}`,
		kuberegistry.AnnotationsKeyMetadata:       `{"tier":"registered","owner":"checkout team"}`,
		kuberegistry.AnnotationsKeyServiceVersion: "v1.2.3+build.7",
		kuberegistry.AnnotationsKeyServiceID:      "xcart/0 (the first)",
	})
	setPodStatus(t, ns, "xcart-0", corev1.PodRunning, true, "10.70.0.1")
	createPod(t, ns, "xcart-1", registeredLabels("xcart", "xcart-1"), grpcProtocols())
	setPodStatus(t, ns, "xcart-1", corev1.PodRunning, true, "10.70.0.2", "fd00::70:2")
	createPod(t, ns, "xcart-2", registeredLabels("xcart", "xcart-2"), grpcProtocols())
	setPodStatus(t, ns, "xcart-2", corev1.PodRunning, false, "10.70.0.3")
	readyPod(t, ns, "xweb-0", "xweb", "10.70.1.1")
	// Services: xapi has two slices, zones included; a Service named xcart too, which the pods win.
	createSlice(t, serviceSlice(ns, "xapi-a", "xapi", readyEndpoint("xapi-0", "10.70.2.1"), notReadyEndpoint("xapi-1", "10.70.2.2")))
	createSlice(t, serviceSlice(ns, "xapi-b", "xapi", readyEndpoint("xapi-2", "10.70.2.3")))
	createSlice(t, serviceSlice(ns, "xcart-svc", "xcart", readyEndpoint("xcart-svc-0", "10.70.3.1")))

	// The tier's scope: every namespace, pods and Services.
	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(""))
	svcs, err := kuberegistry.NewEndpointSliceDiscovery(adminClient(t), kuberegistry.WithNamespace(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svcs.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := svcs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "xcart", "grpc://10.70.0.1:9000", "http://10.70.0.1:8443?isSecure=true",
		"grpc://10.70.0.2:9000", "grpc://[fd00::70:2]:9000")
	waitFor(t, svcs, "xapi", "http://10.70.2.1:8080", "http://10.70.2.3:8080")

	d, err := kuberegistryxds.NewDiscovery(dialTier(t, e.tier))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	for _, c := range []struct {
		name   string
		direct kuberegistry.Discovery
	}{
		{"xcart", reg}, {"xcart." + ns, reg}, {"xweb", reg}, {"xweb." + ns, reg},
		{"xapi", svcs}, {"xapi." + ns, svcs},
	} {
		got := sameAsDirect(t, d, c.direct, c.name)
		t.Logf("%s through the tier: %s", c.name, describe(got))
	}

	// The catalog: the names of both sources (only ours: the tier sees every namespace).
	ours := func(names []string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !strings.HasPrefix(n, "x") })
	}
	regNames, err := reg.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	svcNames, err := svcs.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Compact(slices.Sorted(slices.Values(append(ours(regNames), ours(svcNames)...))))
	eventually(t, func() error {
		got, err := d.Services(t.Context())
		if err != nil {
			return err
		}
		if got = ours(got); !slices.Equal(got, want) {
			return fmt.Errorf("the tier lists %v, want %v", got, want)
		}
		return nil
	})

	// A change, followed by a watch of one service and of the catalog through the tier.
	w, err := d.Watch(t.Context(), "xcart")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	all, err := d.WatchServices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = all.Stop() })
	first := nextCatalog(t, all)
	if err := diffInstances(first["xcart"], sameAsDirect(t, d, reg, "xcart")); err != nil {
		t.Errorf("the tier's catalog: xcart: %v", err)
	}
	if err := diffInstances(next(t, w), sameAsDirect(t, d, reg, "xcart")); err != nil {
		t.Errorf("the first Next of a watch through the tier: %v", err)
	}
	setPodStatus(t, ns, "xcart-2", corev1.PodRunning, true, "10.70.0.3")
	want3 := waitFor(t, reg, "xcart", "grpc://10.70.0.1:9000", "http://10.70.0.1:8443?isSecure=true",
		"grpc://10.70.0.2:9000", "grpc://[fd00::70:2]:9000", "grpc://10.70.0.3:9000")
	for {
		got := next(t, w)
		if diffInstances(got, want3) == nil {
			break
		}
		t.Logf("a watch through the tier saw %s on the way", describe(got))
	}
	for {
		catalog := nextCatalog(t, all)
		if diffInstances(catalog["xcart"], want3) == nil {
			break
		}
	}
	sameAsDirect(t, d, reg, "xcart")
}

// Two replicas of the tier; a grpc-go client on a service of two pods; under load, the replica
// the client uses dies, then a third pod joins.
func (e *xdsEnv) testReplicas(t *testing.T) {
	// As a Kubernetes Service in front of the replicas, that is behind one name that resolves to
	// both: the client's channel to the tier reconnects to the other replica, which serves it
	// from then on. No call fails, and the client reaches the new pod.
	t.Run("BehindOneName", func(t *testing.T) {
		first := startXDSTier(t, e.bin, e.kubeconfig, "replica-1", "-all-namespaces")
		name := registerReplicas(t, first.xdsAddr, e.tier.xdsAddr)
		bootstrap := printBootstrap(t, e.bin, replicasScheme+":///"+name)
		c := replicaClient(t, bootstrap, first, e.tier)

		l := startLoad(c.conn, rolloutWorkers)
		died := time.Now()
		first.kill(t)
		third := c.addPod()
		for third.served.Load() == 0 {
			if time.Since(died) > 10*time.Second {
				l.stop()
				t.Fatalf("the new pod %s got no call within 10s of the replica's death", third.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("a pod added as the replica died served calls %v after its death", time.Since(died).Round(time.Millisecond))
		if r := l.stop(); r.failed != 0 {
			t.Errorf("%d of %d calls failed while the replica died: %v", r.failed, r.ok+r.failed, r.errors)
		}
		waitServedBy(t, c.conn, append(c.names, third.name)...)
		if got := xdsStreams(t, e.tier); got != c.secondStreams+1 {
			t.Errorf("%s has %v xDS streams open, want the client's besides %v", e.tier.name, got, c.secondStreams)
		}
	})

	// As the bootstrap's list of servers: grpc-go (gRFC A71) uses the second server only for
	// resources it has not received yet. The client keeps calling the pods it knows, with no
	// failure; a client started after the death gets everything from the other replica, the new
	// pod included. (The first client sees no change until the first replica is back.)
	t.Run("BootstrapListsBoth", func(t *testing.T) {
		first := startXDSTier(t, e.bin, e.kubeconfig, "replica-1", "-all-namespaces")
		bootstrap := printBootstrap(t, e.bin, "dns:///"+first.xdsAddr, "dns:///"+e.tier.xdsAddr)
		c := replicaClient(t, bootstrap, first, e.tier)

		l := startLoad(c.conn, rolloutWorkers)
		first.kill(t)
		third := c.addPod()
		late := dialXDS(t, bootstrap, c.conn.Target())
		waitServedBy(t, late, append(c.names, third.name)...)
		if r := l.stop(); r.failed != 0 {
			t.Errorf("%d of %d calls failed while the replica died: %v", r.failed, r.ok+r.failed, r.errors)
		}
		t.Logf("the first client's calls after the death went to %v", servedBy(t, c.conn, 30))
	})
}

// replicaSetup is a client of two greeter pods through replicas of the tier.
type replicaSetup struct {
	conn          *grpc.ClientConn
	names         []string              // of the two pods
	addPod        func() *greeterServer // adds a pod of the service
	secondStreams float64               // the streams the second replica had open before the client
}

// replicaClient starts two greeter pods in a new namespace and a client of them with bootstrap,
// and checks that the client's xDS stream is on first.
func replicaClient(t *testing.T, bootstrap []byte, first, second *xdsTier) replicaSetup {
	t.Helper()
	ns := newNamespace(t)
	n := 0
	c := replicaSetup{addPod: func() *greeterServer {
		g := startGreeterServer(t, fmt.Sprintf("greeter-%d", n), loopbackIP(), callLatency)
		n++
		createGreeterPod(t, ns, g, greeterPodOptions{service: "greeter"})
		return g
	}}
	c.names = []string{c.addPod().name, c.addPod().name}
	c.secondStreams = xdsStreams(t, second)
	c.conn = dialXDS(t, bootstrap, "xds:///greeter."+ns)
	waitServedBy(t, c.conn, c.names...)
	if got := xdsStreams(t, first); got != 1 {
		t.Fatalf("%s has %v xDS streams open, want the client's", first.name, got)
	}
	if got := xdsStreams(t, second); got != c.secondStreams {
		t.Fatalf("%s has %v xDS streams open, want %v as before the client", second.name, got, c.secondStreams)
	}
	return c
}

// xdsStreams reads how many xDS streams the tier has open, from its /metrics.
func xdsStreams(t *testing.T, p *xdsTier) float64 {
	t.Helper()
	n, ok := p.metric(t, "kuberegistry_xds_streams ")
	if !ok {
		t.Fatalf("%s /metrics has no kuberegistry_xds_streams", p.name)
	}
	return n
}

// replicasScheme names the resolver that stands in, for the xDS client's channel to the tier, for
// the DNS of a Kubernetes Service in front of the tier's replicas: "xds-replicas:///<name>"
// resolves to the addresses registerReplicas gave name. (A name, not a list in the target:
// -server-uri splits its value at commas.)
const replicasScheme = "xds-replicas"

func init() { resolver.Register(replicasBuilder{}) }

// replicaAddrs maps each name registerReplicas made to its addresses.
var replicaAddrs sync.Map // string → []string

// registerReplicas makes a name that resolves to addrs, in that order, until the test ends.
func registerReplicas(t *testing.T, addrs ...string) string {
	name := nonNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	replicaAddrs.Store(name, addrs)
	t.Cleanup(func() { replicaAddrs.Delete(name) })
	return name
}

type replicasBuilder struct{}

func (replicasBuilder) Scheme() string { return replicasScheme }

func (replicasBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	v, ok := replicaAddrs.Load(target.Endpoint())
	if !ok {
		return nil, fmt.Errorf("%s: no replicas registered under %q", replicasScheme, target.Endpoint())
	}
	var state resolver.State
	for _, addr := range v.([]string) {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: addr})
	}
	if err := cc.UpdateState(state); err != nil {
		return nil, err
	}
	return replicasResolver{}, nil
}

type replicasResolver struct{}

func (replicasResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (replicasResolver) Close()                                {}
