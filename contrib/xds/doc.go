// Package xds serves kuberegistry catalogs over xDS, so that a whole fleet shares one watch of
// the API server: the tier (a Server, usually the cmd/kuberegistry-xds program) follows the
// catalogs, and clients read it over ADS with no Kubernetes credentials.
//
//   - grpc-go clients dial "xds:///greeter" with no code of ours: import
//     google.golang.org/grpc/xds and point grpc-go at the tier with a bootstrap (see Bootstrap).
//   - Other programs read the tier through a Discovery, a kuberegistry.Catalog over ADS that
//     returns the instances exactly as GetService returns them on the tier.
//
// # Resources
//
// For every service the catalogs serve, under its plain name ("greeter") and under the
// namespaced form the library's naming rule accepts ("greeter.shop", for the instances of
// greeter in namespace shop), the Server serves four resources of that name:
//
//   - a Listener: an API listener whose HttpConnectionManager fetches the RouteConfiguration of
//     the same name by RDS over ADS, with the router filter;
//   - a RouteConfiguration: one virtual host for every domain, routing everything to the
//     Cluster of the same name;
//   - a Cluster: EDS over ADS under the same name, ROUND_ROBIN; its metadata
//     (ServiceMetadataKey) says whether the name is a namespaced form and has instances;
//   - a ClusterLoadAssignment: one HEALTHY LbEndpoint per instance at its grpc:// endpoint (else
//     its first endpoint; the other grpc:// endpoints of a dual-stack pod are additional
//     addresses), one locality per zone (kuberegistry.MetadataKeyZone) weighted by its number of
//     endpoints, and the whole instance in the endpoint's metadata (InstanceMetadataKey).
//
// A service that loses its last instance keeps its resources, with an empty assignment, for as
// long as the Server runs: a grpc-go client that holds it fails its calls with UNAVAILABLE until
// instances come back, rather than erroring its channel. Likewise, a name a client asks a
// Listener for that the Server does not serve (a service not deployed yet) is served at once,
// empty, if it is a valid service name: grpc-go fails its calls fast instead of waiting 15
// seconds for the listener to be declared missing, and follows the service when it appears. The
// Server never removes a resource: the names it holds are those that had instances or were asked
// for since it started.
//
// When two catalogs serve the same name (a registered service and a plain Service, say), the
// first catalog given to NewServer that has instances of it wins, and the conflict is logged
// once.
package xds
