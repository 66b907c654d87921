// Command client calls the greeter service through the kuberegistry xDS tier, with nothing of
// kuberegistry and no Kubernetes credentials: it dials "xds:///greeter", and grpc-go's own xDS
// resolver (imported for its side effect below) asks the tier for the greeter's listener, route,
// cluster and endpoints, balances calls over the ready pods round-robin, and follows them as they
// change. Where the tier is comes from the bootstrap file that the GRPC_XDS_BOOTSTRAP environment
// variable names (kuberegistry-xds -print-bootstrap writes it; examples/xds mounts it from a
// ConfigMap).
//
//	GRPC_XDS_BOOTSTRAP=/etc/xds/bootstrap.json client            # one call a second until SIGTERM
//	client -serve=:9000                                          # serve the greeter instead
//
// With -serve it is the greeter itself: the hand-written service of examples/grpc (method
// /kuberegistry.example.Greeter/SayHello, a StringValue in and out), so that examples/xds needs
// no other image. The greeter does not register: its Deployment carries the kratos-service-*
// labels by hand, so it needs no Kubernetes credentials either.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

// run parses the flags and calls (or, with -serve, serves) the greeter until ctx ends, or until
// -count calls have succeeded.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	target := fs.String("target", "xds:///greeter", "the gRPC target to call")
	name := fs.String("name", "xds-client", "the name to greet")
	interval := fs.Duration("interval", time.Second, "time between calls")
	count := fs.Int("count", 0, "stop after this many answers (0: call until SIGTERM)")
	serve := fs.String("serve", "", "serve the greeter on this address (e.g. :9000) instead of calling it")
	drain := fs.Duration("drain", 5*time.Second, "with -serve: how long to keep serving after SIGTERM, while clients move away")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve != "" {
		hostname, _ := os.Hostname()
		return serveGreeter(ctx, *serve, hostname, *drain, out)
	}
	if *interval <= 0 || *count < 0 {
		return fmt.Errorf("-interval must be positive and -count at least 0")
	}
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		return fmt.Errorf("GRPC_XDS_BOOTSTRAP is not set: point it at the bootstrap file (kuberegistry-xds -print-bootstrap writes one)")
	}
	return callGreeter(ctx, *target, *name, *interval, *count, out)
}
