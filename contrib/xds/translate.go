package xds

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The translation between a service's instances and its four xDS resources, pure: it reads
// nothing but its arguments, so that tables of literals test it.

const (
	// InstanceMetadataKey is the filter_metadata key of an LbEndpoint that holds the whole
	// instance it stands for (id, name, version, metadata, endpoints, and its position in the set),
	// from which Discovery rebuilds the instances exactly.
	InstanceMetadataKey = "kuberegistry.io/instance"
	// ServiceMetadataKey is the filter_metadata key of a Cluster that says whether the name is
	// the namespaced form of a service ("alias": "greeter.shop" for greeter in shop) and whether
	// it has instances ("serving"), so that Discovery lists services from CDS alone.
	ServiceMetadataKey = "kuberegistry.io/service"
	// unroutableSubZone names the locality of the instances that grpc-go must not dial: without a
	// usable address, or at an address another instance of the set already has (grpc-go rejects
	// a whole assignment with a duplicate address). The locality has no weight, so grpc-go
	// ignores it; Discovery still rebuilds its instances.
	unroutableSubZone = "kuberegistry.io/unroutable"
)

// Type URLs of the resources the tier serves, and of the router filter.
const (
	listenerType  = "type.googleapis.com/envoy.config.listener.v3.Listener"
	routeType     = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	clusterType   = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	endpointType  = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	routerTypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
)

// adsSource is the config source that tells a client to fetch a resource over the same ADS stream.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// listenerFor is the Listener that xds:///name resolves: an API listener whose
// HttpConnectionManager fetches the RouteConfiguration of the same name by RDS over ADS, with the
// router as its only filter.
func listenerFor(name string) (*listenerv3.Listener, error) {
	hcm := &hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: name,
			ConfigSource:    adsSource(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name: "envoy.filters.http.router",
			// An empty Router message encodes to no bytes: the Any needs no marshaling.
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: routerTypeURL}},
		}},
	}
	api, err := anypb.New(hcm)
	if err != nil {
		return nil, fmt.Errorf("encoding the HttpConnectionManager of listener %q: %w", name, err)
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: api}}, nil
}

// routeFor is the RouteConfiguration of name: one virtual host for every domain, whose only route
// sends everything to the cluster of the same name.
func routeFor(name string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ""}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
				}},
			}},
		}},
	}
}

// clusterFor is the Cluster of name: its endpoints come by EDS over ADS under the same name,
// balanced round robin. Its metadata says whether name is a namespaced form and whether it has
// instances (see ServiceMetadataKey).
func clusterFor(name string, alias, serving bool) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			ServiceMetadataKey: {Fields: map[string]*structpb.Value{
				"alias":   structpb.NewBoolValue(alias),
				"serving": structpb.NewBoolValue(serving),
			}},
		}},
	}
}

// clusterFlags reads what clusterFor wrote in a Cluster's metadata. A cluster without it (from
// another control plane) is a service of its own with instances.
func clusterFlags(c *clusterv3.Cluster) (alias, serving bool) {
	s := c.GetMetadata().GetFilterMetadata()[ServiceMetadataKey]
	if s == nil {
		return false, true
	}
	return s.GetFields()["alias"].GetBoolValue(), s.GetFields()["serving"].GetBoolValue()
}

