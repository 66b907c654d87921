package grpc

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/resolver"
)

func TestStateOf(t *testing.T) {
	grpcFirst := []string{"grpc", "grpcs"}
	tests := []struct {
		name      string
		instances []*kuberegistry.ServiceInstance
		schemes   []string
		want      [][]string // the addresses of each endpoint
	}{
		{"none", nil, grpcFirst, [][]string{}},
		{"one grpc endpoint", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}}},
		{"one endpoint per instance, in order", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9000"}},
			{ID: "b", Endpoints: []string{"grpc://10.0.0.2:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}, {"10.0.0.2:9000"}}},
		{"dual stack: one endpoint, two addresses", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9000", "grpc://[fd00::1]:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000", "[fd00::1]:9000"}}},
		{"grpc preferred over grpcs", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpcs://10.0.0.1:9443", "grpc://10.0.0.1:9000"}},
			{ID: "b", Endpoints: []string{"grpcs://10.0.0.2:9443"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}, {"10.0.0.2:9443"}}},
		{"grpcs only", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpcs://10.0.0.1:9443", "grpc://10.0.0.1:9000"}},
			{ID: "b", Endpoints: []string{"grpc://10.0.0.2:9000"}},
		}, []string{"grpcs"}, [][]string{{"10.0.0.1:9443"}}},
		{"the query does not matter", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9000?isSecure=false&zone=a"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}}},
		{"go-kratos's isSecure=true is grpcs", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9443?isSecure=true", "grpc://10.0.0.1:9000"}},
			{ID: "b", Endpoints: []string{"grpc://10.0.0.2:9443?isSecure=TRUE"}},
		}, []string{"grpcs"}, [][]string{{"10.0.0.1:9443"}, {"10.0.0.2:9443"}}},
		{"schemes match in any case", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"GRPC://10.0.0.1:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}}},
		{"an instance with no gRPC endpoint is left out", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"http://10.0.0.1:8000"}},
			{ID: "b"},
			nil,
			{ID: "c", Endpoints: []string{"grpc://10.0.0.3:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.3:9000"}}},
		{"an address two instances list is kept once", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1:9000"}},
			{ID: "b", Endpoints: []string{"grpc://10.0.0.1:9000", "grpc://10.0.0.2:9000"}},
			{ID: "c", Endpoints: []string{"grpc://10.0.0.1:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.1:9000"}, {"10.0.0.2:9000"}}},
		{"junk is skipped", []*kuberegistry.ServiceInstance{
			{ID: "a", Endpoints: []string{"grpc://10.0.0.1", "grpc://:9000", "grpc:10.0.0.1:9000", "%zz", "grpc://10.0.0.9:9000"}},
		}, grpcFirst, [][]string{{"10.0.0.9:9000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateOf(tt.instances, tt.schemes)
			got := [][]string{}
			var flat []string
			for _, ep := range s.Endpoints {
				var addrs []string
				for _, a := range ep.Addresses {
					addrs = append(addrs, a.Addr)
					flat = append(flat, a.Addr)
				}
				got = append(got, addrs)
			}
			assert.Equal(t, tt.want, got)
			var addrs []string
			for _, a := range s.Addresses {
				addrs = append(addrs, a.Addr)
			}
			assert.Equal(t, flat, addrs, "State.Addresses lists the endpoints' addresses, for policies that read only those")
		})
	}
}

func TestStateCarriesTheInstance(t *testing.T) {
	in := &kuberegistry.ServiceInstance{ID: "a", Name: "greeter", Version: "v1.2.3+build.7",
		Metadata: map[string]string{"zone": "eu-1"}, Endpoints: []string{"grpc://10.0.0.1:9000", "grpc://[fd00::1]:9000"}}
	s := stateOf([]*kuberegistry.ServiceInstance{in}, []string{"grpc"})
	want := Instance{ID: "a", Name: "greeter", Version: "v1.2.3+build.7", Metadata: map[string]string{"zone": "eu-1"}}
	require.Len(t, s.Endpoints, 1)
	got, ok := InstanceFromEndpoint(s.Endpoints[0])
	assert.True(t, ok)
	assert.Equal(t, want, got)
	for _, a := range append(s.Endpoints[0].Addresses, s.Addresses...) {
		got, ok := InstanceFromAddress(a)
		assert.True(t, ok)
		assert.Equal(t, want, got)
	}
	_, ok = InstanceFromAddress(resolver.Address{Addr: "10.0.0.1:9000"})
	assert.False(t, ok, "an address from another resolver")
}

// Attributes take part in the identity of a subchannel: equal content must compare equal, or
// each new snapshot of an unchanged pod would reconnect.
func TestAttributesCompareByContent(t *testing.T) {
	base := kuberegistry.ServiceInstance{ID: "a", Name: "greeter", Version: "v1", Metadata: map[string]string{"zone": "a"},
		Endpoints: []string{"grpc://10.0.0.1:9000"}}
	attrs := func(change func(*kuberegistry.ServiceInstance)) resolver.Address {
		in := base.Clone()
		change(in)
		return stateOf([]*kuberegistry.ServiceInstance{in}, []string{"grpc"}).Addresses[0]
	}
	same := attrs(func(*kuberegistry.ServiceInstance) {})
	tests := []struct {
		name   string
		change func(*kuberegistry.ServiceInstance)
		equal  bool
	}{
		{"a new snapshot of the same pod", func(*kuberegistry.ServiceInstance) {}, true},
		{"another HTTP port", func(in *kuberegistry.ServiceInstance) { in.Endpoints = append(in.Endpoints, "http://10.0.0.1:8000") }, true},
		{"another version", func(in *kuberegistry.ServiceInstance) { in.Version = "v2" }, false},
		{"other metadata", func(in *kuberegistry.ServiceInstance) { in.Metadata = map[string]string{"zone": "b"} }, false},
		{"another ID", func(in *kuberegistry.ServiceInstance) { in.ID = "b" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.equal, same.Equal(attrs(tt.change)))
		})
	}
}

