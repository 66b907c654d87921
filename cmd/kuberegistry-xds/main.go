package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, processEnvironment())
	stop()
	os.Exit(code)
}

// run is the whole program: it returns the exit code. Flags are checked, and the kubeconfig and
// TLS files read, before any request to the cluster; a mistake is one line naming the fix.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env environment) int {
	c, err := parseFlags(args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "kuberegistry-xds:", err)
		return 2
	}
	if c.printBootstrap {
		if err := printBootstrap(c, stdout); err != nil {
			fmt.Fprintln(stderr, "kuberegistry-xds:", err)
			return 1
		}
		return 0
	}

	logger := newLogger(c, stderr)
	klog.SetSlogLogger(logger) // client-go's messages in the same stream and format
	if err := serve(ctx, c, env, logger); err != nil {
		logger.Error("kuberegistry-xds failed", "error", err.Error())
		return 1
	}
	return 0
}

// serve loads the Kubernetes configuration, builds the sources and the tier, and runs it until
// ctx ends.
func serve(ctx context.Context, c *config, env environment, logger *slog.Logger) error {
	kube, err := loadKubeConfig(c.kubeconfig, env)
	if err != nil {
		return err
	}
	namespaces, why := discoveryScope(c, kube, env)
	scope := namespaces
	if len(namespaces) == 1 && namespaces[0] == "" {
		scope = []string{"(all)"}
	}
	logger.Info("starting", "kubernetes", kube.source, "api_server", kube.rest.Host,
		"namespaces", scope, "scope_from", why, "selector", c.selector, "pods", c.pods, "services", c.services)
	sources, err := newSources(c, kube.rest, namespaces, logger)
	if err != nil {
		return err
	}
	t, err := newTier(c, sources, logger)
	if err != nil {
		closeSources(sources)
		return err
	}
	return t.run(ctx)
}
