// Command kratos is a go-kratos greeter — one application serving gRPC and HTTP — and its
// clients, with kuberegistry as the go-kratos registry (contrib/kratos): the application
// registers its pod through kratos.Registrar, and the clients dial "discovery:///greeter".
//
// With no flag it runs a demo in memory, on client-go's fake clientset: greeter applications run
// on 127.0.0.1, each registered in its own fake pod, and a go-kratos gRPC client and HTTP client
// print who answers while one pod stops being ready and another application starts.
//
//	go run ./examples/kratos
//
// In a cluster, run the same binary as the service and as the client:
//
//	kratos -mode=server   # gRPC on :9000, HTTP on :8000; its pod from the Downward API (POD_NAME, POD_NAMESPACE)
//	kratos -mode=client
//
// On SIGTERM the application deregisters (kratos.App does it before stopping its servers). The
// server's service account needs the registrar Role of examples/deploy (patch pods) and, with the
// admission policy there, a registrar ConfigMap that lists greeter; the client's, the discovery
// Role (list and watch pods).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	mode := flag.String("mode", "demo", "demo (in memory), server or client")
	grpcAddr := flag.String("grpc-addr", ":9000", "server: the address to serve gRPC on")
	httpAddr := flag.String("http-addr", ":8000", "server: the address to serve HTTP on")
	kubeconfig := flag.String("kubeconfig", "", "server, client: a kubeconfig (default: in-cluster)")
	flag.Parse()

	var err error
	switch *mode {
	case "demo":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err = runDemo(ctx, os.Stdout)
	case "server":
		err = runServer(*kubeconfig, *grpcAddr, *httpAddr) // kratos.App handles SIGTERM itself
	case "client":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err = runClient(ctx, *kubeconfig)
	default:
		err = fmt.Errorf("unknown -mode %q: want demo, server or client", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kratos example:", err)
		os.Exit(1)
	}
}
