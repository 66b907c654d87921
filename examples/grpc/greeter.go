package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The greeter service, written by hand so that the example needs no code generation: SayHello
// answers "hello <name>, from <server>". A real service would use protoc-generated stubs; the
// resolver does not care.
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
			server := srv.(string)
			handle := func(_ context.Context, req any) (any, error) {
				return wrapperspb.String("hello " + req.(*wrapperspb.StringValue).Value + ", from " + server), nil
			}
			if intercept == nil {
				return handle(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: sayHelloMethod}, handle)
		},
	}},
}

// serveGreeter serves the greeter as server on ln until the returned server is stopped.
func serveGreeter(ln net.Listener, server string) *grpc.Server {
	s := grpc.NewServer()
	s.RegisterService(&greeterService, server)
	go func() { _ = s.Serve(ln) }()
	return s
}

// sayHello calls the greeter through conn and returns its answer.
func sayHello(ctx context.Context, conn *grpc.ClientConn, name string) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, sayHelloMethod, wrapperspb.String(name), out); err != nil {
		return "", err
	}
	return out.Value, nil
}
