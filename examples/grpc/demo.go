package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/kuberegistry/kuberegistry"
	kuberegistrygrpc "github.com/kuberegistry/kuberegistry/contrib/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const demoNamespace = "shop"

// runDemo plays a rollout in memory and prints who answers the client at each step.
func runDemo(ctx context.Context, out io.Writer) error {
	d := &demo{client: fake.NewClientset(), pods: map[string]*demoPod{}}
	defer d.close()
	fmt.Fprintf(out, "kuberegistry gRPC demo on an in-memory cluster (client-go fake clientset), namespace %q\n", demoNamespace)
	for i := 1; i <= 3; i++ {
		if err := d.startPod(ctx, i); err != nil {
			return err
		}
	}

	// The client: a started registry, the resolver over it, round_robin over what it resolves.
	reg, err := kuberegistry.New(d.client, kuberegistry.WithNamespace(demoNamespace), kuberegistry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := reg.Start(ctx); err != nil {
		return err
	}
	builder, err := kuberegistrygrpc.NewBuilder(reg)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("kubernetes:///greeter", builder.DialOption(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(roundRobin))
	if err != nil {
		return err
	}
	defer conn.Close()

	steps := []struct {
		say  string
		do   func() error
		want []string // who answers afterwards; none: calls fail
	}{
		{"greeter-1..3 are ready", func() error { return nil }, []string{"greeter-1", "greeter-2", "greeter-3"}},
		{"greeter-2 is terminating", func() error { return d.terminate(ctx, "greeter-2") }, []string{"greeter-1", "greeter-3"}},
		{"greeter-4 is added", func() error { return d.startPod(ctx, 4) }, []string{"greeter-1", "greeter-3", "greeter-4"}},
		{"every server deregisters", func() error { return d.deregisterAll(ctx) }, nil},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.say, err)
		}
		result, err := awaitAnswers(ctx, conn, s.want)
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.say, err)
		}
		fmt.Fprintf(out, "step %d: %-26s → %s\n", i+1, s.say, result)
	}
	return nil
}

// awaitAnswers makes rounds of calls until they are answered by exactly want (or, for no want,
// fail), and describes the last round; the resolver learns of each change a moment after it.
func awaitAnswers(ctx context.Context, conn *grpc.ClientConn, want []string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var who []string
		var failure error
		for range 12 {
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			start := time.Now()
			answer, err := sayHello(callCtx, conn, "demo")
			cancel()
			if err != nil {
				if time.Since(start) < time.Second {
					failure = err // failed at once, as it should with no instance
				}
				break
			}
			server := answer[strings.LastIndex(answer, " ")+1:]
			if !slices.Contains(who, server) {
				who = append(who, server)
			}
		}
		slices.Sort(who)
		switch {
		case want == nil && failure != nil:
			return "calls fail at once with " + status.Code(failure).String(), nil
		case want != nil && failure == nil && slices.Equal(who, want):
			return "answered by " + strings.Join(who, ", "), nil
		case time.Now().After(deadline):
			return "", fmt.Errorf("answered by %v (last error %v), want %v", who, failure, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// demo stands in for the cluster: the fake clientset, and one greeter process per pod.
type demo struct {
	client *fake.Clientset
	pods   map[string]*demoPod
}

// demoPod is a pod, the greeter it runs and the registry that registered it.
type demoPod struct {
	server *grpc.Server
	reg    *kuberegistry.Registry
}

// startPod starts greeter-i on 127.0.0.1, creates its pod, running and ready, and registers it
// from "inside" the pod, as its process would.
func (d *demo) startPod(ctx context.Context, i int) error {
	name := fmt.Sprintf("greeter-%d", i)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p := &demoPod{server: serveGreeter(ln, name)}
	d.pods[name] = p
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: name},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      "127.0.0.1",
			PodIPs:     []corev1.PodIP{{IP: "127.0.0.1"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	if _, err := d.client.CoreV1().Pods(demoNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	p.reg, err = kuberegistry.New(d.client, kuberegistry.WithPod(demoNamespace, name))
	if err != nil {
		return err
	}
	return p.reg.Register(ctx, &kuberegistry.ServiceInstance{
		ID: name, Name: "greeter", Version: "v1.0.0",
		Endpoints: []string{fmt.Sprintf("grpc://127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port)},
	})
}

// terminate marks a pod as being deleted; the fake clientset ignores finalizers, so the deletion
// timestamp is set the way the API server would set it.
func (d *demo) terminate(ctx context.Context, name string) error {
	pods := d.client.CoreV1().Pods(demoNamespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	_, err = pods.Update(ctx, pod, metav1.UpdateOptions{})
	return err
}

// deregisterAll withdraws every pod's registration, as each server does when it shuts down.
func (d *demo) deregisterAll(ctx context.Context) error {
	for _, p := range d.pods {
		if err := p.reg.Deregister(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) close() {
	for _, p := range d.pods {
		p.server.Stop()
		if p.reg != nil {
			_ = p.reg.Close()
		}
	}
}
