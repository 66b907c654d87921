package kuberegistry

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Option configures a discovery source: a Registry built by New or an EndpointSliceDiscovery
// built by NewEndpointSliceDiscovery. Each option says what it means for each; an option that
// makes no sense for a source is an error from its constructor, which names it.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options holds the settings New validates; problems found while applying options are kept in
// errs so that New can report all of them at once.
type options struct {
	namespaces      []string // discovery scope; [""] means all namespaces; nil: the default
	pod             podIdentity
	logger          *slog.Logger
	env             environment
	selector        labels.Selector // extra filter on pods; nil: none
	includeNotReady bool
	translation     translation
	podOnly         []string // the options used that only a Registry takes, by name
	sliceOnly       []string // the options used that only an EndpointSliceDiscovery takes
	serviceLabels   *string  // WithServiceLabelsMetadata's prefix; nil: not set
	serviceNotes    *string  // WithServiceAnnotationsMetadata's prefix; nil: not set
	primaryPort     string   // WithPrimaryPort's port name; "": none
	errs            []error
}

// applyOptions applies opts over defaults and reports every problem at once, as ErrInvalidOption.
func applyOptions(o *options, opts []Option) error {
	for i, opt := range opts {
		if opt == nil {
			o.errs = append(o.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		opt.apply(o)
	}
	if len(o.errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOption, errors.Join(o.errs...))
	}
	return nil
}

// defaultNamespaces is the scope when no option sets one: the namespace of the pod the process
// runs in, or "default" outside a pod.
func (o *options) defaultNamespaces(pod podIdentity) []string {
	switch {
	case o.namespaces != nil:
		return o.namespaces
	case pod.namespace != "":
		return []string{pod.namespace}
	default:
		return []string{"default"}
	}
}

// WithNamespace sets the namespace whose pods (or, for an EndpointSliceDiscovery, Services) are
// discovered. "" (metav1.NamespaceAll) watches all namespaces, which needs a ClusterRole. Default:
// the namespace of the pod the process runs in, or "default" when it does not run in a pod.
func WithNamespace(namespace string) Option {
	return optionFunc(func(o *options) {
		if namespace != "" {
			if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
				o.errs = append(o.errs, fmt.Errorf("WithNamespace(%q): %s", namespace, errs[0]))
			}
		}
		o.namespaces = []string{namespace}
	})
}

// WithNamespaces sets several namespaces to discover, with one informer each, so that a Role in
// each namespace is all a source needs (watching all namespaces needs a ClusterRole). Instances
// then carry their namespace in metadata under MetadataKeyNamespace, and GetService and Watch accept
// "service.namespace" to pick one namespace's instances of a service.
func WithNamespaces(namespaces ...string) Option {
	return optionFunc(func(o *options) {
		if len(namespaces) == 0 {
			o.errs = append(o.errs, fmt.Errorf("WithNamespaces(): name at least one namespace, or use WithNamespace(\"\") for all"))
		}
		seen := map[string]bool{}
		for _, ns := range namespaces {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				o.errs = append(o.errs, fmt.Errorf("WithNamespaces: %q: %s", ns, errs[0]))
			}
			if seen[ns] {
				o.errs = append(o.errs, fmt.Errorf("WithNamespaces: %q is named twice", ns))
			}
			seen[ns] = true
		}
		o.namespaces = slices.Clone(namespaces)
	})
}

// WithLabelSelector discovers only what matches a Kubernetes label selector, such as
// "tier=backend,track!=canary" (the syntax of kubectl -l), evaluated by the API server: for a
// Registry, the registered pods' labels; for an EndpointSliceDiscovery, the Services' labels, which
// the EndpointSlice controller copies onto their slices (slices managed by hand must carry them).
// Default: everything.
func WithLabelSelector(selector string) Option {
	return optionFunc(func(o *options) {
		s, err := labels.Parse(selector)
		if err != nil {
			o.errs = append(o.errs, fmt.Errorf("WithLabelSelector(%q): %v", selector, err))
			return
		}
		o.selector = s
	})
}

// WithIncludeNotReady serves every live pod of a service: running with an IP, ready or not,
// terminating or not (for an EndpointSliceDiscovery: every endpoint of the Service's slices,
// whatever its conditions, as Spring's include-not-ready-addresses). Default: only ready pods, and
// pods that are terminating but still ready when a service has no ready pod at all.
func WithIncludeNotReady() Option {
	return optionFunc(func(o *options) { o.includeNotReady = true })
}

// WithPodLabelsMetadata adds each pod's labels to its instance's metadata, under keys prefixed
// with prefix (which may be ""). Registered metadata keys are never overwritten.
// A Registry only: an EndpointSliceDiscovery reads no pod.
func WithPodLabelsMetadata(prefix string) Option {
	return optionFunc(func(o *options) {
		o.translation.labelsPrefix = &prefix
		o.podOnly = append(o.podOnly, "WithPodLabelsMetadata")
	})
}

