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
	// instances, has reached every consumer of svc, and returns when the last one got it.
	await(ctx context.Context, i, svc, want int) (time.Time, error)
	// syncTime is how long the design took from its start to a synced cache.
	syncTime() time.Duration
	close()
}

// naiveReceiver is the naive registry with perService watchers on each watched service: each
// watcher is one more informer handler.
type naiveReceiver struct {
	reg      *naive.Registry
	watchers [][]*naive.Watcher // by service index
	took     time.Duration
}

// openNaive starts the naive registry and opens max(perService, 1) watchers on each watched
// service.
func openNaive(ctx context.Context, c *cluster, namespace string, watched []string, perService int) (*naiveReceiver, error) {
	client, err := c.jsonClient()
	if err != nil {
		return nil, err
	}
	r := &naiveReceiver{reg: naive.New(client, namespace)}
	synced, stopPoll := pollSynced(r.reg.Informer().HasSynced)
	defer stopPoll()
	start := time.Now()
	if err := r.reg.Start(ctx); err != nil {
		r.reg.Close()
		return nil, fmt.Errorf("starting the naive registry: %w", err)
	}
	r.took = (<-synced).Sub(start)
	for _, name := range watched {
		var ws []*naive.Watcher
		for range max(perService, 1) {
			w, err := r.reg.Watch(name)
			if err != nil {
				r.close()
				return nil, fmt.Errorf("watching %s with the naive registry: %w", name, err)
			}
			ws = append(ws, w)
		}
		r.watchers = append(r.watchers, ws)
	}
	// Each handler added to a started informer is first replayed the whole cache; wait for that
	// to end, then forget what it delivered.
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	for _, ws := range r.watchers {
		for _, w := range ws {
			select {
			case <-w.Updates():
			default:
			}
		}
	}
	return r, nil
}

func (r *naiveReceiver) await(ctx context.Context, _, svc, want int) (time.Time, error) {
	var last time.Time
	for _, w := range r.watchers[svc] {
	receive:
		for {
			select {
			case instances := <-w.Updates():
				if len(instances) == want {
					last = time.Now()
					break receive
				}
			case <-ctx.Done():
				return time.Time{}, fmt.Errorf("naive watcher of %s: %w", workload.Service(svc), context.Cause(ctx))
			}
		}
	}
	return last, nil
}

func (r *naiveReceiver) syncTime() time.Duration { return r.took }

func (r *naiveReceiver) close() {
	for _, ws := range r.watchers {
		for _, w := range ws {
			w.Stop()
		}
	}
	r.reg.Close()
}

// delivery is a set size, or a pod name, received at some time.
type delivery struct {
	size int
	name string
	at   time.Time
}

// deliverLatest replaces what deliveries holds with d; its caller must be its only sender.
func deliverLatest(deliveries chan delivery, d delivery) {
	select {
	case <-deliveries:
	default:
	}
	deliveries <- d
}

// awaitEach receives from each of the watchers' deliveries until one matches, and returns the
// latest time of the matches: when the last watcher had the change.
func awaitEach(ctx context.Context, watchers []chan delivery, match func(delivery) bool) (time.Time, error) {
	var last time.Time
	for _, deliveries := range watchers {
	receive:
		for {
			select {
			case d := <-deliveries:
				if match(d) {
					if d.at.After(last) {
						last = d.at
					}
					break receive
				}
			case <-ctx.Done():
				return time.Time{}, context.Cause(ctx)
			}
		}
	}
	return last, nil
}

// oursReceiver is a kuberegistry Registry with perService watchers on each watched service, each
// consumed by a goroutine blocked in Next, as a client-side load balancer would.
type oursReceiver struct {
	reg        *kuberegistry.Registry
	took       time.Duration     // of Start
	deliveries [][]chan delivery // by service index, then watcher; the latest set size Next returned
	wg         sync.WaitGroup
}

// openOurs starts a kuberegistry Registry and opens max(perService, 1) watchers on each watched
// service.
func openOurs(ctx context.Context, c *cluster, namespace string, watched []string, perService int) (*oursReceiver, error) {
	reg, err := kuberegistry.NewForConfig(c.config, kuberegistry.WithNamespace(namespace))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := reg.Start(ctx); err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("starting kuberegistry: %w", err)
	}
	r := &oursReceiver{reg: reg, took: time.Since(start)}
	for _, name := range watched {
		var watchers []chan delivery
		for range max(perService, 1) {
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
			watchers = append(watchers, deliveries)
			r.wg.Go(func() {
				for {
					instances, err := w.Next()
					if err != nil {
						return
					}
					deliverLatest(deliveries, delivery{size: len(instances), at: time.Now()})
				}
			})
		}
		r.deliveries = append(r.deliveries, watchers)
	}
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *oursReceiver) await(ctx context.Context, _, svc, want int) (time.Time, error) {
	at, err := awaitEach(ctx, r.deliveries[svc], func(d delivery) bool { return d.size == want })
	if err != nil {
		return at, fmt.Errorf("kuberegistry watcher of %s: %w", workload.Service(svc), err)
	}
	return at, nil
}

