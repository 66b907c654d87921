package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/kuberegistry/kuberegistry"
	kuberegistrygrpc "github.com/kuberegistry/kuberegistry/contrib/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// roundRobin spreads calls over every ready pod; gRPC's default, pick_first, would use one.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// runServer serves the greeter in the pod it runs in and registers the pod, until ctx ends; then
// it deregisters, serves on for drain while clients let go of the pod, and stops.
func runServer(ctx context.Context, kubeconfig, addr, service string, drain time.Duration) error {
	client, err := clusterClient(kubeconfig)
	if err != nil {
		return err
	}
	reg, err := kuberegistry.New(client) // the pod from POD_NAME and POD_NAMESPACE
	if err != nil {
		return err
	}
	defer reg.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	srv := serveGreeter(ln, hostname)
	defer srv.Stop()
	instance := &kuberegistry.ServiceInstance{
		ID:      os.Getenv("POD_NAME"),
		Name:    service,
		Version: "v1.0.0",
		// The host is not stored: discovery uses the pod's IPs. The port and scheme are.
		Endpoints: []string{fmt.Sprintf("grpc://%s:%d", os.Getenv("POD_IP"), ln.Addr().(*net.TCPAddr).Port)},
	}
	if err := reg.Register(ctx, instance); err != nil {
		return err
	}
	log.Printf("serving %s on %s; registered", service, ln.Addr())
	<-ctx.Done()

	// Leave discovery first: clients stop sending here within moments of the patch.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Deregister(dctx, instance); err != nil {
		log.Printf("deregistering: %v", err)
	}
	log.Printf("deregistered; serving for %v more", drain)
	time.Sleep(drain)
	srv.GracefulStop()
	return nil
}

// runClient calls the greeter through the kuberegistry resolver once a second until ctx ends.
func runClient(ctx context.Context, kubeconfig, target string) error {
	client, err := clusterClient(kubeconfig)
	if err != nil {
		return err
	}
	reg, err := kuberegistry.New(client) // discovers the pods of its namespace
	if err != nil {
		return err
	}
	defer reg.Close()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reg.Start(startCtx); err != nil {
		return err
	}
	builder, err := kuberegistrygrpc.NewBuilder(reg)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(target, builder.DialOption(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(roundRobin))
	if err != nil {
		return err
	}
	defer conn.Close()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		answer, err := sayHello(callCtx, conn, "client")
		cancel()
		if err != nil {
			log.Printf("call failed: %v", err)
		} else {
			log.Print(answer)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// clusterClient connects with a kubeconfig, or from inside a pod.
func clusterClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no cluster (run in a pod, or pass -kubeconfig; with no -mode the demo runs in memory): %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}