func TestSameEndpoints(t *testing.T) {
	in := func(ids ...string) []resolver.Endpoint {
		var all []*kuberegistry.ServiceInstance
		for i, id := range ids {
			all = append(all, &kuberegistry.ServiceInstance{ID: id, Endpoints: []string{"grpc://10.0.0." + string(rune('1'+i)) + ":9000"}})
		}
		return stateOf(all, []string{"grpc"}).Endpoints
	}
	assert.True(t, sameEndpoints(in("a", "b"), in("a", "b")))
	assert.True(t, sameEndpoints(nil, in()))
	assert.False(t, sameEndpoints(in("a"), in("a", "b")))
	assert.False(t, sameEndpoints(in("a", "b"), in("a", "c")))
}

// greeterSet makes n instances of a service, each with a gRPC and an HTTP endpoint.
func greeterSet(n int) []*kuberegistry.ServiceInstance {
	out := make([]*kuberegistry.ServiceInstance, n)
	for i := range out {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		out[i] = &kuberegistry.ServiceInstance{
			ID: fmt.Sprintf("greeter-%d", i), Name: "greeter", Version: "v1",
			Metadata:  map[string]string{"zone": "a"},
			Endpoints: []string{"grpc://" + ip + ":9000", "http://" + ip + ":8000"},
		}
	}
	return out
}

// replaceOne returns a copy of set in which instance i is a new instance with another version, as
// the registry publishes a change to one pod: every other instance is the same pointer.
func replaceOne(set []*kuberegistry.ServiceInstance, i int) []*kuberegistry.ServiceInstance {
	next := slices.Clone(set)
	changed := *set[i]
	changed.Version += "+1"
	next[i] = &changed
	return next
}

// The cache gives what stateOf gives, whatever changed between two sets.
func TestStateCacheMatchesStateOf(t *testing.T) {
	cache := newStateCache([]string{"grpc"})
	set := greeterSet(20)
	for step := range 60 {
		switch step % 3 {
		case 0:
			set = replaceOne(set, step%len(set))
		case 1:
			set = slices.Delete(slices.Clone(set), step%len(set), step%len(set)+1)
		case 2:
			set = append(slices.Clone(set), greeterSet(25)[20+step%5])
			if step%2 == 0 { // an instance listed twice, and one sharing another's address
				twin := *set[1]
				twin.ID = "twin"
				set = append(set, set[0], &twin)
			}
		}
		got, want := cache.stateOf(set), stateOf(set, []string{"grpc"})
		require.True(t, sameEndpoints(got.Endpoints, want.Endpoints), "step %d", step)
		require.Equal(t, len(want.Addresses), len(got.Addresses))
	}
}

// What the resolver does for one update of a service of n instances in which one pod changed:
// "fresh" parses every instance, as it did before the cache; "cached" parses only the changed one.
// Both include the comparison with the state pushed last.
//
//	go test -run '^$' -bench ResolverUpdate -benchmem ./contrib/grpc
func BenchmarkResolverUpdate(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		base := greeterSet(n)
		sets := [2][]*kuberegistry.ServiceInstance{replaceOne(base, n/2), replaceOne(base, n/3)}
		b.Run(fmt.Sprintf("instances=%d/fresh", n), func(b *testing.B) {
			last := stateOf(base, []string{"grpc"}).Endpoints
			for i := 0; b.Loop(); i++ {
				state := stateOf(sets[i%2], []string{"grpc"})
				if sameEndpoints(last, state.Endpoints) {
					b.Fatal("a change was missed")
				}
				last = state.Endpoints
			}
		})
		b.Run(fmt.Sprintf("instances=%d/cached", n), func(b *testing.B) {
			cache := newStateCache([]string{"grpc"})
			last := cache.stateOf(base).Endpoints
			for i := 0; b.Loop(); i++ {
				state := cache.stateOf(sets[i%2])
				if sameEndpoints(last, state.Endpoints) {
					b.Fatal("a change was missed")
				}
				last = state.Endpoints
			}
		})
	}
}
