package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2"
	klog "github.com/go-kratos/kratos/v2/log"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/kuberegistry/kuberegistry"
	kuberegistrykratos "github.com/kuberegistry/kuberegistry/contrib/kratos"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
)

// kratosPod is a pod running a go-kratos application: a gRPC and an HTTP server on the pod's IP,
// registered by kratos.App through the adapter, with a registry bound to the pod by WithPod.
type kratosPod struct {
	name       string
	ip         string
	grpc       *greeter     // what the gRPC server served
	httpServed atomic.Int64 // what the HTTP server served
	app        *kratos.App
	ran        chan error // App.Run's result

	stopOnce sync.Once
}

// startKratosPod creates pod ns/name at ip and runs its application until the test ends.
func startKratosPod(t *testing.T, ns, name, ip string) *kratosPod {
	t.Helper()
	createPod(t, ns, name, nil, nil)
	setPodStatus(t, ns, name, corev1.PodRunning, true, ip)

	reg, err := kuberegistry.New(adminClient(t), kuberegistry.WithPod(ns, name), kuberegistry.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	registrar, err := kuberegistrykratos.New(reg)
	if err != nil {
		t.Fatal(err)
	}

	p := &kratosPod{name: name, ip: ip, grpc: &greeter{name: name}, ran: make(chan error, 1)}
	gs := kgrpc.NewServer(kgrpc.Address(ip + ":0"))
	gs.RegisterService(&greeterServiceDesc, p.grpc)
	hs := khttp.NewServer(khttp.Address(ip + ":0"))
	hs.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) {
		p.httpServed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
	})
	p.app = kratos.New(
		kratos.ID(name),
		kratos.Name("greeter"),
		kratos.Version("v1.0.0+build.7"), // not a valid label value: stored losslessly
		kratos.Metadata(map[string]string{"pod": name}),
		kratos.Server(gs, hs),
		kratos.Registrar(registrar),
	)
	go func() { p.ran <- p.app.Run() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop stops the application as kratos does on SIGTERM: it deregisters, then stops its servers.
func (p *kratosPod) stop(t *testing.T) {
	p.stopOnce.Do(func() {
		if err := p.app.Stop(); err != nil {
			t.Errorf("stopping the application of %s: %v", p.name, err)
		}
		select {
		case err := <-p.ran:
			if err != nil {
				t.Errorf("the application of %s: %v", p.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the application of %s did not stop within 30s", p.name)
		}
	})
}

// served counts what the pod served over both protocols.
func (p *kratosPod) served() int64 { return p.grpc.served.Load() + p.httpServed.Load() }

// kratosClients are a go-kratos gRPC client and HTTP client of the same service.
type kratosClients struct {
	conn      *grpc.ClientConn
	http      *khttp.Client
	transport *http.Transport
}

func (c *kratosClients) callGRPC(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := new(wrapperspb.StringValue)
	if err := c.conn.Invoke(ctx, sayHelloMethod, wrapperspb.String("hi"), out); err != nil {
		return "", err
	}
	return out.Value, nil
}

func (c *kratosClients) callHTTP(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var reply struct {
		Name string `json:"name"`
	}
	if err := c.http.Invoke(ctx, http.MethodGet, "/hello", nil, &reply); err != nil {
		return "", err
	}
	return reply.Name, nil
}

// answers makes n calls with each client and returns who answered them, by protocol.
func (c *kratosClients) answers(t *testing.T, n int) (grpcBy, httpBy map[string]int) {
	t.Helper()
	grpcBy, httpBy = map[string]int{}, map[string]int{}
	for range n {
		who, err := c.callGRPC(5 * time.Second)
		if err != nil {
			t.Fatalf("gRPC call: %v", err)
		}
		grpcBy[who]++
		who, err = c.callHTTP(5 * time.Second)
		if err != nil {
			t.Fatalf("HTTP call: %v", err)
		}
		httpBy[who]++
	}
	return grpcBy, httpBy
}

// waitAnsweredBy makes rounds of calls until both clients are answered by exactly the named pods.
func (c *kratosClients) waitAnsweredBy(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		grpcBy, httpBy := c.answers(t, 20)
		if exactly(grpcBy, names) && exactly(httpBy, names) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("answered by %v over gRPC and %v over HTTP, want exactly %v", grpcBy, httpBy, names)
		}
	}
}

func exactly(got map[string]int, names []string) bool {
	if len(got) != len(names) {
		return false
	}
	for _, n := range names {
		if got[n] == 0 {
			return false
		}
	}
	return true
}

// go-kratos end to end: two pods run a go-kratos application each (a gRPC and an HTTP server),
// registered through kratos.Registrar; a go-kratos gRPC client and HTTP client dial
// discovery:///greeter. When a pod turns not Ready the clients stop using it; when the last one
// goes they fail fast; closing the clients leaves no goroutine behind, the resolver loops of
// go-kratos included.
func TestKratosEndToEnd(t *testing.T) {
	requireControlPlane(t)
	// go-kratos logs through a global logger; keep its warnings ("Zero endpoint found…").
	klog.SetLogger(klog.NewFilter(klog.NewStdLogger(os.Stderr), klog.FilterLevel(klog.LevelWarn)))
	ns := newNamespace(t)
	a := startKratosPod(t, ns, "greeter-a", loopbackIP())
	b := startKratosPod(t, ns, "greeter-b", loopbackIP())

	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
	discovery, err := kuberegistrykratos.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	// What kratos.App registered, as discovery serves it: the pods' IPs, both ports, exact values.
	var got []string
	eventually(t, func() error {
		instances, err := discovery.GetService(t.Context(), "greeter")
		if err != nil {
			return err
		}
		got = got[:0]
		for _, in := range instances {
			if len(in.Endpoints) != 2 || in.Version != "v1.0.0+build.7" || in.Metadata["pod"] != in.ID {
				return fmt.Errorf("instance %+v is not what its application registered", in)
			}
			got = append(got, in.ID)
		}
		if len(got) != 2 {
			return fmt.Errorf("instances %v, want greeter-a and greeter-b", got)
		}
		return nil
	})

	before := goroutineBaseline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint("discovery:///greeter"), kgrpc.WithDiscovery(discovery),
		kgrpc.WithPrintDiscoveryDebugLog(false), kgrpc.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{}
	// The HTTP client watches for as long as the context given here lives: not a deadline.
	hc, err := khttp.NewClient(context.Background(), khttp.WithEndpoint("discovery:///greeter"), khttp.WithDiscovery(discovery),
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

	// Closing the clients ends every goroutine they started, go-kratos's resolver loops included:
	// they exit only on an error matching context.Canceled.
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hc.Close(); err != nil {
		t.Fatal(err)
	}
	transport.CloseIdleConnections()
	verifyClientsLeftNothing(t, before)
}
