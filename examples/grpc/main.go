// Command grpc is a greeter service and its client, load-balanced by gRPC's round_robin over the
// ready pods of the service, which the kuberegistry resolver (contrib/grpc) follows as they
// change.
//
// With no flag it runs a demo in memory, on client-go's fake clientset: three greeter servers
// listen on 127.0.0.1, each registered in its own fake pod; a client dials
// "kubernetes:///greeter" and prints who answers while one pod terminates, another is added, and
// finally every server deregisters, when calls fail at once with Unavailable.
//
//	go run ./examples/grpc
//
// In a cluster, run the same binary as the server and as the client:
//
//	grpc -mode=server -addr=:9000   # registers its pod (Downward API POD_NAME, POD_NAMESPACE, POD_IP)
//	grpc -mode=client -target=kubernetes:///greeter
//
// The server deregisters on SIGTERM and keeps serving for -drain while clients let go of it. Its
// service account needs the registrar Role of examples/deploy (patch pods) and, with the admission
// policy there, a registrar ConfigMap that lists greeter; the client's, the discovery Role (list
// and watch pods).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "demo", "demo (in memory), server or client")
	addr := flag.String("addr", ":9000", "server: the address to serve gRPC on")
	service := flag.String("service", "greeter", "server: the service name to register")
	drain := flag.Duration("drain", 5*time.Second, "server: how long to keep serving after deregistering")
	target := flag.String("target", "kubernetes:///greeter", "client: the target to dial")
	kubeconfig := flag.String("kubeconfig", "", "server, client: a kubeconfig (default: in-cluster)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch *mode {
	case "demo":
		err = runDemo(ctx, os.Stdout)
	case "server":
		err = runServer(ctx, *kubeconfig, *addr, *service, *drain)
	case "client":
		err = runClient(ctx, *kubeconfig, *target)
	default:
		err = fmt.Errorf("unknown -mode %q: want demo, server or client", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc example:", err)
		os.Exit(1)
	}
}
