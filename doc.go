// Package kuberegistry makes Kubernetes itself the service registry of a fleet: a service
// registers by labelling and annotating its own pod, and clients discover the ready instances of
// a service from one shared pod informer.
//
// # The contract on pods
//
// A pod is an instance of service S when its label kratos-service-app is S. Its other keys are
// those go-kratos uses, so pods labelled for go-kratos, by Register or by hand in a Deployment,
// work unchanged:
//
//	labels:
//	  kratos-service-app: greeter                  # the service name (a valid label value)
//	  kratos-service-id: 56991810-c77f-4a95-8190-393efa9c1a61
//	  kratos-service-version: v1.4.0
//	annotations:
//	  kratos-service-protocols: '{"8000":"http","9000":"grpc"}'   # port → URL scheme
//	  kratos-service-metadata: '{"region":"eu","zone":"eu-1"}'    # JSON object of strings
//
// An instance has one endpoint per registered port and per pod IP (status.podIPs; IPv6 in
// brackets). Without the protocols annotation, container ports named after a protocol ("http",
// "grpc", "grpc-web", "https-admin", …) are the registered ports; an unnamed port has no endpoint.
//
// Values a label cannot hold, such as the version "v1.2.3+build.7" or an ID longer than 63
// characters, are stored exactly in the annotations kuberegistry.io/service-version and
// kuberegistry.io/service-id, the label holding a label-safe form; discovery reads the annotation.
// Query strings given at Register, such as go-kratos's "?isSecure=true", are kept in
// kuberegistry.io/endpoint-params and appear on the discovered endpoints.
//
// # Readiness
//
// GetService and Watch return only pods that can take traffic: phase Running, condition Ready
// True, no deletion timestamp, at least one IP. When a service has no such pod, its terminating
// pods that are still Ready serve out their grace period. WithIncludeNotReady serves every live
// pod. A pod whose registration is malformed is skipped and logged once; its service's other pods
// are served.
//
// # Scope and catalog
//
// A Registry discovers one namespace (by default its own), several (WithNamespaces, one informer
// each) or all. Services lists the services with instances; WatchServices follows the whole
// catalog. EndpointSliceDiscovery discovers plain Kubernetes Services that never registered,
// through their EndpointSlices, behind the same Discovery interface.
//
// # Concurrency and ownership
//
// A Registry is safe for concurrent use. Slices and instances it returns are shared snapshots:
// treat them as read-only, or Clone them. Watchers never slow the informer: each holds one pending
// wake-up at most and reads the latest set when it wakes, so a burst of changes coalesces and a
// watcher that is never read costs O(1) memory. Close stops everything Start began and waits for
// it.
package kuberegistry
