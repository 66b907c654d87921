package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// serviceAccountNamespaceFile holds the namespace of the pod the process runs in.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// userAgent names the tier in the API server's audit log and metrics.
const userAgent = "kuberegistry-xds"

// environment is what the program reads of its surroundings to find its configuration, so that
// tests can stand in for a pod or a laptop.
type environment struct {
	getenv      func(string) string
	readFile    func(string) ([]byte, error)
	inCluster   func() (*rest.Config, error) // rest.InClusterConfig
	loadingRule func() *clientcmd.ClientConfigLoadingRules
}

func processEnvironment() environment {
	return environment{getenv: os.Getenv, readFile: os.ReadFile, inCluster: rest.InClusterConfig,
		loadingRule: clientcmd.NewDefaultClientConfigLoadingRules}
}

// kubeConfig is where the program talks to the API server from, and the namespace that place
// implies when -namespaces does not say.
type kubeConfig struct {
	rest      *rest.Config
	source    string // for the log: "in-cluster", or the kubeconfig's path
	namespace string // the kubeconfig context's namespace; "" in a pod or when unset
}

// loadKubeConfig finds the Kubernetes configuration: -kubeconfig when given, else the pod's
// service account (in-cluster), else $KUBECONFIG or ~/.kube/config, as client-go's loading rules
// read them. It reads files only: no request.
func loadKubeConfig(path string, env environment) (*kubeConfig, error) {
	if path != "" {
		return fromKubeconfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, path)
	}
	cfg, err := env.inCluster()
	if err == nil {
		cfg.UserAgent = userAgent
		return &kubeConfig{rest: cfg, source: "in-cluster"}, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		// In a pod whose service account token cannot be read: saying so beats a confusing
		// fallback to a kubeconfig the image does not have.
		return nil, fmt.Errorf("in-cluster configuration: %w (mount the service account token, or pass -kubeconfig)", err)
	}
	rules := env.loadingRule()
	source := strings.Join(rules.Precedence, string(os.PathListSeparator))
	if rules.ExplicitPath != "" {
		source = rules.ExplicitPath
	}
	return fromKubeconfig(rules, source)
}

func fromKubeconfig(rules *clientcmd.ClientConfigLoadingRules, source string) (*kubeConfig, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no Kubernetes configuration: not in a pod, and no kubeconfig at %s: pass -kubeconfig or set $KUBECONFIG", source)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", source, err)
	}
	cfg.UserAgent = userAgent
	// The namespace the context names, if any (loader.Namespace says "default" for none).
	ns := ""
	if raw, err := loader.RawConfig(); err == nil {
		if ctx := raw.Contexts[raw.CurrentContext]; ctx != nil {
			ns = ctx.Namespace
		}
	}
	return &kubeConfig{rest: cfg, source: source, namespace: ns}, nil
}

// discoveryScope returns the namespaces to discover ([""] for all) and why, for the log:
// -all-namespaces; else -namespaces; else the pod's own namespace (POD_NAMESPACE from the Downward
// API, else the service account's namespace file); else the kubeconfig context's namespace; else
// "default". The pod's namespace is the default so that a Role there is all the tier needs.
func discoveryScope(c *config, kube *kubeConfig, env environment) (namespaces []string, why string) {
	switch {
	case c.allNamespaces:
		return []string{""}, "-all-namespaces"
	case len(c.namespaces) > 0:
		return c.namespaces, "-namespaces"
	}
	if ns := strings.TrimSpace(env.getenv("POD_NAMESPACE")); ns != "" {
		return []string{ns}, "the pod's namespace (POD_NAMESPACE)"
	}
	if b, err := env.readFile(serviceAccountNamespaceFile); err == nil && strings.TrimSpace(string(b)) != "" {
		return []string{strings.TrimSpace(string(b))}, "the pod's namespace (service account)"
	}
	if kube != nil && kube.namespace != "" {
		return []string{kube.namespace}, "the kubeconfig context's namespace"
	}
	return []string{"default"}, "not in a pod and no namespace in the kubeconfig context"
}
