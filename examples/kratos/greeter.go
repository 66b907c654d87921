package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-kratos/kratos/v2"
	"github.com/go-kratos/kratos/v2/registry"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The greeter, written by hand so that the example needs no code generation: over gRPC SayHello
// answers the server's name, and so does GET /hello over HTTP. A real service would use
// kratos-generated stubs; the registry does not care.
const sayHelloMethod = "/kuberegistry.example.Greeter/SayHello"

var greeterService = grpc.ServiceDesc{
	ServiceName: "kuberegistry.example.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "SayHello",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			name := srv.(string)
			handle := func(context.Context, any) (any, error) { return wrapperspb.String(name), nil }
			if intercept == nil {
				return handle(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: sayHelloMethod}, handle)
		},
	}},
}

// newGreeterApp returns the go-kratos application of the greeter: a gRPC and an HTTP server,
// registered with registrar once they listen.
func newGreeterApp(name, grpcAddr, httpAddr string, registrar registry.Registrar) *kratos.App {
	gs := kgrpc.NewServer(kgrpc.Address(grpcAddr))
	gs.RegisterService(&greeterService, name)
	hs := khttp.NewServer(khttp.Address(httpAddr))
	hs.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
	})
	return kratos.New(
		kratos.ID(name),
		kratos.Name("greeter"),
		kratos.Version("v1.0.0"),
		kratos.Metadata(map[string]string{"example": "kratos"}),
		kratos.Server(gs, hs),
		kratos.Registrar(registrar),
	)
}

// sayHelloGRPC calls the greeter over gRPC and returns who answered.
func sayHelloGRPC(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, sayHelloMethod, wrapperspb.String("hi"), out); err != nil {
		return "", err
	}
	return out.Value, nil
}

// sayHelloHTTP calls the greeter over HTTP and returns who answered.
func sayHelloHTTP(ctx context.Context, c *khttp.Client) (string, error) {
	var reply struct {
		Name string `json:"name"`
	}
	if err := c.Invoke(ctx, http.MethodGet, "/hello", nil, &reply); err != nil {
		return "", err
	}
	return reply.Name, nil
}
