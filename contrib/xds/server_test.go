package xds

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
)

func TestNewServerRejectsBadInput(t *testing.T) {
	tests := []struct {
		name     string
		catalogs []kuberegistry.Catalog
		opts     []ServerOption
		want     string
	}{
		{"no catalog", nil, nil, "no catalog"},
		{"nil catalog", []kuberegistry.Catalog{nil}, nil, "catalog 0 is nil"},
		{"nil logger", []kuberegistry.Catalog{newFakeCatalog()}, []ServerOption{WithLogger(nil)}, "WithLogger(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewServer(tt.catalogs, tt.opts...)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewServer: %v, want ErrInvalidOption naming %q", err, tt.want)
			}
		})
	}
}

// Names resolve across catalogs by the library's rule: the exact name in the first catalog that
// has instances of it, else the namespaced form.
func TestServerResolvesNamesAcrossCatalogs(t *testing.T) {
	pods, services := newFakeCatalog(), newFakeCatalog()
	pods.set("web", instance("web", "web-a", "10.0.0.1", "a"), instance("web", "web-b", "10.0.0.2", "b"))
	services.set("web", instance("web", "svc-web", "10.1.0.1", "a"))
	services.set("db", instance("db", "db-0", "10.1.0.2", "data"))
	tr := startTier(t, "127.0.0.1:0", pods, services)
	d := newDiscovery(t, tr.addr)

	expect := func(name string, want ...string) {
		t.Helper()
		got, err := d.GetService(context.Background(), name)
		if err != nil || !slices.Equal(ids(got), want) {
			t.Errorf("GetService(%q) = %v, %v; want %v", name, ids(got), err, want)
		}
	}
	expect("web", "web-a", "web-b") // the pods' catalog wins
	expect("web.a", "web-a")
	expect("web.b", "web-b")
	expect("db", "db-0")
	expect("db.data", "db-0")
	expect("nobody")
	names, err := d.Services(context.Background())
	if err != nil || !slices.Equal(names, []string{"db", "web"}) {
		t.Errorf("Services = %v, %v; want [db web]", names, err)
	}
	if st := tr.server.Stats(); st.Services != 2 || st.Resources != 5 {
		t.Errorf("stats %+v: want 2 services, 5 names (web, web.a, web.b, db, db.data)", st)
	}

	// A service named like a namespaced form wins while it has instances.
	services.set("web.a", instance("web.a", "dotted", "10.2.0.1", ""))
	waitFor(t, "web.a to be the dotted service", func() bool {
		got, _ := d.GetService(context.Background(), "web.a")
		return slices.Equal(ids(got), []string{"dotted"})
	})
	services.set("web.a")
	waitFor(t, "web.a to be the namespaced form again", func() bool {
		got, _ := d.GetService(context.Background(), "web.a")
		return slices.Equal(ids(got), []string{"web-a"})
	})

	// When the pods' web loses its instances, the Services' web is served.
	pods.set("web")
	waitFor(t, "web to fall back to the second catalog", func() bool {
		got, _ := d.GetService(context.Background(), "web")
		return slices.Equal(ids(got), []string{"svc-web"})
	})
	expect("web.b") // kept, empty
	if st := tr.server.Stats(); st.Services != 2 {
		t.Errorf("stats %+v: want 2 services", st)
	}
}

// A Registry of one namespace puts no namespace on its instances; its Status tells it.
func TestServerNamespaceFromStatus(t *testing.T) {
	c := namespacedCatalog{newFakeCatalog(), "shop"}
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", ""))
	tr := startTier(t, "127.0.0.1:0", c)
	d := newDiscovery(t, tr.addr)
	got, err := d.GetService(context.Background(), "cart.shop")
	if err != nil || !slices.Equal(ids(got), []string{"cart-0"}) {
		t.Errorf("GetService(cart.shop) = %v, %v", ids(got), err)
	}
}

// A service that loses its last instance keeps its name, empty: Services leaves it out.
func TestServerKeepsEmptyServices(t *testing.T) {
	c := newFakeCatalog()
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"))
	tr := startTier(t, "127.0.0.1:0", c)
	d := newDiscovery(t, tr.addr)
	w, err := d.Watch(context.Background(), "cart")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := nextWithin(t, w, 5*time.Second); len(got) != 1 {
		t.Fatalf("first Next: %v", ids(got))
	}
	c.set("cart")
	if got := nextWithin(t, w, 5*time.Second); len(got) != 0 {
		t.Fatalf("Next after the last instance left: %v", ids(got))
	}
	waitFor(t, "Services to leave cart out", func() bool {
		names, _ := d.Services(context.Background())
		return len(names) == 0
	})
	if st := tr.server.Stats(); st.Services != 0 || st.Resources != 2 {
		t.Errorf("stats %+v: want no service and 2 names kept (cart, cart.shop)", st)
	}
	c.set("cart", instance("cart", "cart-1", "10.0.0.2", "shop"))
	if got := nextWithin(t, w, 5*time.Second); !slices.Equal(ids(got), []string{"cart-1"}) {
		t.Fatalf("Next after an instance came back: %v", ids(got))
	}
}