// WithPodAnnotationsMetadata adds each pod's annotations to its instance's metadata, under keys
// prefixed with prefix. Registered metadata keys are never overwritten.
// A Registry only.
func WithPodAnnotationsMetadata(prefix string) Option {
	return optionFunc(func(o *options) {
		o.translation.annotationsPrefix = &prefix
		o.podOnly = append(o.podOnly, "WithPodAnnotationsMetadata")
	})
}

// DefaultPortsMetadataPrefix is the prefix WithPortsMetadata("") uses: "port.http" = "8080".
const DefaultPortsMetadataPrefix = "port."

// WithPortsMetadata adds each named port to its instance's metadata as prefix+name = number: a
// pod's container ports, or a Service's ports; "" means DefaultPortsMetadataPrefix. Registered
// keys are never overwritten.
func WithPortsMetadata(prefix string) Option {
	if prefix == "" {
		prefix = DefaultPortsMetadataPrefix
	}
	return optionFunc(func(o *options) { o.translation.portsPrefix = &prefix })
}

// WithServiceLabelsMetadata adds the labels of each instance's Service to its metadata, under keys
// prefixed with prefix (which may be ""), as Spring's add-labels does. The labels are read from the
// Service's EndpointSlices, onto which the EndpointSlice controller copies them (without its own
// kubernetes.io/ and endpointslice.kubernetes.io/ keys): no permission on Services is needed. An
// EndpointSliceDiscovery only; a Registry's counterpart is WithPodLabelsMetadata.
func WithServiceLabelsMetadata(prefix string) Option {
	return optionFunc(func(o *options) {
		o.serviceLabels = &prefix
		o.sliceOnly = append(o.sliceOnly, "WithServiceLabelsMetadata")
	})
}

// WithServiceAnnotationsMetadata adds the annotations of each instance's Service to its metadata,
// under keys prefixed with prefix, below every other key (a key already set is never
// overwritten), as Spring's add-annotations does; kubectl's last-applied-configuration is left
// out. The Service's "secured" annotation then marks its endpoints secure, as its label always
// does. Annotations are not copied onto EndpointSlices, so this option makes the discovery list
// and watch the Services in scope too: grant list and watch on services. An
// EndpointSliceDiscovery only; a Registry's counterpart is WithPodAnnotationsMetadata.
func WithServiceAnnotationsMetadata(prefix string) Option {
	return optionFunc(func(o *options) {
		o.serviceNotes = &prefix
		o.sliceOnly = append(o.sliceOnly, "WithServiceAnnotationsMetadata")
	})
}

// WithPrimaryPort names the port of a multi-port Service whose endpoints an instance has, as
// Spring's primary-port-name does: when the Service has a port of that name, its instances have
// that port's endpoints only (its scheme from its appProtocol or name, else "tcp"). Default: every
// port whose appProtocol or name gives a scheme, else a Service's only port as "tcp". An
// EndpointSliceDiscovery only: a Registry serves what was registered.
func WithPrimaryPort(name string) Option {
	return optionFunc(func(o *options) {
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("WithPrimaryPort(%q): a Service port name is a DNS label: %s", name, errs[0]))
		}
		o.primaryPort = name
		o.sliceOnly = append(o.sliceOnly, "WithPrimaryPort")
	})
}

// WithSecurePorts sets the ports whose endpoints are marked secure with the query isSecure=true.
// Default: 443 and 8443. Endpoints are also marked when registered so, when their scheme is
// https, grpcs, wss or tls, or when their container port's (or Service port's) name starts with
// https, grpcs or tls.
func WithSecurePorts(ports ...int32) Option {
	return optionFunc(func(o *options) {
		for _, p := range ports {
			if p < 1 || p > 65535 {
				o.errs = append(o.errs, fmt.Errorf("WithSecurePorts: %d is not a port from 1 to 65535", p))
			}
		}
		o.translation.securePorts = slices.Clone(ports)
	})
}

// WithPod sets the pod that Register and Deregister patch. Default: detected from the POD_NAME and
// POD_NAMESPACE environment variables (set them with the Downward API), else from the service
// account's namespace file and HOSTNAME. A Registry only: an EndpointSliceDiscovery registers nothing.
func WithPod(namespace, name string) Option {
	return optionFunc(func(o *options) {
		o.podOnly = append(o.podOnly, "WithPod")
		if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("WithPod namespace %q: %s", namespace, errs[0]))
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("WithPod name %q: %s", name, errs[0]))
		}
		o.pod = podIdentity{namespace: namespace, name: name}
	})
}

// WithLogger sets the logger for problems found in the cluster, such as a pod with a malformed
// annotation or an EndpointSlice of addressType FQDN. Default: slog.Default().
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if logger == nil {
			o.errs = append(o.errs, fmt.Errorf("WithLogger(nil): pass a logger, or omit the option to use slog.Default()"))
		}
		o.logger = logger
	})
}

// withEnvironment replaces the process environment used to find the pod identity and the default
// namespace (tests only).
func withEnvironment(env environment) Option {
	return optionFunc(func(o *options) { o.env = env })
}
