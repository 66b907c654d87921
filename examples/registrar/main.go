// Command registrar is a tiny HTTP service that registers itself in the pod it runs in, and
// deregisters before it stops, so that clients stop sending it traffic first.
//
// It expects the Downward API variables POD_NAME, POD_NAMESPACE and POD_IP (see
// examples/deploy/deployment.yaml) and a service account bound to the registrar Role there. With
// the admission policy of examples/deploy, it may change only its own pod, and only register the
// services its ConfigMap (examples/deploy/registrar.yaml) lists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	addr := flag.String("addr", ":8080", "address to serve HTTP on")
	name := flag.String("service", "hello", "service name to register")
	drain := flag.Duration("drain", 5*time.Second, "how long to keep serving after deregistering, while clients catch up")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *name, *drain); err != nil {
		slog.Error("registrar", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, name string, drain time.Duration) error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("not running in a pod: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	reg, err := kuberegistry.New(client) // pod identity from POD_NAME and POD_NAMESPACE
	if err != nil {
		return err
	}
	defer reg.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	hostname, _ := os.Hostname()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", hostname)
	}), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// The host part is informative: discovery uses the pod's IPs from its status.
	instance := &kuberegistry.ServiceInstance{
		ID:        hostname,
		Name:      name,
		Version:   "v1.0.0",
		Metadata:  map[string]string{"started": time.Now().UTC().Format(time.RFC3339)},
		Endpoints: []string{"http://" + net.JoinHostPort(os.Getenv("POD_IP"), port)},
	}
	regCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = reg.Register(regCtx, instance)
	cancel()
	if err != nil {
		_ = srv.Close()
		<-served
		var denied *kuberegistry.PolicyError
		if errors.As(err, &denied) {
			// Not retried: the cluster's policy will refuse it again. The fix is in the cluster.
			return fmt.Errorf("the cluster's %s %q refused the registration (is %q in this service account's registrar ConfigMap?): %w",
				denied.Kind, denied.Policy, name, err)
		}
		return err
	}
	slog.Info("registered", "service", name, "endpoint", instance.Endpoints[0])

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Leave discovery first, keep serving while clients notice, then stop.
	deregCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Deregister(deregCtx, instance); err != nil {
		slog.Warn("deregister failed; the pod leaves discovery when it turns not ready", "error", err)
	}
	time.Sleep(drain)
	if err := srv.Shutdown(deregCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
