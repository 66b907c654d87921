// Command demo shows kuberegistry at work: it starts pods of a service, rolls them (they become
// ready, one terminates, one is added) and prints what a watcher sees at each step.
//
// With no flag it runs against an in-memory cluster (the client-go fake clientset). With
// -kubeconfig, or inside a cluster, it does the same against that cluster in a namespace it
// creates and deletes; its pods carry a scheduling gate, so no node ever runs them and the demo
// plays the kubelet's part by writing their status.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	service   = "greeter"
	finalizer = "kuberegistry.io/demo" // keeps a deleted pod terminating until the demo lets go
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a cluster to run against (default: in-cluster if there, else an in-memory cluster)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run plays the whole demo and writes what the watcher sees to out.
func run(ctx context.Context, out io.Writer, kubeconfig string) error {
	client, where, inMemory, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	d := &demo{client: client, inMemory: inMemory, out: out}
	if err := d.createNamespace(ctx); err != nil {
		return err
	}
	defer d.cleanUp()
	fmt.Fprintf(out, "kuberegistry demo on %s, namespace %q\n", where, d.namespace)

	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace(d.namespace),
		kuberegistry.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	defer reg.Close()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reg.Start(startCtx); err != nil {
		return err
	}
	w, err := reg.Watch(ctx, service)
	if err != nil {
		return err
	}
	defer w.Stop()
	if _, err := w.Next(); err != nil { // the empty set we start from
		return err
	}

	steps := []struct {
		say  string
		want []string // the instance IDs the watcher should see after the step
		do   func(context.Context) error
	}{
		{"create greeter-1..3, not ready yet", nil, func(ctx context.Context) error {
			for i := 1; i <= 3; i++ {
				if err := d.createPod(ctx, i); err != nil {
					return err
				}
			}
			return d.setReady(ctx, 1, false) // running, not ready: nothing to see yet
		}},
		{"greeter-1 becomes ready", []string{"greeter-1"}, func(ctx context.Context) error { return d.setReady(ctx, 1, true) }},
		{"greeter-2 and greeter-3 become ready", []string{"greeter-1", "greeter-2", "greeter-3"}, func(ctx context.Context) error {
			if err := d.setReady(ctx, 2, true); err != nil {
				return err
			}
			return d.setReady(ctx, 3, true)
		}},
		{"greeter-2 terminates", []string{"greeter-1", "greeter-3"}, func(ctx context.Context) error { return d.terminate(ctx, 2) }},
		{"greeter-4 is added and becomes ready", []string{"greeter-1", "greeter-3", "greeter-4"}, func(ctx context.Context) error {
			if err := d.createPod(ctx, 4); err != nil {
				return err
			}
			return d.setReady(ctx, 4, true)
		}},
	}
	for i, step := range steps {
		if err := step.do(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, step.say, err)
		}
		if step.want == nil {
			fmt.Fprintf(out, "step %d: %-40s watcher sees: [] (no ready pod)\n", i+1, step.say)
			continue
		}
		// A step that changes several pods may reach the watcher as one change or as several:
		// read until the watcher has caught up with the step, or give up.
		giveUp := time.AfterFunc(30*time.Second, func() { _ = w.Stop() })
		for {
			instances, err := w.Next()
			if err != nil {
				return fmt.Errorf("step %d (%s): the watcher never saw %v: %w", i+1, step.say, step.want, err)
			}
			if ids(instances) == strings.Join(step.want, ",") {
				fmt.Fprintf(out, "step %d: %-40s watcher sees: %s\n", i+1, step.say, render(instances))
				giveUp.Stop()
				break
			}
		}
	}
	return nil
}

// ids lists instance IDs, sorted, comma-separated.
func ids(instances []*kuberegistry.ServiceInstance) string {
	out := make([]string, 0, len(instances))
	for _, in := range instances {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// connect picks the cluster: a kubeconfig, else in-cluster, else in memory.
func connect(kubeconfig string) (kubernetes.Interface, string, bool, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		return fake.NewClientset(), "an in-memory cluster (client-go fake clientset)", true, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	return client, cfg.Host, false, err
}

// demo drives the pods of the demo service, standing in for the scheduler and kubelet.
type demo struct {
	client    kubernetes.Interface
	inMemory  bool
	out       io.Writer
	namespace string
	mu        sync.Mutex // guards terminating
	// terminating lists pods held by the demo's finalizer, released at clean-up.
	terminating []string
}

func (d *demo) createNamespace(ctx context.Context) error {
	meta := metav1.ObjectMeta{GenerateName: "kuberegistry-demo-"}
	if d.inMemory {
		meta = metav1.ObjectMeta{Name: "kuberegistry-demo"} // the fake clientset generates no names
	}
	ns, err := d.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the demo namespace: %w", err)
	}
	d.namespace = ns.Name
	return nil
}

func (d *demo) createPod(ctx context.Context, i int) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("greeter-%d", i),
			Labels: map[string]string{
				kuberegistry.LabelsKeyServiceName:    service,
				kuberegistry.LabelsKeyServiceID:      fmt.Sprintf("greeter-%d", i),
				kuberegistry.LabelsKeyServiceVersion: "v1.0.0",
			},
			Annotations: map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"8080":"http"}`},
			Finalizers:  []string{finalizer},
		},
		Spec: corev1.PodSpec{
			SchedulingGates:              []corev1.PodSchedulingGate{{Name: finalizer}},
			AutomountServiceAccountToken: new(bool),
			Containers:                   []corev1.Container{{Name: "greeter", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	_, err := d.client.CoreV1().Pods(d.namespace).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// setReady writes the status a kubelet would: running, with an IP, ready or not.
func (d *demo) setReady(ctx context.Context, i int, ready bool) error {
	pods := d.client.CoreV1().Pods(d.namespace)
	pod, err := pods.Get(ctx, fmt.Sprintf("greeter-%d", i), metav1.GetOptions{})
	if err != nil {
		return err
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	ip := fmt.Sprintf("10.0.0.%d", i)
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      ip,
		PodIPs:     []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}},
	}
	_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

// terminate deletes a pod; its finalizer keeps it terminating, as a pod in its grace period is.
func (d *demo) terminate(ctx context.Context, i int) error {
	name := fmt.Sprintf("greeter-%d", i)
	pods := d.client.CoreV1().Pods(d.namespace)
	if d.inMemory {
		// The fake clientset deletes at once; mark the pod the way the API server would.
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		pod.DeletionTimestamp = &now
		_, err = pods.Update(ctx, pod, metav1.UpdateOptions{})
		return err
	}
	d.mu.Lock()
	d.terminating = append(d.terminating, name)
	d.mu.Unlock()
	return pods.Delete(ctx, name, metav1.DeleteOptions{})
}

// cleanUp releases the finalizers and deletes the namespace, whatever happened before.
func (d *demo) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := d.client.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			p.Finalizers = nil
			_, _ = d.client.CoreV1().Pods(d.namespace).Update(ctx, &p, metav1.UpdateOptions{})
		}
	}
	if err := d.client.CoreV1().Namespaces().Delete(ctx, d.namespace, metav1.DeleteOptions{}); err != nil {
		fmt.Fprintf(d.out, "clean-up: deleting namespace %s: %v\n", d.namespace, err)
	}
}

// render prints instances as "[greeter-1 http://10.0.0.1:8080, …]".
func render(instances []*kuberegistry.ServiceInstance) string {
	parts := make([]string, 0, len(instances))
	for _, in := range instances {
		parts = append(parts, in.ID+" "+strings.Join(in.Endpoints, " "))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
