package xds

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// testLogger logs to the test, so that a failing test shows what the tier and clients said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// tier is a Server of catalogs served on a loopback port, stopped at cleanup.
type tier struct {
	server *Server
	addr   string
	stop   func()
}

// startTier serves catalogs on addr ("127.0.0.1:0" for any port) and waits until it is synced.
func startTier(t testing.TB, addr string, catalogs ...kuberegistry.Catalog) *tier {
	t.Helper()
	s, err := NewServer(catalogs, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, addr)
	g := grpc.NewServer(GRPCServerOptions()...)
	s.Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	served := make(chan struct{})
	go func() { ran <- s.Run(ctx) }()
	go func() {
		defer close(served)
		_ = g.Serve(ln)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		g.Stop()
		<-served
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the tier to sync", s.Synced)
	return &tier{server: s, addr: ln.Addr().String(), stop: stop}
}

// dial returns a client connection to addr, closed at cleanup.
func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// newDiscovery reads the tier at addr, closed at cleanup.
func newDiscovery(t testing.TB, addr string, opts ...DiscoveryOption) *Discovery {
	t.Helper()
	conn := dial(t, addr)
	d, err := NewDiscovery(conn, append([]DiscoveryOption{WithNodeID("test"), WithDiscoveryLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// waitFor polls cond until it holds, failing the test after ten seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextWithin calls Next and fails the test unless it returns within d.
func nextWithin(t testing.TB, w kuberegistry.Watcher, d time.Duration) []*kuberegistry.ServiceInstance {
	t.Helper()
	type result struct {
		instances []*kuberegistry.ServiceInstance
		err       error
	}
	ch := make(chan result, 1)
	go func() {
		instances, err := w.Next()
		ch <- result{instances, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.instances
	case <-time.After(d):
		_ = w.Stop()
		r := <-ch
		if !errors.Is(r.err, context.Canceled) {
			return r.instances
		}
		t.Fatalf("Next did not return within %v", d)
		return nil
	}
}

// ids returns the IDs of instances, in order.
func ids(instances []*kuberegistry.ServiceInstance) []string {
	out := make([]string, len(instances))
	for i, inst := range instances {
		out[i] = inst.ID
	}
	return out
}

// listen listens on addr, retrying for a while when the port is still held (a tier restarted on
// the port of the previous one).
func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	waitFor(t, "listening on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}
