package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers
)

// The greeter of examples/grpc, written by hand so that the example needs no code generation:
// SayHello answers "hello <name>, from <server>". A real service uses protoc-generated stubs; the
// xDS resolver does not care.
const sayHelloMethod = "/kuberegistry.example.Greeter/SayHello"

// callGreeter dials target and calls SayHello every interval until ctx ends or count calls have
// been answered (count 0: no limit). A failed call is printed and the next one tried: while the
// greeter has no ready pod, calls fail with Unavailable and succeed again once one is back.
func callGreeter(ctx context.Context, target, name string, interval time.Duration, count int, out io.Writer) error {
	// The tier configures no TLS for the greeter's endpoints: plaintext, as examples/grpc.
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dialing %s: %w", target, err)
	}
	defer conn.Close()

	tick := time.NewTicker(interval)
	defer tick.Stop()
	answered := 0
	for {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reply := new(wrapperspb.StringValue)
		err := conn.Invoke(callCtx, sayHelloMethod, wrapperspb.String(name), reply)
		cancel()
		if err != nil {
			fmt.Fprintf(out, "call failed: %v\n", err)
		} else {
			fmt.Fprintln(out, reply.GetValue())
			answered++
			if count > 0 && answered == count {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// greeterService is the greeter's service description, the server side of sayHelloMethod.
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
				return wrapperspb.String("hello " + req.(*wrapperspb.StringValue).GetValue() + ", from " + server), nil
			}
			if intercept == nil {
				return handle(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: sayHelloMethod}, handle)
		},
	}},
}

// serveGreeter serves the greeter as server on addr until ctx ends; then it serves on for drain,
// while the tier drops this pod (it is terminating) and clients move to the other pods, and stops
// gracefully.
func serveGreeter(ctx context.Context, addr, server string, drain time.Duration, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving the greeter as %s on %s\n", server, ln.Addr())
	return serveGreeterOn(ctx, ln, server, drain)
}

// serveGreeterOn serves the greeter on ln; see serveGreeter.
func serveGreeterOn(ctx context.Context, ln net.Listener, server string, drain time.Duration) error {
	s := grpc.NewServer()
	s.RegisterService(&greeterService, server)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	select {
	case <-ctx.Done():
		time.Sleep(drain)
		s.GracefulStop()
		<-done
		return nil
	case err := <-done:
		return err
	}
}
