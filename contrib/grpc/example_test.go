package grpc_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/kuberegistry/kuberegistry"
	kuberegistrygrpc "github.com/kuberegistry/kuberegistry/contrib/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A gRPC server registers its pod; a client dials "kubernetes:///<service>" and is balanced
// over the ready pods. The pod lives in an in-memory cluster and its server on 127.0.0.1.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The server: the health service stands for any gRPC service.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	server := grpc.NewServer()
	healthpb.RegisterHealthServer(server, health.NewServer())
	go func() { _ = server.Serve(ln) }()
	defer server.Stop()
	client := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "greeter-0"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	})
	self, _ := kuberegistry.New(client, kuberegistry.WithPod("shop", "greeter-0"))
	defer self.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := self.Register(ctx, &kuberegistry.ServiceInstance{Name: "greeter", Endpoints: []string{fmt.Sprintf("grpc://:%d", port)}}); err != nil {
		panic(err)
	}

	// The client: a started registry, the resolver, round_robin.
	reg, _ := kuberegistry.New(client, kuberegistry.WithNamespace("shop"))
	defer reg.Close()
	if err := reg.Start(ctx); err != nil {
		panic(err)
	}
	builder, err := kuberegistrygrpc.NewBuilder(reg)
	if err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient("kubernetes:///greeter", builder.DialOption(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}

// A load-balancing policy or an interceptor can read the instance behind an address.
func ExampleInstanceFromAddress() {
	var addr resolver.Address // given by gRPC, e.g. in balancer.SubConnInfo
	if in, ok := kuberegistrygrpc.InstanceFromAddress(addr); ok {
		fmt.Println(in.ID, in.Version, in.Metadata["zone"])
	} else {
		fmt.Println("not resolved by kuberegistry")
	}
	// Output: not resolved by kuberegistry
}
