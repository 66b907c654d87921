// Command kubectl-registry is a kubectl plugin that explains kuberegistry discovery: which
// services and instances a client resolves, why a pod gets traffic or not, and whether this
// identity has what discovery and registration need. Installed on PATH as kubectl-registry, it
// runs as `kubectl registry …` and takes kubectl's flags (--kubeconfig, --context, -n, -A, -o).
//
// Every answer comes from the library itself (kuberegistry.Registry, ExplainPods), never from a
// second implementation, so the plugin sees what a client with the same options resolves.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}
