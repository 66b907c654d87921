package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func servicesCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "services",
		Short: "List the services in scope with their instance counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := o.startedRegistry(cmd.Context())
			if err != nil {
				return err
			}
			defer reg.Close()
			names, err := reg.Services(cmd.Context())
			if err != nil {
				return err
			}
			type service struct {
				Name      string `json:"name"`
				Instances int    `json:"instances"`
			}
			var list []service
			t := &table{headers: []string{"SERVICE", "INSTANCES"}, wide: []string{"VERSIONS"}}
			for _, name := range names {
				instances, err := reg.GetService(cmd.Context(), name)
				if err != nil {
					return err
				}
				list = append(list, service{name, len(instances)})
				versions := map[string]bool{}
				for _, in := range instances {
					versions[in.Version] = true
				}
				t.add(name, strconv.Itoa(len(instances)), strings.Join(slices.Sorted(maps.Keys(versions)), ","))
			}
			return o.emit(list, t)
		},
	}
}

func instancesCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "instances SERVICE",
		Short: "Show exactly what a client with the same options resolves for a service",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := o.startedRegistry(cmd.Context())
			if err != nil {
				return err
			}
			defer reg.Close()
			instances, err := reg.GetService(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			t := &table{headers: []string{"ID", "VERSION", "ENDPOINTS"}, wide: []string{"METADATA"}}
			for _, in := range instances {
				t.add(in.ID, in.Version, strings.Join(in.Endpoints, ","), metadataOf(in))
			}
			if instances == nil {
				instances = []*kuberegistry.ServiceInstance{}
			}
			return o.emit(instances, t)
		},
	}
}

func metadataOf(in *kuberegistry.ServiceInstance) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(in.Metadata)) {
		parts = append(parts, k+"="+in.Metadata[k])
	}
	return strings.Join(parts, ",")
}

func podsCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "pods [SERVICE]",
		Short: "Every registered pod with its verdict: serving or not, and why",
		Long: "pods lists the pods that carry a service label and says, with the library's own\n" +
			"translation, label selector and readiness policy, whether discovery serves each and why.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			client, ns, err := o.client()
			if err != nil {
				return err
			}
			selector := kuberegistry.LabelsKeyServiceName
			if len(args) == 1 {
				selector += "=" + args[0]
			}
			// Every pod of the services: the readiness policy depends on a service's other pods.
			pods, err := client.CoreV1().Pods(ns).List(cmd.Context(), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return err
			}
			opts := []kuberegistry.Option{kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(discard)}
			if o.selector != "" {
				opts = append(opts, kuberegistry.WithLabelSelector(o.selector))
			}
			reg, err := kuberegistry.New(client, opts...) // not started: ExplainPods makes no request
			if err != nil {
				return err
			}
			defer reg.Close()
			verdicts := reg.ExplainPods(pods.Items)
			slices.SortFunc(verdicts, func(a, b kuberegistry.PodVerdict) int {
				return strings.Compare(a.Namespace+"/"+a.Service+"/"+a.Name, b.Namespace+"/"+b.Service+"/"+b.Name)
			})
			headers := []string{"NAME", "SERVICE", "SERVING", "STATE", "REASON"}
			if ns == "" {
				headers = append([]string{"NAMESPACE"}, headers...)
			}
			t := &table{headers: headers, wide: []string{"ENDPOINTS"}}
			for _, v := range verdicts {
				serving, endpoints := "no", ""
				if v.Serving {
					serving = "yes"
				}
				if v.Instance != nil {
					endpoints = strings.Join(v.Instance.Endpoints, ",")
				}
				cells := []string{v.Name, v.Service, serving, v.State, v.Reason, endpoints}
				if ns == "" {
					cells = append([]string{v.Namespace}, cells...)
				}
				t.add(cells...)
			}
			if verdicts == nil {
				verdicts = []kuberegistry.PodVerdict{}
			}
			return o.emit(verdicts, t)
		},
	}
}

func watchCommand(o *options) *cobra.Command {
	var changes int
	cmd := &cobra.Command{
		Use:   "watch SERVICE",
		Short: "Follow a service's set: one line per change, with a timestamp and the +/- difference",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := o.startedRegistry(cmd.Context())
			if err != nil {
				return err
			}
			defer reg.Close()
			w, err := reg.Watch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer w.Stop()
			var last map[string]bool
			for n := 0; changes == 0 || n <= changes; n++ {
				instances, err := w.Next()
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil // interrupted
					}
					return err
				}
				now := map[string]bool{}
				for _, in := range instances {
					now[in.ID+" "+strings.Join(in.Endpoints, ",")] = true
				}
				stamp := time.Now().Format("15:04:05.000")
				fmt.Fprintf(o.streams.Out, "%s %s: %d instances\n", stamp, args[0], len(instances))
				for _, k := range slices.Sorted(maps.Keys(now)) {
					if !last[k] {
						fmt.Fprintf(o.streams.Out, "%s   + %s\n", stamp, k)
					}
				}
				for _, k := range slices.Sorted(maps.Keys(last)) {
					if !now[k] {
						fmt.Fprintf(o.streams.Out, "%s   - %s\n", stamp, k)
					}
				}
				last = now
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&changes, "changes", 0, "exit after this many changes, after the current set (0: until interrupted)")
	return cmd
}
