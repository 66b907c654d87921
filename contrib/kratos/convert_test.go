package kratos

import (
	"testing"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/kuberegistry/kuberegistry"
	"github.com/stretchr/testify/assert"
)

func TestConversionIsLosslessBothWays(t *testing.T) {
	tests := []struct {
		name string
		in   *kuberegistry.ServiceInstance
	}{
		{"nil", nil},
		{"zero", &kuberegistry.ServiceInstance{}},
		{"every field", &kuberegistry.ServiceInstance{
			ID: "56991810-c77f-4a95-8190-393efa9c1a61", Name: "greeter", Version: "v1.2.3+build.7",
			Metadata:  map[string]string{"zone": "eu-1", "weight": "10", "": "empty key"},
			Endpoints: []string{"http://10.0.0.1:8000?isSecure=true", "grpc://10.0.0.1:9000", "grpc://[fd00::1]:9000"},
		}},
		{"empty, not nil", &kuberegistry.ServiceInstance{Name: "greeter", Metadata: map[string]string{}, Endpoints: []string{}}},
		{"unicode", &kuberegistry.ServiceInstance{Name: "greeter", Version: "版本-1", Metadata: map[string]string{"région": "île-de-france"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := toKratos(tt.in)
			assert.Equal(t, tt.in, fromKratos(k), "kuberegistry → kratos → kuberegistry")
			assert.Equal(t, k, toKratos(fromKratos(k)), "kratos → kuberegistry → kratos")
			if tt.in == nil {
				assert.Nil(t, k)
				return
			}
			assert.Equal(t, tt.in.Metadata == nil, k.Metadata == nil, "nil and empty metadata must stay apart")
			assert.Equal(t, tt.in.Endpoints == nil, k.Endpoints == nil, "nil and empty endpoints must stay apart")
		})
	}
}

func TestConversionCopies(t *testing.T) {
	shared := &kuberegistry.ServiceInstance{
		ID: "a", Name: "greeter", Metadata: map[string]string{"zone": "a"},
		Endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"},
	}
	before := shared.Clone()
	k := toKratos(shared)
	// go-kratos's Equal sorts both instances' endpoints in place.
	_ = k.Equal(&registry.ServiceInstance{ID: "a", Name: "greeter", Endpoints: []string{"b", "a"}})
	k.Metadata["zone"] = "changed"
	k.Endpoints = append(k.Endpoints[:1], "x")
	assert.Equal(t, before, shared, "changing a converted instance changed kuberegistry's snapshot")

	given := &registry.ServiceInstance{Name: "greeter", Metadata: map[string]string{"zone": "a"}, Endpoints: []string{"grpc://:9000"}}
	converted := fromKratos(given)
	given.Metadata["zone"], given.Endpoints[0] = "changed", "changed"
	assert.Equal(t, "a", converted.Metadata["zone"])
	assert.Equal(t, "grpc://:9000", converted.Endpoints[0])
}

func TestToKratosAll(t *testing.T) {
	assert.Nil(t, toKratosAll(nil))
	assert.Equal(t, []*registry.ServiceInstance{}, toKratosAll([]*kuberegistry.ServiceInstance{}))
	got := toKratosAll([]*kuberegistry.ServiceInstance{{ID: "b"}, {ID: "a"}})
	assert.Equal(t, []*registry.ServiceInstance{{ID: "b"}, {ID: "a"}}, got, "the order is kept")
}
