package kuberegistry

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
)

// ServiceInstance is one running instance of a service: in this package, one pod.
//
// Instances returned by GetService and Watcher.Next are shared with the registry's cache and with
// other callers: treat them as read-only, and call Clone for a copy you may change.
type ServiceInstance struct {
	// ID identifies the instance. Several pods may share one ID when a Deployment labels them by
	// hand; a pod registered without an ID is discovered with its pod name as ID.
	ID string `json:"id"`
	// Name is the service name: the value of the kratos-service-app label.
	Name string `json:"name"`
	// Version is the service version, stored losslessly even when it is not a valid label value.
	Version string `json:"version"`
	// Metadata is free-form data registered with the instance.
	Metadata map[string]string `json:"metadata"`
	// Endpoints are URLs such as "grpc://10.1.2.3:9000" or "http://[fd00::1]:8000?isSecure=true":
	// one per registered port and per pod IP.
	Endpoints []string `json:"endpoints"`
}

// Clone returns a deep copy of the instance that the caller owns.
func (s *ServiceInstance) Clone() *ServiceInstance {
	if s == nil {
		return nil
	}
	c := *s
	if s.Metadata != nil {
		c.Metadata = make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
	}
	if s.Endpoints != nil {
		c.Endpoints = append([]string(nil), s.Endpoints...)
	}
	return &c
}

// equal reports whether two instances carry the same data.
func (s *ServiceInstance) equal(o *ServiceInstance) bool {
	if s == o {
		return true
	}
	if s.ID != o.ID || s.Name != o.Name || s.Version != o.Version ||
		len(s.Metadata) != len(o.Metadata) || len(s.Endpoints) != len(o.Endpoints) {
		return false
	}
	for k, v := range s.Metadata {
		if ov, ok := o.Metadata[k]; !ok || ov != v {
			return false
		}
	}
	for i := range s.Endpoints {
		if s.Endpoints[i] != o.Endpoints[i] {
			return false
		}
	}
	return true
}

// sortInstances orders instances by their content (endpoints, then ID, version, name, metadata),
// so that two equal sets are equal slices and comparing them needs no hashing or allocation.
func sortInstances(instances []*ServiceInstance) {
	slices.SortFunc(instances, compareInstances)
}

func compareInstances(a, b *ServiceInstance) int {
	if a == b { // an instance kept across updates of its pod
		return 0
	}
	if c := slices.Compare(a.Endpoints, b.Endpoints); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if len(a.Metadata) != len(b.Metadata) {
		return len(a.Metadata) - len(b.Metadata)
	}
	// Reached only by instances equal in all else: rare enough to sort keys here.
	keys := slices.Sorted(maps.Keys(a.Metadata))
	if c := slices.Compare(keys, slices.Sorted(maps.Keys(b.Metadata))); c != 0 {
		return c
	}
	for _, k := range keys {
		if c := strings.Compare(a.Metadata[k], b.Metadata[k]); c != 0 {
			return c
		}
	}
	return 0
}

// sameInstances reports whether two sorted sets hold the same instances.
func sameInstances(a, b []*ServiceInstance) bool {
	return slices.EqualFunc(a, b, (*ServiceInstance).equal)
}

// hashSeed keys instanceHash for this process.
var hashSeed = maphash.MakeSeed()

// instanceHash hashes what ServiceInstance.equal compares, so that equal instances hash equal.
// The sum of a set's hashes changes when an instance joins or leaves it: two sets with different
// sums differ, and only sets with equal sums need comparing one instance at a time.
func instanceHash(in *ServiceInstance) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.WriteString(s)
	}
	field(in.ID)
	field(in.Name)
	field(in.Version)
	for _, e := range in.Endpoints {
		field(e)
	}
	sum := h.Sum64()
	// Metadata has no order: add each pair's hash.
	for k, v := range in.Metadata {
		h.Reset()
		field(k)
		field(v)
		sum += h.Sum64() * 0x9e3779b97f4a7c15
	}
	return sum
}
