package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// registrarPod is the pod the Register measurement registers.
const registrarPod = "kuberegistry-bench-registrar"

// registerResult is what one Register call sends to the API server.
type registerResult struct {
	idle    []string // requests of a Register on a registry that was not started
	started []string // requests of a Register on a started registry, which waits for its own cache
}

// requestLog records the requests of a client, as "METHOD path".
type requestLog struct {
	mu       sync.Mutex // guards requests
	requests []string
}

func (l *requestLog) RoundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.requests = append(l.requests, req.Method+" "+req.URL.Path)
	l.mu.Unlock()
	return next.RoundTrip(req)
}

// take returns the requests recorded since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	taken := l.requests
	l.requests = nil
	return taken
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// measureRegister counts the HTTP requests of one Register of a pod created for it, through a
// client whose transport records every round trip: once on a registry that is not started (the
// patch alone) and once on a started one (Register then also waits for the registry's informer to
// show the change, which must cost no request).
func measureRegister(ctx context.Context, c *cluster, namespace string) (registerResult, error) {
	var res registerResult
	admin, err := c.protobufClient()
	if err != nil {
		return res, err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: registrarPod, Namespace: namespace},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: new(false),
			SchedulingGates:              []corev1.PodSchedulingGate{{Name: schedulingGate}},
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
				Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 9000}},
			}},
		},
	}
	if _, err := admin.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("creating pod %s: %w", registrarPod, err)
	}

	log := &requestLog{}
	cfg := rest.CopyConfig(c.config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) { return log.RoundTrip(next, req) })
	})
	instance := &kuberegistry.ServiceInstance{
		ID:        registrarPod,
		Name:      "bench-registrar",
		Version:   "v1.0.0",
		Metadata:  map[string]string{"zone": "eu-west-1a"},
		Endpoints: []string{"grpc://0.0.0.0:9000"},
	}
	opts := []kuberegistry.Option{kuberegistry.WithPod(namespace, registrarPod), kuberegistry.WithNamespace(namespace)}

	idle, err := kuberegistry.NewForConfig(cfg, opts...)
	if err != nil {
		return res, err
	}
	log.take()
	err = idle.Register(ctx, instance)
	res.idle = log.take()
	_ = idle.Close()
	if err != nil {
		return res, fmt.Errorf("calling Register: %w", err)
	}

	started, err := kuberegistry.NewForConfig(cfg, opts...)
	if err != nil {
		return res, err
	}
	defer func() { _ = started.Close() }()
	if err := started.Start(ctx); err != nil {
		return res, err
	}
	changed := instance.Clone()
	changed.Version = "v1.0.1"
	// Start returns once the list is handled; the informer's watch request follows at once, in the
	// background. Wait until it is open, so that only Register's own requests are counted.
	if err := awaitWatching(ctx, started); err != nil {
		return res, err
	}
	log.take()
	err = started.Register(ctx, changed)
	res.started = log.take()
	if err != nil {
		return res, fmt.Errorf("calling Register on a started registry: %w", err)
	}
	logf("Register: %d request(s) %v; on a started registry: %d request(s) %v", len(res.idle), res.idle, len(res.started), res.started)
	return res, nil
}

// awaitWatching waits until every informer of reg has its watch open (see Status), for at most
// ten seconds.
func awaitWatching(ctx context.Context, reg *kuberegistry.Registry) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		watching := true
		for _, s := range reg.Status().Informers {
			watching = watching && s.Watching
		}
		if watching {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the started registry's watch did not open: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
