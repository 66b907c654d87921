package xds

import (
	"reflect"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// describeAssignment writes an assignment as "zone(weight): addr+extra addr ; …", the localities
// in order.
func describeAssignment(cla *endpointv3.ClusterLoadAssignment) string {
	var locs []string
	for _, loc := range cla.GetEndpoints() {
		name := loc.GetLocality().GetZone()
		if sz := loc.GetLocality().GetSubZone(); sz != "" {
			name += "/" + sz
		}
		var eps []string
		for _, lb := range loc.GetLbEndpoints() {
			ep := "-"
			if sa := lb.GetEndpoint().GetAddress().GetSocketAddress(); sa != nil {
				ep = hostPort{sa.GetAddress(), sa.GetPortValue()}.String()
			}
			for _, extra := range lb.GetEndpoint().GetAdditionalAddresses() {
				sa := extra.GetAddress().GetSocketAddress()
				ep += "+" + hostPort{sa.GetAddress(), sa.GetPortValue()}.String()
			}
			if lb.GetHealthStatus() != corev3.HealthStatus_HEALTHY {
				ep += "(" + lb.GetHealthStatus().String() + ")"
			}
			eps = append(eps, ep)
		}
		weight := "-"
		if w := loc.GetLoadBalancingWeight(); w != nil {
			weight = strings.Repeat("|", int(w.GetValue()))
		}
		locs = append(locs, name+"("+weight+"): "+strings.Join(eps, " "))
	}
	return strings.Join(locs, " ; ")
}

func TestAssignmentFor(t *testing.T) {
	zoned := func(id, endpoint, zone string) *kuberegistry.ServiceInstance {
		inst := &kuberegistry.ServiceInstance{ID: id, Name: "greeter", Endpoints: []string{endpoint}}
		if zone != "" {
			inst.Metadata = map[string]string{kuberegistry.MetadataKeyZone: zone}
		}
		return inst
	}
	tests := []struct {
		name      string
		instances []*kuberegistry.ServiceInstance
		want      string
	}{
		{"no instance", nil, ""},
		{"one locality without zones", []*kuberegistry.ServiceInstance{
			zoned("a", "grpc://10.0.0.1:9000", ""), zoned("b", "grpc://10.0.0.2:9000", ""),
		}, "(||): 10.0.0.1:9000 10.0.0.2:9000"},
		{"a locality per zone, weighted by its instances, in order of appearance", []*kuberegistry.ServiceInstance{
			zoned("a", "grpc://10.0.0.1:9000", "eu-1b"), zoned("b", "grpc://10.0.0.2:9000", "eu-1a"), zoned("c", "grpc://10.0.0.3:9000", "eu-1b"),
		}, "eu-1b(||): 10.0.0.1:9000 10.0.0.3:9000 ; eu-1a(|): 10.0.0.2:9000"},
		{"the grpc endpoint is preferred; the others of a dual-stack pod are additional addresses", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000", "http://[fd00::1]:8000", "grpc://[fd00::1]:9000"}},
		}, "(|): 10.0.0.1:9000+[fd00::1]:9000"},
		{"without a grpc endpoint, the first with a host and a port", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"tcp://:80", "http://10.0.0.1:8000?isSecure=true", "https://10.0.0.1:8443"}},
		}, "(|): 10.0.0.1:8000"},
		{"an instance without an address, or at another's, is unroutable: no weight", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9000"}}, {ID: "none"}, {ID: "twin", Endpoints: []string{"grpc://10.0.0.1:9000"}},
		}, "(|): 10.0.0.1:9000 ; /kuberegistry.io/unroutable(-): - 10.0.0.1:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cla := assignmentFor("greeter", tt.instances)
			if err := cla.ValidateAll(); err != nil {
				t.Errorf("the assignment is not valid: %v", err)
			}
			if got := describeAssignment(cla); got != tt.want {
				t.Errorf("assignment\n got %s\nwant %s", got, tt.want)
			}
			back, err := instancesFrom(roundTrip(t, cla))
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != cap(back) {
				t.Errorf("rebuilt instances have len %d, cap %d", len(back), cap(back))
			}
			if len(tt.instances) == 0 && len(back) == 0 {
				return
			}
			if !reflect.DeepEqual(back, tt.instances) {
				t.Errorf("rebuilt instances differ:\n got %+v\nwant %+v", back, tt.instances)
			}
		})
	}
}

