package xds_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// greeterPod is a running, ready pod of service greeter serving gRPC on port 9000, labelled by
// hand as a Deployment would label it.
func greeterPod(name, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   "shop",
			Name:        name,
			Labels:      map[string]string{kuberegistry.LabelsKeyServiceName: "greeter", kuberegistry.LabelsKeyServiceVersion: "v1"},
			Annotations: map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"9000":"grpc"}`},
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIPs:     []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

// The tier in a program of your own: a Registry serves its pods over xDS on a gRPC server. A
// client reads the tier with a Discovery (or, in a grpc-go program, dials xds:///greeter with a
// bootstrap from Bootstrap).
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The tier. In a cluster: kuberegistry.NewForConfig(cfg, kuberegistry.WithNamespace("shop")).
	client := fake.NewClientset(greeterPod("greeter-0", "10.0.0.1"), greeterPod("greeter-1", "10.0.0.2"))
	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace("shop"), kuberegistry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	if err := reg.Start(ctx); err != nil {
		panic(err)
	}
	tier, err := xds.NewServer([]kuberegistry.Catalog{reg})
	if err != nil {
		panic(err)
	}
	g := grpc.NewServer(xds.GRPCServerOptions()...)
	tier.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 2)
	go func() { served <- g.Serve(ln) }()
	go func() { served <- tier.Run(ctx) }()
	defer func() {
		g.Stop()
		cancel()
		<-served
		<-served
	}()

	// A client of the tier, with no Kubernetes credentials.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	d, err := xds.NewDiscovery(conn)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	for _, name := range []string{"greeter", "greeter.shop"} {
		instances, err := d.GetService(ctx, name)
		if err != nil {
			panic(err)
		}
		for _, in := range instances {
			fmt.Println(name, in.ID, in.Version, in.Endpoints)
		}
	}
	// Output:
	// greeter greeter-0 v1 [grpc://10.0.0.1:9000]
	// greeter greeter-1 v1 [grpc://10.0.0.2:9000]
	// greeter.shop greeter-0 v1 [grpc://10.0.0.1:9000]
	// greeter.shop greeter-1 v1 [grpc://10.0.0.2:9000]
}

// The bootstrap of a grpc-go client of the tier, for GRPC_XDS_BOOTSTRAP_CONFIG (or a file named
// by GRPC_XDS_BOOTSTRAP); with it, a program that imports google.golang.org/grpc/xds dials
// "xds:///greeter".
func ExampleBootstrap() {
	b, err := xds.Bootstrap(xds.BootstrapConfig{
		ServerURIs: []string{"kuberegistry-xds.infra.svc:18000"},
		NodeID:     "web-7d9f-x2",
		Insecure:   true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {
	//   "xds_servers": [
	//     {
	//       "server_uri": "kuberegistry-xds.infra.svc:18000",
	//       "channel_creds": [
	//         {
	//           "type": "insecure"
	//         }
	//       ],
	//       "server_features": [
	//         "xds_v3"
	//       ]
	//     }
	//   ],
	//   "node": {
	//     "id": "web-7d9f-x2"
	//   }
	// }
}
