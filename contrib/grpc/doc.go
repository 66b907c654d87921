// Package grpc is a gRPC name resolver backed by kuberegistry: a ClientConn dialed to
// "kubernetes:///greeter" balances over the ready pods of service greeter, and follows them as
// they become ready, stop being ready, terminate or are replaced, event by event.
//
//	reg, err := kuberegistry.New(client)                 // discovers the pods of its namespace
//	if err != nil { … }
//	defer reg.Close()
//	if err := reg.Start(ctx); err != nil { … }           // the resolver needs a started registry
//	builder, err := kuberegistrygrpc.NewBuilder(reg)
//	conn, err := grpc.NewClient("kubernetes:///greeter", builder.DialOption(),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// Import it under another name, such as kuberegistrygrpc, next to google.golang.org/grpc.
// Nothing is registered by importing it: pass Builder.DialOption to each ClientConn, or call
// resolver.Register(builder) once at start-up to make the scheme global.
//
// # Targets
//
// "kubernetes:///<service>" resolves the service in the registry's scope (the namespace it
// watches). "kubernetes://<namespace>/<service>" resolves the name "<service>.<namespace>" through
// the same Discovery, for registries that serve names qualified by their namespace. WithScheme
// changes "kubernetes".
//
// # Addresses
//
// Each ready instance becomes one resolver.Endpoint, whose addresses are the instance's endpoints
// of the first scheme in WithEndpointSchemes that it has (default: "grpc", then "grpcs"; an
// endpoint "grpc://…?isSecure=true", go-kratos's way of saying TLS, counts as grpcs): one per pod
// IP, so a dual-stack pod is one endpoint with two addresses. Instances without such an endpoint
// are left out. Each address and endpoint carries the instance's ID, name, version and metadata
// in its attributes (InstanceFromAddress, InstanceFromEndpoint). These attributes take part in
// the identity of a gRPC subchannel: a pod whose version or metadata changes is dialed anew.
//
// # Changes and the empty set
//
// Every change Watch reports is pushed to the ClientConn with UpdateState; nothing is polled, and
// ResolveNow does nothing. When the service has no ready instance, the resolver pushes an empty
// state (and then reports an error naming the service): gRPC's load-balancing policies drop their
// connections and fail RPCs at once with codes.Unavailable, unless the call asked to wait for
// ready. A resolver error alone would not do: pick_first and round_robin ignore an error while
// they hold addresses from an earlier update, and would keep sending to pods that are gone.
package grpc