// assignmentFor is the ClusterLoadAssignment of name: one HEALTHY LbEndpoint per instance, at
// the instance's address (see instanceAddresses), grouped in one locality per zone
// (kuberegistry.MetadataKeyZone) weighted by its number of endpoints, so that round robin across
// localities spreads calls evenly across instances. Every LbEndpoint carries the whole instance
// in its metadata (InstanceMetadataKey).
func assignmentFor(name string, instances []*kuberegistry.ServiceInstance) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	var unroutable *endpointv3.LocalityLbEndpoints
	taken := make(map[string]bool, len(instances))
	for i, inst := range instances {
		lb := &endpointv3.LbEndpoint{
			HealthStatus: corev3.HealthStatus_HEALTHY,
			Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				InstanceMetadataKey: instanceStruct(inst, i),
			}},
		}
		addrs := instanceAddresses(inst.Endpoints)
		routable := len(addrs) > 0
		for _, a := range addrs {
			if taken[a.String()] {
				routable = false
			}
		}
		if len(addrs) > 0 {
			ep := &endpointv3.Endpoint{Address: socketAddress(addrs[0])}
			for _, a := range addrs[1:] {
				ep.AdditionalAddresses = append(ep.AdditionalAddresses, &endpointv3.Endpoint_AdditionalAddress{Address: socketAddress(a)})
			}
			lb.HostIdentifier = &endpointv3.LbEndpoint_Endpoint{Endpoint: ep}
		}
		if !routable {
			if unroutable == nil {
				unroutable = &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{SubZone: unroutableSubZone}}
			}
			unroutable.LbEndpoints = append(unroutable.LbEndpoints, lb)
			continue
		}
		for _, a := range addrs {
			taken[a.String()] = true
		}
		zone := inst.Metadata[kuberegistry.MetadataKeyZone]
		loc := byZone[zone]
		if loc == nil {
			loc = &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: zone}}
			byZone[zone] = loc
			cla.Endpoints = append(cla.Endpoints, loc)
		}
		loc.LbEndpoints = append(loc.LbEndpoints, lb)
	}
	for _, loc := range cla.Endpoints {
		loc.LoadBalancingWeight = wrapperspb.UInt32(uint32(len(loc.LbEndpoints)))
	}
	if unroutable != nil {
		cla.Endpoints = append(cla.Endpoints, unroutable)
	}
	return cla
}

// hostPort is an endpoint's address.
type hostPort struct {
	host string
	port uint32
}

func (a hostPort) String() string {
	return net.JoinHostPort(a.host, strconv.FormatUint(uint64(a.port), 10))
}

func socketAddress(a hostPort) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       a.host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: a.port},
	}}}
}

// instanceAddresses returns where a gRPC client reaches an instance: its grpc:// endpoints (one
// per pod IP on a dual-stack pod: the first is the address, the others are additional addresses
// of the same endpoint), else its first endpoint with a host and a port; nil when it has none.
func instanceAddresses(endpoints []string) []hostPort {
	var first *hostPort
	var grpc []hostPort
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(u.Port(), 10, 16)
		if err != nil || port == 0 || u.Hostname() == "" {
			continue
		}
		a := hostPort{host: u.Hostname(), port: uint32(port)}
		if u.Scheme == "grpc" {
			if !slices.Contains(grpc, a) {
				grpc = append(grpc, a)
			}
		} else if first == nil {
			first = &a
		}
	}
	switch {
	case len(grpc) > 0:
		return grpc
	case first != nil:
		return []hostPort{*first}
	}
	return nil
}

// instanceStruct encodes an instance and its position in its set. Metadata and Endpoints are
// left out when nil, so that nil and empty survive the trip.
func instanceStruct(inst *kuberegistry.ServiceInstance, position int) *structpb.Struct {
	fields := map[string]*structpb.Value{
		"id":       structpb.NewStringValue(inst.ID),
		"name":     structpb.NewStringValue(inst.Name),
		"version":  structpb.NewStringValue(inst.Version),
		"position": structpb.NewNumberValue(float64(position)),
	}
	if inst.Metadata != nil {
		md := make(map[string]*structpb.Value, len(inst.Metadata))
		for k, v := range inst.Metadata {
			md[k] = structpb.NewStringValue(v)
		}
		fields["metadata"] = structpb.NewStructValue(&structpb.Struct{Fields: md})
	}
	if inst.Endpoints != nil {
		eps := make([]*structpb.Value, len(inst.Endpoints))
		for i, e := range inst.Endpoints {
			eps[i] = structpb.NewStringValue(e)
		}
		fields["endpoints"] = structpb.NewListValue(&structpb.ListValue{Values: eps})
	}
	return &structpb.Struct{Fields: fields}
}

