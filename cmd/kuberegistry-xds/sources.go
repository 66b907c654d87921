package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// source is a discovery source the tier serves: a kuberegistry.Registry (registered pods) or an
// EndpointSliceDiscovery (plain Services). Both have every method.
type source interface {
	kuberegistry.Catalog
	Start(ctx context.Context) error
	Close() error
	Check(maxStale time.Duration) error
	Status() kuberegistry.Status
	Stats() kuberegistry.Stats
}

var (
	_ source = (*kuberegistry.Registry)(nil)
	_ source = (*kuberegistry.EndpointSliceDiscovery)(nil)
)

// namedSource is a source and the name metrics and logs give it: "pods" or "services".
type namedSource struct {
	name string
	source
}

// newSources builds the sources the flags ask for, pods first so that a registered service wins
// over a plain Service of the same name. Building makes no request; the caller starts them.
func newSources(c *config, cfg *rest.Config, namespaces []string, logger *slog.Logger) ([]namedSource, error) {
	opts := []kuberegistry.Option{kuberegistry.WithLogger(logger)}
	if len(namespaces) == 1 {
		opts = append(opts, kuberegistry.WithNamespace(namespaces[0]))
	} else {
		opts = append(opts, kuberegistry.WithNamespaces(namespaces...))
	}
	if c.selector != "" {
		opts = append(opts, kuberegistry.WithLabelSelector(c.selector))
	}
	var sources []namedSource
	if c.pods {
		// NewForConfig decodes pods lean from protobuf: the cheapest way to follow them.
		reg, err := kuberegistry.NewForConfig(cfg, opts...)
		if err != nil {
			return nil, fmt.Errorf("pod discovery: %w", err)
		}
		sources = append(sources, namedSource{"pods", reg})
	}
	if c.services {
		cfg := rest.CopyConfig(cfg)
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			closeSources(sources)
			return nil, fmt.Errorf("service discovery: building the Kubernetes client: %w", err)
		}
		slices, err := kuberegistry.NewEndpointSliceDiscovery(client, opts...)
		if err != nil {
			closeSources(sources)
			return nil, fmt.Errorf("service discovery: %w", err)
		}
		sources = append(sources, namedSource{"services", slices})
	}
	return sources, nil
}

// startRetry is how long startSources waits before trying a refused Start again, at first and at
// most: a refusal is fixed by someone applying a Role, which takes minutes, not milliseconds.
const (
	startRetryMin = time.Second
	startRetryMax = 30 * time.Second
)

// startSources starts every source and returns once all are synced, or ctx ends. The library
// retries an unreachable API server itself, and fails Start at once when RBAC refuses; such a
// refusal is logged (its *PermissionError names the missing grant), reported to onError for
// /readyz, and tried again with backoff, so that applying the Role fixes a running tier.
func startSources(ctx context.Context, sources []namedSource, logger *slog.Logger, onError func(error)) error {
	for _, s := range sources {
		wait := startRetryMin
		for {
			err := s.Start(ctx)
			if err == nil {
				logger.Info("discovery synced", "source", s.name)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = fmt.Errorf("starting %s discovery: %w", s.name, err)
			var denied *kuberegistry.PermissionError
			if errors.As(err, &denied) {
				logger.Error("RBAC refused discovery; retrying", "source", s.name, "retry_in", wait.String(), "error", err.Error())
			} else {
				logger.Error("discovery failed to start; retrying", "source", s.name, "retry_in", wait.String(), "error", err.Error())
			}
			onError(err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, startRetryMax)
		}
	}
	return nil
}

// closeSources closes every source; each Close waits for its informers' goroutines.
func closeSources(sources []namedSource) {
	for _, s := range sources {
		_ = s.Close()
	}
}

// catalogs returns the sources as the xDS server takes them, in the same order.
func catalogs(sources []namedSource) []kuberegistry.Catalog {
	out := make([]kuberegistry.Catalog, len(sources))
	for i, s := range sources {
		out[i] = s.source
	}
	return out
}
