package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/naive"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// receiver is one design, started over a fleet with its watchers open, as the consumer of a
// change sees it.
type receiver interface {
	// await blocks until the change just written to pod i, after which service svc has want ready
	// instances, has reached the consumer, and returns when it did.
	await(ctx context.Context, i, svc, want int) (time.Time, error)
	close()
}

// naiveReceiver is the naive registry with one watcher per watched service: each watcher is one
// more informer handler.
type naiveReceiver struct {
	reg      *naive.Registry
	watchers []*naive.Watcher // by service index
}

func openNaive(ctx context.Context, c *cluster, namespace string, watched []string) (*naiveReceiver, error) {
	client, err := c.jsonClient()
	if err != nil {
		return nil, err
	}
	r := &naiveReceiver{reg: naive.New(client, namespace)}
	if err := r.reg.Start(ctx); err != nil {
		r.reg.Close()
		return nil, fmt.Errorf("starting the naive registry: %w", err)
	}
	for _, name := range watched {
		w, err := r.reg.Watch(name)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("watching %s with the naive registry: %w", name, err)
		}
		r.watchers = append(r.watchers, w)
	}
	// Each handler added to a started informer is first replayed the whole cache; wait for that
	// to end, then forget what it delivered.
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	for _, w := range r.watchers {
		select {
		case <-w.Updates():
		default:
		}
	}
	return r, nil
}

func (r *naiveReceiver) await(ctx context.Context, _, svc, want int) (time.Time, error) {
	updates := r.watchers[svc].Updates()
	for {
		select {
		case instances := <-updates:
			if len(instances) == want {
				return time.Now(), nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("naive watcher of %s: %w", workload.Service(svc), context.Cause(ctx))
		}
	}
}

func (r *naiveReceiver) close() {
	for _, w := range r.watchers {
		w.Stop()
	}
	r.reg.Close()
}

// delivery is a set size, or a pod name, received at some time.
type delivery struct {
	size int
	name string
	at   time.Time
}

// oursReceiver is a kuberegistry Registry with one watcher per watched service, each consumed by
// a goroutine blocked in Next, as a client-side load balancer would.
type oursReceiver struct {
	reg        *kuberegistry.Registry
	deliveries []chan delivery // by service index; the latest set size Next returned
	wg         sync.WaitGroup
}

func openOurs(ctx context.Context, c *cluster, namespace string, watched []string) (*oursReceiver, error) {
	reg, err := kuberegistry.NewForConfig(c.config, kuberegistry.WithNamespace(namespace))
	if err != nil {
		return nil, err
	}
	if err := reg.Start(ctx); err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("starting kuberegistry: %w", err)
	}
	r := &oursReceiver{reg: reg}
	for _, name := range watched {
		w, err := reg.Watch(context.Background(), name) // ends at Close
		if err != nil {
			r.close()
			return nil, fmt.Errorf("watching %s with kuberegistry: %w", name, err)
		}
		if _, err := w.Next(); err != nil { // the current set
			r.close()
			return nil, err
		}
		deliveries := make(chan delivery, 1)
		r.deliveries = append(r.deliveries, deliveries)
		r.wg.Go(func() {
			for {
				instances, err := w.Next()
				if err != nil {
					return
				}
				d := delivery{size: len(instances), at: time.Now()}
				select { // keep only the latest; this goroutine is the only sender
				case <-deliveries:
				default:
				}
				deliveries <- d
			}
		})
	}
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *oursReceiver) await(ctx context.Context, _, svc, want int) (time.Time, error) {
	for {
		select {
		case d := <-r.deliveries[svc]:
			if d.size == want {
				return d.at, nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("kuberegistry watcher of %s: %w", workload.Service(svc), context.Cause(ctx))
		}
	}
}

func (r *oursReceiver) close() {
	_ = r.reg.Close() // ends every watcher's Next
	r.wg.Wait()
}

// bareReceiver is the limit: a bare informer over the registered pods (same label selector,
// protobuf), without transform or index, with one handler that only notes which pod changed.
type bareReceiver struct {
	names  []string // the pod names of the scenario, made once so that await only compares
	stop   context.CancelFunc
	done   chan struct{}
	events chan delivery // names of updated pods

	pending map[string]time.Time // received, not yet awaited; owned by await's caller
}

func openBare(ctx context.Context, c *cluster, namespace string, pods int) (*bareReceiver, error) {
	client, err := c.protobufClient()
	if err != nil {
		return nil, err
	}
	api := client.CoreV1().Pods(namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = kuberegistry.LabelsKeyServiceName
			return api.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = kuberegistry.LabelsKeyServiceName
			return api.Watch(ctx, o)
		},
	}
	informer := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client),
		&corev1.Pod{}, cache.SharedIndexInformerOptions{ObjectDescription: "bare pods"})
	r := &bareReceiver{
		done: make(chan struct{}), events: make(chan delivery, 4096),
		names: make([]string, pods), pending: make(map[string]time.Time),
	}
	for i := range r.names {
		r.names[i] = workload.PodName(i)
	}
	handle, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			at := time.Now()
			if pod, ok := obj.(*corev1.Pod); ok {
				select {
				case r.events <- delivery{name: pod.Name, at: at}:
				default: // never block the informer; await would time out
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() {
		defer close(r.done)
		informer.RunWithContext(runCtx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), handle.HasSynced) {
		r.close()
		return nil, fmt.Errorf("starting the bare informer: %w", context.Cause(ctx))
	}
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *bareReceiver) await(ctx context.Context, i, _, _ int) (time.Time, error) {
	name := r.names[i]
	if at, ok := r.pending[name]; ok {
		delete(r.pending, name)
		return at, nil
	}
	for {
		select {
		case d := <-r.events:
			if d.name == name {
				return d.at, nil
			}
			r.pending[d.name] = d.at // another pod of the same burst
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("bare informer, pod %s: %w", name, context.Cause(ctx))
		}
	}
}

func (r *bareReceiver) close() {
	r.stop()
	<-r.done
}
