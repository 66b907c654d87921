// Package kratos adapts kuberegistry to go-kratos: New returns a Registry that is both a
// go-kratos registry.Registrar, for kratos.Registrar, and a registry.Discovery, for the
// WithDiscovery options of go-kratos's gRPC and HTTP clients and their "discovery:///<name>"
// targets.
//
//	reg, err := kuberegistry.New(client)             // the pod's identity from the Downward API
//	if err != nil { … }
//	defer reg.Close()
//	if err := reg.Start(ctx); err != nil { … }        // discovery needs a started registry
//	r, err := kuberegistrykratos.New(reg)
//	app := kratos.New(kratos.Name("greeter"), kratos.Server(srv), kratos.Registrar(r))
//	conn, err := grpc.DialInsecure(ctx, grpc.WithEndpoint("discovery:///greeter"), grpc.WithDiscovery(r))
//
// Import it under another name, such as kuberegistrykratos, next to go-kratos's own kratos
// package.
//
// # Instances
//
// Instances are converted field by field (ID, Name, Version, Metadata, Endpoints) in both
// directions, and always copied: kuberegistry's instances are snapshots shared by every caller,
// and go-kratos changes the instances it is given (ServiceInstance.Equal sorts their endpoints in
// place). Discovered endpoints carry the pod's IPs, not the host the process registered, with the
// port, scheme and query it registered (go-kratos's "?isSecure=true" included).
//
// # Watchers
//
// A Watcher's first Next returns the current set, possibly empty; each later Next blocks until
// the set changes. Once the watcher is stopped, its context ends or the registry is closed, Next
// returns an error that matches context.Canceled: go-kratos's resolvers end their loop on that
// error only, and retry every other error forever, once a second.
//
// go-kratos's gRPC and HTTP resolvers refuse an empty set ("Zero endpoint found, refused to
// write") and keep the last non-empty one: when the last instance of a service leaves
// discovery, their clients keep its address, and fail fast only once that server is gone. Use
// contrib/grpc's resolver for clients that must stop at once.
package kratos
