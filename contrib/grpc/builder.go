package grpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Builder builds the resolvers of targets such as "kubernetes:///greeter". It is safe for
// concurrent use; each ClientConn builds its own resolver, which holds one Watch on the
// Discovery.
type Builder struct {
	discovery       kuberegistry.Discovery
	scheme          string
	endpointSchemes []string
}

var _ resolver.Builder = (*Builder)(nil)

// NewBuilder returns a Builder that resolves targets through d, typically a started
// *kuberegistry.Registry. It registers nothing: pass DialOption to grpc.NewClient, or call
// resolver.Register once.
func NewBuilder(d kuberegistry.Discovery, opts ...Option) (*Builder, error) {
	o := options{scheme: DefaultScheme, endpointSchemes: []string{"grpc", "grpcs"}}
	if d == nil {
		o.errs = append(o.errs, errors.New("the Discovery is nil: pass the started *kuberegistry.Registry made by kuberegistry.New"))
	} else if v := reflect.ValueOf(d); v.Kind() == reflect.Pointer && v.IsNil() {
		o.errs = append(o.errs, fmt.Errorf("the Discovery is a nil %T", d))
	}
	for i, opt := range opts {
		if opt == nil {
			o.errs = append(o.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		opt.apply(&o)
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	return &Builder{discovery: d, scheme: o.scheme, endpointSchemes: o.endpointSchemes}, nil
}

// Scheme returns the target scheme this Builder serves.
func (b *Builder) Scheme() string { return b.scheme }

// DialOption returns the option that makes a ClientConn use this Builder for its scheme, without
// registering it for the whole process.
func (b *Builder) DialOption() grpc.DialOption { return grpc.WithResolvers(b) }

// Build starts resolving target for cc: it opens a Watch on the target's service and pushes each
// set it reports to cc until the resolver is closed. gRPC calls it; a bad target, or a Discovery
// that cannot watch (a registry not started yet), fails it.
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	name, err := serviceName(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.discovery.Watch(ctx, name)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kuberegistry/grpc: watching service %q for target %q: %w", name, target.URL.String(), err)
	}
	return startResolver(ctx, cancel, w, cc, name, b.endpointSchemes), nil
}

// serviceName maps "scheme:///service" to "service" and "scheme://namespace/service" to
// "service.namespace".
func serviceName(target resolver.Target) (string, error) {
	service := target.Endpoint()
	namespace := target.URL.Host
	switch {
	case service == "":
		return "", fmt.Errorf("kuberegistry/grpc: target %q names no service: want %s:///<service> or %s://<namespace>/<service>",
			target.URL.String(), target.URL.Scheme, target.URL.Scheme)
	case strings.Contains(service, "/"):
		return "", fmt.Errorf("kuberegistry/grpc: target %q: the service %q holds a '/': want %s:///<service> or %s://<namespace>/<service>",
			target.URL.String(), service, target.URL.Scheme, target.URL.Scheme)
	case target.URL.RawQuery != "":
		return "", fmt.Errorf("kuberegistry/grpc: target %q: a target takes no query", target.URL.String())
	case namespace == "":
		return service, nil
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return "", fmt.Errorf("kuberegistry/grpc: target %q: namespace %q: %s", target.URL.String(), namespace, errs[0])
	}
	return service + "." + namespace, nil
}