// The Discovery's WatchServices returns the whole catalog, then every change, without the
// namespaced forms.
func TestDiscoveryWatchServices(t *testing.T) {
	c := newFakeCatalog()
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"))
	c.set("web", instance("web", "web-0", "10.0.0.2", "shop"))
	tr := startTier(t, "127.0.0.1:0", c)
	d := newDiscovery(t, tr.addr)
	w, err := d.WatchServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	describe := func(m map[string][]*kuberegistry.ServiceInstance) string {
		var parts []string
		for name, instances := range m {
			parts = append(parts, name+"="+strings.Join(ids(instances), ","))
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	m, err := w.Next()
	if err != nil || describe(m) != "cart=cart-0 web=web-0" {
		t.Fatalf("first Next = %s, %v", describe(m), err)
	}
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"), instance("cart", "cart-1", "10.0.0.3", "shop"))
	c.set("web")
	deadline := time.Now().Add(5 * time.Second)
	for describe(m) != "cart=cart-0,cart-1" {
		if time.Now().After(deadline) {
			t.Fatalf("catalog is %s, want cart=cart-0,cart-1", describe(m))
		}
		if m, err = w.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after Stop: %v, want context.Canceled", err)
	}
}

// Streams opened before the catalogs are served wait for them: a client never hears of an empty
// tier. Run then ends every stream when it returns.
func TestStreamsWaitForTheFirstState(t *testing.T) {
	c := newFakeCatalog()
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"))
	s, err := NewServer([]kuberegistry.Catalog{c})
	if err != nil {
		t.Fatal(err)
	}
	tr := serveUnstarted(t, s)
	d := newDiscovery(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := d.GetService(ctx, "cart"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetService before Run: %v, want a deadline while the stream waits", err)
	}
	if s.Synced() {
		t.Error("Synced before Run")
	}
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(runCtx) }()
	got, err := d.GetService(context.Background(), "cart")
	if err != nil || !slices.Equal(ids(got), []string{"cart-0"}) {
		t.Fatalf("GetService after Run = %v, %v", ids(got), err)
	}
	if !s.Synced() {
		t.Error("not Synced once served")
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run: %v, want ErrAlreadyRun", err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Errorf("Run: %v", err)
	}
	if s.Synced() {
		t.Error("Synced after Run returned")
	}
	waitFor(t, "the streams to end with Run", func() bool { return s.Stats().Streams == 0 })
}

// serveUnstarted serves s on a loopback port without running it; it returns the address.
func serveUnstarted(t *testing.T, s *Server) string {
	t.Helper()
	g := grpc.NewServer(GRPCServerOptions()...)
	s.Register(g)
	ln := listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(ln)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
	})
	return ln.Addr().String()
}

// Run fails when a catalog cannot be watched, naming it.
func TestRunFailsForAnUnstartedCatalog(t *testing.T) {
	c := newFakeCatalog()
	c.failWatch = kuberegistry.ErrNotStarted
	s, err := NewServer([]kuberegistry.Catalog{newFakeCatalog(), c})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if !errors.Is(err, kuberegistry.ErrNotStarted) || !strings.Contains(err.Error(), "catalog 1") {
		t.Errorf("Run: %v, want ErrNotStarted naming catalog 1", err)
	}
}

// The per-type services answer too, for clients that do not use ADS.
func TestPerTypeServices(t *testing.T) {
	c := newFakeCatalog()
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"))
	tr := startTier(t, "127.0.0.1:0", c)
	conn := dial(t, tr.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := endpointservice.NewEndpointDiscoveryServiceClient(conn).StreamEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoverygrpc.DiscoveryRequest{Node: &corev3.Node{Id: "envoy"}, ResourceNames: []string{"cart"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResources()) != 1 {
		t.Fatalf("response %v: want the assignment of cart", resp)
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := resp.GetResources()[0].UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	instances, err := instancesFrom(cla)
	if err != nil || !slices.Equal(ids(instances), []string{"cart-0"}) {
		t.Errorf("assignment of cart: %v, %v", ids(instances), err)
	}
}
