package grpc

import (
	"net/url"
	"slices"
	"strings"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// stateOf turns a set of instances into the state gRPC balances over: one Endpoint per instance
// that has an endpoint of one of the schemes, whose addresses are that scheme's host:port pairs
// (one per pod IP). An address listed by two instances is kept for the first only. It is pure:
// every rule is tested from literals.
func stateOf(instances []*kuberegistry.ServiceInstance, schemes []string) resolver.State {
	endpoints := make([]resolver.Endpoint, 0, len(instances))
	addresses := make([]resolver.Address, 0, len(instances))
	seen := make(map[string]bool, len(instances))
	for _, in := range instances {
		if in == nil {
			continue
		}
		var attrs *attributes.Attributes
		var ep resolver.Endpoint
		for _, hostPort := range hostPorts(in.Endpoints, schemes) {
			if seen[hostPort] {
				continue
			}
			seen[hostPort] = true
			if attrs == nil {
				attrs = instanceAttributes(in)
			}
			a := resolver.Address{Addr: hostPort, Attributes: attrs}
			ep.Addresses = append(ep.Addresses, a)
			addresses = append(addresses, a)
		}
		if len(ep.Addresses) > 0 {
			ep.Attributes = attrs
			endpoints = append(endpoints, ep)
		}
	}
	return resolver.State{Addresses: addresses, Endpoints: endpoints}
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
		return x.Attributes.Equal(y.Attributes) && slices.EqualFunc(x.Addresses, y.Addresses, resolver.Address.Equal)
	})
}
