package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/kuberegistry/kuberegistry"
	kuberegistrykratos "github.com/kuberegistry/kuberegistry/contrib/kratos"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// runServer runs the greeter application in the pod it runs in, registered through
// kratos.Registrar, until SIGTERM; kratos.App deregisters before it stops its servers.
func runServer(kubeconfig, grpcAddr, httpAddr string) error {
	client, err := clusterClient(kubeconfig)
	if err != nil {
		return err
	}
	reg, err := kuberegistry.New(client) // the pod from POD_NAME and POD_NAMESPACE
	if err != nil {
		return err
	}
	defer reg.Close()
	registrar, err := kuberegistrykratos.New(reg)
	if err != nil {
		return err
	}
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	return newGreeterApp(name, grpcAddr, httpAddr, registrar).Run()
}

// runClient calls the greeter over gRPC and HTTP once a second until ctx ends.
func runClient(ctx context.Context, kubeconfig string) error {
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
	discovery, err := kuberegistrykratos.New(reg)
	if err != nil {
		return err
	}
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint("discovery:///greeter"), kgrpc.WithDiscovery(discovery))
	if err != nil {
		return err
	}
	defer conn.Close()
	// The HTTP client follows the service for as long as this context lives.
	hc, err := khttp.NewClient(ctx, khttp.WithEndpoint("discovery:///greeter"), khttp.WithDiscovery(discovery))
	if err != nil {
		return err
	}
	defer hc.Close()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		viaGRPC, grpcErr := sayHelloGRPC(callCtx, conn)
		viaHTTP, httpErr := sayHelloHTTP(callCtx, hc)
		cancel()
		log.Printf("gRPC: %s %v; HTTP: %s %v", viaGRPC, orNothing(grpcErr), viaHTTP, orNothing(httpErr))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func orNothing(err error) any {
	if err == nil {
		return ""
	}
	return err
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