// instancesFrom rebuilds the instances of an assignment, in the order of the set the tier
// serves, as a slice with len == cap. An LbEndpoint without InstanceMetadataKey (from another
// control plane) becomes an instance of the cluster whose ID is its address and whose only
// endpoint is grpc://address, after the others. A malformed instance is an error: the whole
// assignment is rejected.
func instancesFrom(cla *endpointv3.ClusterLoadAssignment) ([]*kuberegistry.ServiceInstance, error) {
	type placed struct {
		position float64
		instance *kuberegistry.ServiceInstance
	}
	var all []placed
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			s := lb.GetMetadata().GetFilterMetadata()[InstanceMetadataKey]
			if s == nil {
				addr := lb.GetEndpoint().GetAddress().GetSocketAddress()
				if addr == nil {
					continue
				}
				hp := hostPort{host: addr.GetAddress(), port: addr.GetPortValue()}.String()
				all = append(all, placed{position: float64(1 << 53), instance: &kuberegistry.ServiceInstance{
					ID: hp, Name: cla.GetClusterName(), Endpoints: []string{"grpc://" + hp},
				}})
				continue
			}
			inst, position, err := instanceFromStruct(s)
			if err != nil {
				return nil, fmt.Errorf("assignment %q: %w", cla.GetClusterName(), err)
			}
			all = append(all, placed{position, inst})
		}
	}
	slices.SortStableFunc(all, func(a, b placed) int { return cmp.Compare(a.position, b.position) })
	out := make([]*kuberegistry.ServiceInstance, len(all))
	for i, p := range all {
		out[i] = p.instance
	}
	return out, nil
}

// instanceFromStruct decodes what instanceStruct encoded.
func instanceFromStruct(s *structpb.Struct) (*kuberegistry.ServiceInstance, float64, error) {
	inst := &kuberegistry.ServiceInstance{}
	var position float64
	for k, v := range s.GetFields() {
		var ok bool
		switch k {
		case "id":
			inst.ID, ok = stringOf(v)
		case "name":
			inst.Name, ok = stringOf(v)
		case "version":
			inst.Version, ok = stringOf(v)
		case "position":
			var n *structpb.Value_NumberValue
			n, ok = v.GetKind().(*structpb.Value_NumberValue)
			if ok {
				position = n.NumberValue
			}
		case "metadata":
			var md *structpb.Value_StructValue
			if md, ok = v.GetKind().(*structpb.Value_StructValue); ok {
				inst.Metadata = make(map[string]string, len(md.StructValue.GetFields()))
				for mk, mv := range md.StructValue.GetFields() {
					if inst.Metadata[mk], ok = stringOf(mv); !ok {
						return nil, 0, fmt.Errorf("instance metadata %q is not a string", mk)
					}
				}
			}
		case "endpoints":
			var list *structpb.Value_ListValue
			if list, ok = v.GetKind().(*structpb.Value_ListValue); ok {
				inst.Endpoints = make([]string, len(list.ListValue.GetValues()))
				for i, e := range list.ListValue.GetValues() {
					if inst.Endpoints[i], ok = stringOf(e); !ok {
						return nil, 0, fmt.Errorf("instance endpoint %d is not a string", i)
					}
				}
			}
		default:
			ok = true // a field of a later version: ignored
		}
		if !ok {
			return nil, 0, fmt.Errorf("instance field %q has the wrong type", k)
		}
	}
	return inst, position, nil
}

func stringOf(v *structpb.Value) (string, bool) {
	s, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", false
	}
	return s.StringValue, true
}

// sameInstances reports whether two sets hold the same instances in the same order: the same
// slice, or instances equal field by field. The catalogs publish sets in a stable order, so an
// unchanged set compares equal.
func sameInstances(a, b []*kuberegistry.ServiceInstance) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if !sameInstance(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameInstance(a, b *kuberegistry.ServiceInstance) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.ID != b.ID || a.Name != b.Name || a.Version != b.Version ||
		(a.Metadata == nil) != (b.Metadata == nil) || (a.Endpoints == nil) != (b.Endpoints == nil) ||
		len(a.Metadata) != len(b.Metadata) || !slices.Equal(a.Endpoints, b.Endpoints) {
		return false
	}
	for k, v := range a.Metadata {
		if bv, ok := b.Metadata[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
