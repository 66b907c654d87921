package xds

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A greeter service written by hand, so that the tests need no generated code: SayHello answers
// with the name of the server that served it.
const sayHello = "/kuberegistry.test.Greeter/SayHello"

var greeterService = grpc.ServiceDesc{
	ServiceName: "kuberegistry.test.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "SayHello",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return wrapperspb.String(srv.(string)), nil
		},
	}},
}

// startGreeter serves the greeter as name on a loopback port, stopped with the test; it returns
// the port.
func startGreeter(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&greeterService, name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// hello calls SayHello and returns who answered.
func hello(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, sayHello, wrapperspb.String("hi"), out, opts...); err != nil {
		return "", err
	}
	return out.Value, nil
}
