package grpc

import (
	"net/url"
	"slices"
	"strings"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc/resolver"
)

// stateOf turns a set of instances into the state gRPC balances over: one Endpoint per instance
// that has an endpoint of one of the schemes, whose addresses are that scheme's host:port pairs
// (one per pod IP). An address listed by two instances is kept for the first only. It is pure:
// every rule is tested from literals.
func stateOf(instances []*kuberegistry.ServiceInstance, schemes []string) resolver.State {
	return newStateCache(schemes).stateOf(instances)
}

// stateCache makes states as stateOf does, remembering what each instance of the last set gave:
// the registry hands an unchanged instance back as the same pointer, so an update parses only the
// instances that changed and reuses the rest's Endpoint as it is. gRPC takes the whole list at
// each update, so an update still costs a map lookup and an append per instance.
type stateCache struct {
	schemes []string
	round   uint64                                      // counts calls to stateOf
	known   map[*kuberegistry.ServiceInstance]*dialable // the instances of the last set
	sharing map[string]int                              // how many known instances list each address
}

// dialable is what an instance gives gRPC.
type dialable struct {
	endpoint resolver.Endpoint // no address when the instance has none of the schemes
	round    uint64            // the last call that saw the instance
}

func newStateCache(schemes []string) *stateCache {
	return &stateCache{
		schemes: schemes,
		known:   make(map[*kuberegistry.ServiceInstance]*dialable),
		sharing: make(map[string]int),
	}
}

func (c *stateCache) stateOf(instances []*kuberegistry.ServiceInstance) resolver.State {
	c.round++
	endpoints := make([]resolver.Endpoint, 0, len(instances))
	addresses := make([]resolver.Address, 0, len(instances))
	for _, in := range instances { // first the new instances, so that sharing is complete
		if in != nil && c.known[in] == nil {
			c.add(in)
		}
	}
	var seen map[string]bool // made only when two instances share an address
	distinct := 0
	for _, in := range instances {
		if in == nil {
			continue
		}
		d := c.known[in]
		if d.round == c.round {
			continue // listed twice: its first listing has all its addresses
		}
		d.round = c.round
		distinct++
		ep := d.endpoint
		shared := false
		for _, a := range ep.Addresses {
			shared = shared || c.sharing[a.Addr] > 1
		}
		if shared { // the first instance to list an address keeps it
			if seen == nil {
				seen = make(map[string]bool)
			}
			ep = resolver.Endpoint{Attributes: ep.Attributes}
			for _, a := range d.endpoint.Addresses {
				if !seen[a.Addr] {
					ep.Addresses = append(ep.Addresses, a)
				}
			}
		}
		for _, a := range ep.Addresses {
			if seen != nil {
				seen[a.Addr] = true
			}
			addresses = append(addresses, a)
		}
		if len(ep.Addresses) > 0 {
			endpoints = append(endpoints, ep)
		}
	}
	if len(c.known) > distinct { // some instances left: forget them
		for in, d := range c.known {
			if d.round != c.round {
				c.forget(in, d)
			}
		}
	}
	return resolver.State{Addresses: addresses, Endpoints: endpoints}
}

// add parses a new instance.
func (c *stateCache) add(in *kuberegistry.ServiceInstance) *dialable {
	d := &dialable{}
	if hostPorts := hostPorts(in.Endpoints, c.schemes); len(hostPorts) > 0 {
		attrs := instanceAttributes(in)
		d.endpoint.Attributes = attrs
		for _, hp := range hostPorts {
			d.endpoint.Addresses = append(d.endpoint.Addresses, resolver.Address{Addr: hp, Attributes: attrs})
			c.sharing[hp]++
		}
	}
	c.known[in] = d
	return d
}

// forget drops an instance that left.
func (c *stateCache) forget(in *kuberegistry.ServiceInstance, d *dialable) {
	delete(c.known, in)
	for _, a := range d.endpoint.Addresses {
		if c.sharing[a.Addr]--; c.sharing[a.Addr] <= 0 {
			delete(c.sharing, a.Addr)
		}
	}
}

// hostPorts returns the host:port of the endpoints of the first scheme in schemes that the
// endpoints have, in their order. Endpoints that are no URL with a port are skipped: the
// registry never serves them, and another Discovery's junk must not reach gRPC.
func hostPorts(endpoints []string, schemes []string) []string {
	for _, scheme := range schemes {
		var out []string
		for _, e := range endpoints {
			u, err := url.Parse(e)
			if err != nil || effectiveScheme(u) != scheme || u.Hostname() == "" || u.Port() == "" {
				continue
			}
			if !slices.Contains(out, u.Host) {
				out = append(out, u.Host)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// effectiveScheme returns the scheme of an endpoint, reading go-kratos's "grpc://…?isSecure=true"
// (which kuberegistry also writes for TLS ports) as grpcs.
func effectiveScheme(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "grpc" && strings.EqualFold(u.Query().Get("isSecure"), "true") {
		return "grpcs"
	}
	return scheme
}

// sameEndpoints reports whether two states would configure gRPC the same way.
func sameEndpoints(a, b []resolver.Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y resolver.Endpoint) bool {
		return (x.Attributes == y.Attributes || x.Attributes.Equal(y.Attributes)) &&
			slices.EqualFunc(x.Addresses, y.Addresses, resolver.Address.Equal)
	})
}
