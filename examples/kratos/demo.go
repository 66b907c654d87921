package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-kratos/kratos/v2"
	klog "github.com/go-kratos/kratos/v2/log"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/kuberegistry/kuberegistry"
	kuberegistrykratos "github.com/kuberegistry/kuberegistry/contrib/kratos"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const demoNamespace = "shop"

// quiet drops what the demo's registries log.
var quiet = kuberegistry.WithLogger(slog.New(slog.DiscardHandler))

// runDemo runs greeter applications in memory and prints who answers the clients at each step.
func runDemo(ctx context.Context, out io.Writer) error {
	// go-kratos logs through a global logger; the demo prints only its steps and errors.
	klog.SetLogger(klog.NewFilter(klog.NewStdLogger(os.Stderr), klog.FilterLevel(klog.LevelError)))
	d := &demo{client: fake.NewClientset()}
	defer d.close()
	fmt.Fprintf(out, "kuberegistry go-kratos demo on an in-memory cluster (client-go fake clientset), namespace %q\n", demoNamespace)

	// The clients' side: a started registry, adapted to go-kratos.
	reg, err := kuberegistry.New(d.client, kuberegistry.WithNamespace(demoNamespace), quiet)
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := reg.Start(ctx); err != nil {
		return err
	}
	discovery, err := kuberegistrykratos.New(reg)
	if err != nil {
		return err
	}
	for _, name := range []string{"greeter-1", "greeter-2"} {
		if err := d.startApp(ctx, name); err != nil {
			return err
		}
	}
	// go-kratos's resolvers ignore an empty set: dial once the applications are registered.
	if err := awaitInstances(ctx, reg, 2); err != nil {
		return err
	}
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint("discovery:///greeter"), kgrpc.WithDiscovery(discovery),
		kgrpc.WithPrintDiscoveryDebugLog(false))
	if err != nil {
		return err
	}
	defer conn.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	hc, err := khttp.NewClient(ctx, khttp.WithEndpoint("discovery:///greeter"), khttp.WithDiscovery(discovery),
		khttp.WithBlock(), khttp.WithTransport(transport))
	if err != nil {
		return err
	}
	defer hc.Close()

	steps := []struct {
		say  string
		do   func() error
		want []string
	}{
		{"greeter-1 and greeter-2 run", func() error { return nil }, []string{"greeter-1", "greeter-2"}},
		{"greeter-1 is not ready", func() error { return d.setReady(ctx, "greeter-1", false) }, []string{"greeter-2"}},
		{"greeter-3 starts", func() error { return d.startApp(ctx, "greeter-3") }, []string{"greeter-2", "greeter-3"}},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.say, err)
		}
		if err := awaitAnswers(ctx, s.want, func(ctx context.Context) (string, error) { return sayHelloGRPC(ctx, conn) }); err != nil {
			return fmt.Errorf("step %d (%s), gRPC: %w", i+1, s.say, err)
		}
		if err := awaitAnswers(ctx, s.want, func(ctx context.Context) (string, error) { return sayHelloHTTP(ctx, hc) }); err != nil {
			return fmt.Errorf("step %d (%s), HTTP: %w", i+1, s.say, err)
		}
		fmt.Fprintf(out, "step %d: %-28s → gRPC and HTTP answered by %s\n", i+1, s.say, strings.Join(s.want, ", "))
	}
	return nil
}

// awaitInstances waits until the registry serves n instances of the greeter.
func awaitInstances(ctx context.Context, reg *kuberegistry.Registry, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := reg.Watch(ctx, "greeter")
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		instances, err := w.Next()
		if err != nil {
			return fmt.Errorf("waiting for %d greeters: %w", n, err)
		}
		if len(instances) == n {
			return nil
		}
	}
}

// awaitAnswers makes rounds of calls until they are answered by exactly want: the clients learn
// of each change a moment after it.
func awaitAnswers(ctx context.Context, want []string, call func(context.Context) (string, error)) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var who []string
		for range 10 {
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			name, err := call(callCtx)
			cancel()
			if err != nil {
				return err
			}
			if !slices.Contains(who, name) {
				who = append(who, name)
			}
		}
		slices.Sort(who)
		if slices.Equal(who, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("answered by %v, want %v", who, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// demo stands in for the cluster: the fake clientset and the applications of its pods.
type demo struct {
	client *fake.Clientset
	apps   []*demoApp
}

type demoApp struct {
	app *kratos.App
	reg *kuberegistry.Registry
	ran chan error
}

// startApp creates a pod, running and ready at 127.0.0.1, and runs a greeter application in it
// that registers the pod through kratos.Registrar.
func (d *demo) startApp(ctx context.Context, name string) error {
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
	reg, err := kuberegistry.New(d.client, kuberegistry.WithPod(demoNamespace, name), quiet)
	if err != nil {
		return err
	}
	registrar, err := kuberegistrykratos.New(reg)
	if err != nil {
		_ = reg.Close()
		return err
	}
	a := &demoApp{app: newGreeterApp(name, "127.0.0.1:0", "127.0.0.1:0", registrar), reg: reg, ran: make(chan error, 1)}
	d.apps = append(d.apps, a)
	go func() { a.ran <- a.app.Run() }()
	return nil
}

// setReady writes the pod's Ready condition, as the kubelet does after a readiness probe.
func (d *demo) setReady(ctx context.Context, name string, ready bool) error {
	pods := d.client.CoreV1().Pods(demoNamespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

// close stops every application (each deregisters first) and waits for it.
func (d *demo) close() {
	for _, a := range d.apps {
		_ = a.app.Stop()
		<-a.ran
		_ = a.reg.Close()
	}
}
