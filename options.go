package kuberegistry

import (
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Option configures a Registry built by New.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options holds the settings New validates; problems found while applying options are kept in
// errs so that New can report all of them at once.
type options struct {
	namespace    string // discovery scope; "" means all namespaces
	namespaceSet bool
	pod          podIdentity
	logger       *slog.Logger
	env          environment
	errs         []error
}

// WithNamespace sets the namespace whose pods are discovered. "" (metav1.NamespaceAll) watches
// all namespaces, which needs a ClusterRole. Default: the namespace of the pod the process runs
// in, or "default" when it does not run in a pod.
func WithNamespace(namespace string) Option {
	return optionFunc(func(o *options) {
		if namespace != "" {
			if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
				o.errs = append(o.errs, fmt.Errorf("WithNamespace(%q): %s", namespace, errs[0]))
			}
		}
		o.namespace, o.namespaceSet = namespace, true
	})
}

// WithPod sets the pod that Register and Deregister patch. Default: detected from the POD_NAME and
// POD_NAMESPACE environment variables (set them with the Downward API), else from the service
// account's namespace file and HOSTNAME.
func WithPod(namespace, name string) Option {
	return optionFunc(func(o *options) {
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
// annotation. Default: slog.Default().
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if logger == nil {
			o.errs = append(o.errs, fmt.Errorf("WithLogger(nil): pass a logger, or omit the option to use slog.Default()"))
		}
		o.logger = logger
	})
}

// withEnvironment replaces the process environment used to find the pod identity (tests only).
func withEnvironment(env environment) Option {
	return optionFunc(func(o *options) { o.env = env })
}
