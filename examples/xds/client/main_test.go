package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes/fake"
)

// helperEnv makes the test binary run the client program instead of the tests: grpc-go reads
// GRPC_XDS_BOOTSTRAP once, when the process starts, so the client runs in a process of its own,
// started with the variable set, exactly as in a pod.
const helperEnv = "KUBEREGISTRY_XDS_CLIENT_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(helperEnv); ok {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := run(ctx, strings.Fields(args), os.Stdout)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// The program, given only a bootstrap file, reaches both pods of the greeter through a tier
// served in process over a fake cluster: the whole path a client in examples/xds takes.
func TestClientCallsThroughTheTier(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	client := fake.NewClientset()
	for _, name := range []string{"greeter-a", "greeter-b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		serveCtx, stop := context.WithCancel(context.Background())
		go func() { served <- serveGreeterOn(serveCtx, ln, name, 0) }()
		t.Cleanup(func() { stop(); <-served })
		kuberegistrytest.ReadyPod(t, client, "shop", name, &kuberegistry.ServiceInstance{
			Name: "greeter", Endpoints: []string{"grpc://" + ln.Addr().String()},
		})
	}
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "tier-0")
	kuberegistrytest.WaitForInstances(t, reg, "greeter", "greeter-a", "greeter-b")
	tierAddr := serveTier(t, reg)

	bootstrap, err := xds.Bootstrap(xds.BootstrapConfig{ServerURIs: []string{"passthrough:///" + tierAddr}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(path, bootstrap, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+path, helperEnv+"=-count=10 -interval=20ms -name=test")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for _, want := range []string{"hello test, from greeter-a", "hello test, from greeter-b"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in the client's output (round robin over both pods):\n%s", want, out)
		}
	}
}

// Without a bootstrap file the program says what to set, before dialing.
func TestClientNeedsABootstrap(t *testing.T) {
	if os.Getenv("GRPC_XDS_BOOTSTRAP") != "" || os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") != "" {
		t.Skip("the environment sets a bootstrap")
	}
	err := run(t.Context(), []string{"-count=1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "GRPC_XDS_BOOTSTRAP is not set") {
		t.Fatalf("run = %v, want an error naming GRPC_XDS_BOOTSTRAP", err)
	}
}

// serveTier serves reg over xDS on a loopback port until the test ends, and returns the address.
func serveTier(t *testing.T, reg kuberegistry.Catalog) string {
	t.Helper()
	server, err := xds.NewServer([]kuberegistry.Catalog{reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	server.Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	ran, served := make(chan error, 1), make(chan error, 1)
	go func() { ran <- server.Run(ctx) }()
	go func() { served <- g.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		g.Stop()
		if err := <-ran; err != nil {
			t.Errorf("xDS server Run: %v", err)
		}
		<-served
	})
	deadline := time.Now().Add(10 * time.Second)
	for !server.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("the xDS server did not sync within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ln.Addr().String()
}
