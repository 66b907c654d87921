package kratos

import (
	"maps"
	"slices"

	"github.com/go-kratos/kratos/v2/registry"
	"github.com/kuberegistry/kuberegistry"
)

// The two instance types hold the same five fields; the conversions copy them, keeping nil and
// empty apart, so that a round trip gives back an equal value and no caller shares memory with
// kuberegistry's snapshots.

// fromKratos converts an instance given by go-kratos; nil stays nil, for Register to reject.
func fromKratos(s *registry.ServiceInstance) *kuberegistry.ServiceInstance {
	if s == nil {
		return nil
	}
	return &kuberegistry.ServiceInstance{
		ID:        s.ID,
		Name:      s.Name,
		Version:   s.Version,
		Metadata:  maps.Clone(s.Metadata),
		Endpoints: slices.Clone(s.Endpoints),
	}
}

// toKratos converts a discovered instance into a copy the caller owns.
func toKratos(s *kuberegistry.ServiceInstance) *registry.ServiceInstance {
	if s == nil {
		return nil
	}
	return &registry.ServiceInstance{
		ID:        s.ID,
		Name:      s.Name,
		Version:   s.Version,
		Metadata:  maps.Clone(s.Metadata),
		Endpoints: slices.Clone(s.Endpoints),
	}
}

func toKratosAll(instances []*kuberegistry.ServiceInstance) []*registry.ServiceInstance {
	if instances == nil {
		return nil
	}
	out := make([]*registry.ServiceInstance, len(instances))
	for i, in := range instances {
		out[i] = toKratos(in)
	}
	return out
}
