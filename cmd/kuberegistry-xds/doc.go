// Command kuberegistry-xds is the shared discovery tier: it follows the services kuberegistry
// discovers in Kubernetes — pods registered with the kratos-service-* keys and, with -services,
// plain Services through their EndpointSlices — and serves them over xDS (ADS, and LDS, RDS, CDS
// and EDS), so that gRPC clients dial xds:///<service> with grpc-go's own xDS resolver, no
// Kubernetes credentials and no kuberegistry code, and other clients read it through
// contrib/xds's Discovery.
//
// Every replica holds one watch per namespace on the API server instead of one per client pod,
// and keeps no state of its own: run several behind one Service. A replica serves xDS once every
// source has listed, keeps serving the last known instances while the API server is unreachable,
// and on SIGTERM fails /readyz, stops accepting, lets the open streams end within
// -shutdown-timeout, then closes them.
//
//	kuberegistry-xds -namespaces=shop                     # in a pod: the service account's credentials
//	kuberegistry-xds -kubeconfig ~/.kube/config -namespaces=shop -http-listen=127.0.0.1:8080
//	kuberegistry-xds -print-bootstrap -server-uri dns:///kuberegistry-xds.shop.svc:18000 > bootstrap.json
//
// Run with -h for the flags; README.md beside this file covers the roles, the bootstrap file and
// the decisions behind them.
package main
