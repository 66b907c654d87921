package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// runningTier is a tier run by a test, on loopback ports.
type runningTier struct {
	*tier
	log    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// startTier runs a tier over sources, with args added to loopback listen flags, until the test
// ends (or stop is called).
func startTier(t *testing.T, sources []namedSource, log *lockedBuffer, args ...string) *runningTier {
	t.Helper()
	c, err := parseFlags(append([]string{"-xds-listen=127.0.0.1:0", "-http-listen=127.0.0.1:0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTier(c, sources, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &runningTier{tier: tr, log: log, cancel: cancel, done: make(chan error, 1)}
	go func() { rt.done <- tr.run(ctx) }()
	t.Cleanup(func() { _ = rt.stop(t) })
	return rt
}

// stop ends the tier as SIGTERM does and returns run's error.
func (rt *runningTier) stop(t *testing.T) error {
	t.Helper()
	rt.cancel()
	select {
	case err := <-rt.done:
		rt.done <- err // for the next caller
		return err
	case <-time.After(rt.cfg.shutdownTimeout + 10*time.Second):
		t.Fatal("the tier did not stop within -shutdown-timeout")
		return nil
	}
}

func (rt *runningTier) url(path string) string { return "http://" + rt.httpLn.Addr().String() + path }

// httpGet returns the status and body of a GET of url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitReady waits until /readyz answers 200.
func (rt *runningTier) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body := httpGet(t, rt.url("/readyz"))
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after %v: %d %s\nlog:\n%s", d, code, body, rt.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// podSource is a Registry over client's pods of namespace shop, as the tier builds it.
func podSource(t *testing.T, client *fake.Clientset, log io.Writer) namedSource {
	t.Helper()
	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace("shop"), kuberegistry.WithLogger(slog.New(slog.NewTextHandler(log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return namedSource{"pods", reg}
}

// The tier serves what the registry discovers, to a client over xDS; /metrics shows both; on
// SIGTERM it fails /readyz, ends the open streams and returns.
func TestTierServesAndShutsDown(t *testing.T) {
	client := fake.NewClientset()
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{
		Name: "greeter", Version: "v1.0.0", Metadata: map[string]string{"zone": "eu-1"}, Endpoints: []string{"grpc://10.0.0.1:9000"},
	})
	log := &lockedBuffer{}
	rt := startTier(t, []namedSource{podSource(t, client, log)}, log, "-shutdown-timeout=5s")
	rt.waitReady(t, 10*time.Second)

	conn, err := grpc.NewClient(rt.xdsLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d, err := xds.NewDiscovery(conn, xds.WithNodeID("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := kuberegistrytest.WaitForInstances(t, d, "greeter", "greeter-0")[0]
	if got.Version != "v1.0.0" || got.Metadata["zone"] != "eu-1" || len(got.Endpoints) != 1 || got.Endpoints[0] != "grpc://10.0.0.1:9000" {
		t.Fatalf("over xDS: %+v", got)
	}

	code, metrics := httpGet(t, rt.url("/metrics"))
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`kuberegistry_instances{source="pods"} 1`,
		`kuberegistry_synced{source="pods"} 1`,
		`kuberegistry_watching{namespace="shop",resource="pods",source="pods"} `,
		"kuberegistry_xds_streams 1",
		"kuberegistry_xds_services 1",
		"kuberegistry_xds_nacks_total 0",
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	start := time.Now()
	if err := rt.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	// The xDS server ends its streams itself: no need to wait for -shutdown-timeout.
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("shutdown took %v with a client connected", took)
	}
	for _, want := range []string{`msg="serving xDS"`, `msg="shutting down"`, `msg="xDS streams ended"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
}

// A source that RBAC refuses at start is tried again: /readyz and the log say what grant is
// missing, and the tier becomes ready once it is given, with no restart.
func TestTierRetriesARefusedStart(t *testing.T) {
	client := fake.NewClientset()
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{Name: "greeter", Endpoints: []string{"grpc://10.0.0.1:9000"}})
	var refuse atomic.Bool
	refuse.Store(true)
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refuse.Load() {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
				errors.New(`User "system:serviceaccount:shop:kuberegistry-xds" cannot list resource "pods"`))
		}
		return false, nil, nil
	})
	log := &lockedBuffer{}
	rt := startTier(t, []namedSource{podSource(t, client, log)}, log)

	waitForText(t, log, `msg="RBAC refused discovery; retrying" source=pods`, 10*time.Second)
	code, body := httpGet(t, rt.url("/readyz"))
	want := `starting: starting pods discovery: kuberegistry: not allowed to list pods in namespace "shop" (a Role and RoleBinding there): grant verb "list" on resource "pods"`
	if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Fatalf("/readyz = %d %q, want 503 and %q", code, body, want)
	}
	if code, _ := httpGet(t, rt.url("/healthz")); code != http.StatusOK {
		t.Fatalf("/healthz = %d while refused: liveness must not depend on the cluster", code)
	}

	refuse.Store(false) // the Role is applied
	rt.waitReady(t, 15*time.Second)
}

// Two sources: the xDS server serves both, registered pods first.
func TestTierServesPodsAndServices(t *testing.T) {
	client := fake.NewClientset()
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{Name: "greeter", Endpoints: []string{"grpc://10.0.0.1:9000"}})
	log := &lockedBuffer{}
	slices, err := kuberegistry.NewEndpointSliceDiscovery(client, kuberegistry.WithNamespace("shop"), kuberegistry.WithLogger(slog.New(slog.NewTextHandler(log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slices.Close() })
	rt := startTier(t, []namedSource{podSource(t, client, log), {"services", slices}}, log)
	rt.waitReady(t, 10*time.Second)
	_, metrics := httpGet(t, rt.url("/metrics"))
	for _, want := range []string{`kuberegistry_synced{source="pods"} 1`, `kuberegistry_synced{source="services"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