func (r *oursReceiver) syncTime() time.Duration { return r.took }

func (r *oursReceiver) close() {
	_ = r.reg.Close() // ends every watcher's Next
	r.wg.Wait()
}

// bareReceiver is the limit: a bare informer over the registered pods (same label selector,
// protobuf), without transform or index, with one handler. Without watchers, the handler only
// notes which pod changed; with watchers, it signals the watchers of the pod's service — each a
// goroutine, as one blocked in Next would be — and does nothing else.
type bareReceiver struct {
	names  []string // the pod names of the scenario, made once so that await only compares
	took   time.Duration
	stop   context.CancelFunc
	done   chan struct{}
	events chan delivery // names of updated pods, without watchers

	pending map[string]time.Time // received, not yet awaited; owned by await's caller

	services   map[string]int    // watched service name to index
	signals    [][]chan string   // by service index, then watcher: names of the pods the handler signals
	deliveries [][]chan delivery // by service index, then watcher: the latest pod the watcher woke for
	wg         sync.WaitGroup    // the watchers
}

// openBare starts the bare informer over the registered pods of a scenario of pods pods and, if
// perService > 0, that many watchers on each watched service.
func openBare(ctx context.Context, c *cluster, namespace string, pods int, watched []string, perService int) (*bareReceiver, error) {
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
	if perService > 0 {
		r.openWatchers(watched, perService)
	}
	handle, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			at := time.Now()
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if r.signals == nil {
				select {
				case r.events <- delivery{name: pod.Name, at: at}:
				default: // never block the informer; await would time out
				}
				return
			}
			svc, ok := r.services[pod.Labels[kuberegistry.LabelsKeyServiceName]]
			if !ok {
				return
			}
			for _, signal := range r.signals[svc] {
				select {
				case signal <- pod.Name:
				default: // as above
				}
			}
		},
	})
	if err != nil {
		r.closeWatchers()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	synced, stopPoll := pollSynced(handle.HasSynced)
	defer stopPoll()
	start := time.Now()
	go func() {
		defer close(r.done)
		informer.RunWithContext(runCtx)
	}()
	select {
	case at := <-synced:
		r.took = at.Sub(start)
	case <-ctx.Done():
		r.close()
		return nil, fmt.Errorf("starting the bare informer: %w", context.Cause(ctx))
	}
	if err := settle(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// openWatchers starts perService watchers on each watched service: a goroutine that, woken by
// the handler, notes the time and the pod.
func (r *bareReceiver) openWatchers(watched []string, perService int) {
	r.services = make(map[string]int, len(watched))
	for svc, name := range watched {
		r.services[name] = svc
		var signals []chan string
		var deliveries []chan delivery
		for range perService {
			signal, latest := make(chan string, 1024), make(chan delivery, 1)
			signals, deliveries = append(signals, signal), append(deliveries, latest)
			r.wg.Go(func() {
				for name := range signal {
					deliverLatest(latest, delivery{name: name, at: time.Now()})
				}
			})
		}
		r.signals, r.deliveries = append(r.signals, signals), append(r.deliveries, deliveries)
	}
}

func (r *bareReceiver) await(ctx context.Context, i, svc, _ int) (time.Time, error) {
	name := r.names[i]
	if r.deliveries != nil {
		at, err := awaitEach(ctx, r.deliveries[svc], func(d delivery) bool { return d.name == name })
		if err != nil {
			return at, fmt.Errorf("bare informer's watcher of %s, pod %s: %w", workload.Service(svc), name, err)
		}
		return at, nil
	}
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

func (r *bareReceiver) syncTime() time.Duration { return r.took }

func (r *bareReceiver) close() {
	r.stop()
	<-r.done
	r.closeWatchers()
}

// closeWatchers ends the watchers once the handler can no longer signal them.
func (r *bareReceiver) closeWatchers() {
	for _, signals := range r.signals {
		for _, signal := range signals {
			close(signal)
		}
	}
	r.wg.Wait()
}
