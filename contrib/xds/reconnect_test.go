package xds

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
)

// When the tier restarts, a Discovery keeps serving the last sets while it is away, reconnects,
// and its watchers see what changed meanwhile, and nothing else.
func TestDiscoveryReconnectsWhenTheTierRestarts(t *testing.T) {
	c := newFakeCatalog()
	c.set("cart", instance("cart", "cart-0", "10.0.0.1", "shop"))
	first := startTier(t, "127.0.0.1:0", c)
	// grpc-go's own reconnection waits a second at first; the test has no time for that.
	conn := dial(t, first.addr, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: grpcbackoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
	}))
	d, err := NewDiscovery(conn, WithNodeID("test"), WithDiscoveryLogger(testLogger(t)),
		WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cart, err := d.Watch(context.Background(), "cart")
	if err != nil {
		t.Fatal(err)
	}
	defer cart.Stop()
	web, err := d.Watch(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	defer web.Stop()
	if got := nextWithin(t, cart, 5*time.Second); !slices.Equal(ids(got), []string{"cart-0"}) {
		t.Fatalf("first Next of cart: %v", ids(got))
	}
	if got := nextWithin(t, web, 5*time.Second); len(got) != 0 {
		t.Fatalf("first Next of web: %v", ids(got))
	}

	first.stop()
	c.set("cart", instance("cart", "cart-1", "10.0.0.2", "shop"))
	c.set("web", instance("web", "web-0", "10.0.0.3", "shop"))
	got, err := d.GetService(context.Background(), "cart")
	if err != nil || !slices.Equal(ids(got), []string{"cart-0"}) {
		t.Errorf("while the tier is away, GetService(cart) = %v, %v; want the last set", ids(got), err)
	}

	second := startTier(t, first.addr, c)
	if got := nextWithin(t, cart, 10*time.Second); !slices.Equal(ids(got), []string{"cart-1"}) {
		t.Errorf("cart after the restart: %v, want cart-1", ids(got))
	}
	if got := nextWithin(t, web, 10*time.Second); !slices.Equal(ids(got), []string{"web-0"}) {
		t.Errorf("web after the restart: %v, want web-0", ids(got))
	}
	waitFor(t, "the Discovery's stream on the new tier", func() bool { return second.server.Stats().Streams == 1 })
}
