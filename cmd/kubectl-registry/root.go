package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
)

// options are the flags every command shares.
type options struct {
	config        *genericclioptions.ConfigFlags
	allNamespaces bool
	output        string // "", "wide", "json" or "yaml"
	selector      string // discovery's label selector (WithLabelSelector)
	timeout       time.Duration
	streams       genericiooptions.IOStreams
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), streams: streams}
	root := &cobra.Command{
		Use:         "registry",
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl registry"},
		Short:       "Explain kuberegistry discovery: services, instances, why a pod gets traffic or not",
		Long: "kubectl registry shows what a kuberegistry client with the same options resolves,\n" +
			"and explains, pod by pod, why discovery serves it or not.",
		SilenceUsage: true,
	}
	o.config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "discover in all namespaces (needs a ClusterRole)")
	root.PersistentFlags().StringVarP(&o.output, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	root.PersistentFlags().StringVarP(&o.selector, "selector", "l", "", "discover only the registered pods matching this label selector, as WithLabelSelector")
	root.PersistentFlags().DurationVar(&o.timeout, "sync-timeout", 30*time.Second, "how long to wait for discovery to sync")
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(servicesCommand(o), instancesCommand(o), podsCommand(o), watchCommand(o), doctorCommand(o))
	return root
}

// validate checks the shared flags before any request.
func (o *options) validate() error {
	switch o.output {
	case "", "wide", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use wide, json or yaml", o.output)
}

// client builds the Kubernetes client from kubectl's flags.
func (o *options) client() (kubernetes.Interface, string, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	if o.allNamespaces {
		ns = ""
	}
	return client, ns, nil
}

// startedRegistry checks the flags and returns a Registry started as a client with the same
// options would be, synced.
func (o *options) startedRegistry(ctx context.Context) (*kuberegistry.Registry, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	client, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	return o.registry(ctx, client, ns)
}

// registry starts a Registry with the options a client would use, and returns it synced.
func (o *options) registry(ctx context.Context, client kubernetes.Interface, ns string) (*kuberegistry.Registry, error) {
	opts := []kuberegistry.Option{kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(discard)}
	if o.selector != "" {
		opts = append(opts, kuberegistry.WithLabelSelector(o.selector))
	}
	reg, err := kuberegistry.New(client, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		_ = reg.Close()
		return nil, err
	}
	return reg, nil
}