// roundTrip encodes and decodes a message, as the wire does.
func roundTrip[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every field of an instance survives the trip, nil and empty told apart, in the set's order.
func TestInstancesSurviveTheAssignment(t *testing.T) {
	sets := map[string][]*kuberegistry.ServiceInstance{
		"full": {{
			ID: "greeter-7d9f-x2", Name: "greeter", Version: "v1.2.3+build.7",
			Metadata:  map[string]string{"zone": "eu-1", kuberegistry.MetadataKeyNamespace: "shop", "json": `{"a":1}`},
			Endpoints: []string{"grpc://10.0.0.1:9000", "http://10.0.0.1:8000?isSecure=true"},
		}},
		"nil and empty": {
			{ID: "a", Metadata: nil, Endpoints: nil},
			{ID: "b", Metadata: map[string]string{}, Endpoints: []string{}},
		},
		"order across localities": {
			{ID: "1", Endpoints: []string{"grpc://10.0.0.1:9000"}, Metadata: map[string]string{kuberegistry.MetadataKeyZone: "b"}},
			{ID: "2", Endpoints: []string{"grpc://10.0.0.2:9000"}, Metadata: map[string]string{kuberegistry.MetadataKeyZone: "a"}},
			{ID: "3"},
			{ID: "4", Endpoints: []string{"grpc://10.0.0.4:9000"}, Metadata: map[string]string{kuberegistry.MetadataKeyZone: "b"}},
		},
	}
	for name, set := range sets {
		t.Run(name, func(t *testing.T) {
			back, err := instancesFrom(roundTrip(t, assignmentFor("greeter", set)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, set) {
				t.Errorf("got %+v\nwant %+v", back, set)
			}
		})
	}
}

func TestInstancesFromForeignOrBrokenAssignments(t *testing.T) {
	foreign := &endpointv3.ClusterLoadAssignment{ClusterName: "greeter", Endpoints: []*endpointv3.LocalityLbEndpoints{{
		Locality: &corev3.Locality{},
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(hostPort{"10.0.0.9", 9000}),
		}}}},
	}}}
	got, err := instancesFrom(foreign)
	want := []*kuberegistry.ServiceInstance{{ID: "10.0.0.9:9000", Name: "greeter", Endpoints: []string{"grpc://10.0.0.9:9000"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("an endpoint of another control plane: %+v, %v; want %+v", got, err, want)
	}

	broken := []struct {
		name   string
		fields map[string]*structpb.Value
		want   string
	}{
		{"id not a string", map[string]*structpb.Value{"id": structpb.NewNumberValue(1)}, `"id"`},
		{"metadata not strings", map[string]*structpb.Value{"metadata": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewBoolValue(true)}})}, `metadata "k"`},
		{"endpoints not strings", map[string]*structpb.Value{"endpoints": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNullValue()}})}, "endpoint 0"},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			cla := assignmentFor("greeter", []*kuberegistry.ServiceInstance{{ID: "a"}})
			cla.Endpoints[0].LbEndpoints[0].Metadata.FilterMetadata[InstanceMetadataKey] = &structpb.Struct{Fields: tt.fields}
			if _, err := instancesFrom(cla); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("instancesFrom: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// The other three resources are valid Envoy resources that point at each other by name over ADS.
func TestListenerRouteAndCluster(t *testing.T) {
	l, err := listenerFor("greeter.shop")
	if err != nil {
		t.Fatal(err)
	}
	r, c := routeFor("greeter.shop"), clusterFor("greeter.shop", true, false)
	for _, m := range []interface{ ValidateAll() error }{l, r, c} {
		if err := m.ValidateAll(); err != nil {
			t.Errorf("%T is not valid: %v", m, err)
		}
	}
	if got := r.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != "greeter.shop" {
		t.Errorf("the route goes to cluster %q", got)
	}
	if got := c.GetEdsClusterConfig().GetServiceName(); got != "greeter.shop" || c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil {
		t.Errorf("the cluster reads assignment %q, over %v", got, c.GetEdsClusterConfig().GetEdsConfig())
	}
	for _, tt := range []struct{ alias, serving bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
		if alias, serving := clusterFlags(roundTrip(t, clusterFor("x", tt.alias, tt.serving))); alias != tt.alias || serving != tt.serving {
			t.Errorf("clusterFlags(clusterFor(%v, %v)) = %v, %v", tt.alias, tt.serving, alias, serving)
		}
	}
}

func TestSameInstances(t *testing.T) {
	a := &kuberegistry.ServiceInstance{ID: "a", Metadata: map[string]string{"k": "v"}, Endpoints: []string{"grpc://1.2.3.4:1"}}
	set := []*kuberegistry.ServiceInstance{a}
	tests := []struct {
		name string
		x, y []*kuberegistry.ServiceInstance
		want bool
	}{
		{"both empty", nil, []*kuberegistry.ServiceInstance{}, true},
		{"the same slice", set, set, true},
		{"equal copies", set, []*kuberegistry.ServiceInstance{a.Clone()}, true},
		{"another metadata value", set, []*kuberegistry.ServiceInstance{{ID: "a", Metadata: map[string]string{"k": "w"}, Endpoints: a.Endpoints}}, false},
		{"nil against empty metadata", []*kuberegistry.ServiceInstance{{ID: "a"}}, []*kuberegistry.ServiceInstance{{ID: "a", Metadata: map[string]string{}}}, false},
		{"another order", []*kuberegistry.ServiceInstance{a, {ID: "b"}}, []*kuberegistry.ServiceInstance{{ID: "b"}, a}, false},
	}
	for _, tt := range tests {
		if got := sameInstances(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: sameInstances = %v, want %v", tt.name, got, tt.want)
		}
	}
}
