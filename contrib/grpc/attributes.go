package grpc

import (
	"maps"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// Instance is what the resolver tells of the instance behind an address or an endpoint, for
// load-balancing policies, interceptors and logs that route by version or metadata.
type Instance struct {
	ID       string
	Name     string
	Version  string
	Metadata map[string]string // shared with the registry: read-only
}

// instanceKey is the attributes key of an Instance.
type instanceKey struct{}

// instanceValue is the attribute value. gRPC compares attributes to tell whether an address is
// still the same; Equal compares content, so that a new snapshot of an unchanged pod is the same
// address and keeps its connection.
type instanceValue struct{ Instance }

func (v *instanceValue) Equal(o any) bool {
	w, ok := o.(*instanceValue)
	if !ok || v == nil || w == nil {
		return ok && v == w
	}
	return v.ID == w.ID && v.Name == w.Name && v.Version == w.Version && maps.Equal(v.Metadata, w.Metadata)
}

func (v *instanceValue) String() string {
	return v.Name + "/" + v.ID + "@" + v.Version
}

func instanceAttributes(in *kuberegistry.ServiceInstance) *attributes.Attributes {
	return attributes.New(instanceKey{}, &instanceValue{Instance{ID: in.ID, Name: in.Name, Version: in.Version, Metadata: in.Metadata}})
}

// InstanceFromAddress returns the instance behind an address this package's resolver produced.
func InstanceFromAddress(a resolver.Address) (Instance, bool) {
	return instanceFrom(a.Attributes)
}

// InstanceFromEndpoint returns the instance behind an endpoint this package's resolver produced.
func InstanceFromEndpoint(e resolver.Endpoint) (Instance, bool) {
	return instanceFrom(e.Attributes)
}

func instanceFrom(attrs *attributes.Attributes) (Instance, bool) {
	if v, ok := attrs.Value(instanceKey{}).(*instanceValue); ok && v != nil {
		return v.Instance, true
	}
	return Instance{}, false
}
