package bench

// The service-size series in process: how Start and a pod update cost with the number of
// instances in one service, ours against the limit, on the fake clientset. The main scenarios
// (services of 10) cannot show it.
//
//	go test -run '^$' -bench 'Start|PodUpdate/instances' -benchmem ./

import (
	"context"
	"fmt"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Sizes of the one service, in BenchmarkStart and in BenchmarkPodUpdate's instances=… variants.
var (
	startSizes  = []int{1000, 10000}
	updateSizes = []int{10, 1000, 10000}
)

// serviceWatchers watch the one service, as many as kuberegistry-bench's series opens.
const serviceWatchers = 10

// oneService is a fleet of one service of n registered pods, all ready.
func oneService(n int) workload.Scenario {
	return workload.Scenario{Pods: n, Registered: n, Services: 1}
}

func instancesName(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("instances=%dk", n/1000)
	}
	return fmt.Sprintf("instances=%d", n)
}

// bareInformer is the limit's informer: every registered pod of the namespace, decoded by the
// fake clientset already, with no transform.
func bareInformer(client kubernetes.Interface) (informers.SharedInformerFactory, cache.SharedIndexInformer) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = kuberegistry.LabelsKeyServiceName }))
	return factory, factory.Core().V1().Pods().Informer()
}

// BenchmarkStart: Start of a registry over one service of n instances, until it returns synced.
// The limit is the bare informer, from its start until a handler of it has synced (the same
// condition Start waits for).
func BenchmarkStart(b *testing.B) {
	for _, n := range startSizes {
		b.Run(instancesName(n), func(b *testing.B) {
			client := fleet(b, oneService(n))
			b.Run("ours", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					reg := startOurs(b, client)
					b.StopTimer()
					_ = reg.Close()
					b.StartTimer()
				}
			})
			b.Run("limit", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					factory, informer := bareInformer(client)
					handle, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{})
					if err != nil {
						b.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					factory.Start(ctx.Done())
					<-handle.HasSyncedChecker().Done()
					b.StopTimer()
					cancel()
					factory.Shutdown()
					b.StartTimer()
				}
			})
		})
	}
}

// podUpdateInOneService is BenchmarkPodUpdate in a fleet of one service of n instances with
// serviceWatchers watchers: one pod flips readiness back and forth, so that the service keeps n
// or n-1 instances. A change is delivered once every watcher has it. The limit's handler only
// signals the service's watchers, each a goroutine, as Next would wake them.
func podUpdateInOneService(b *testing.B, n int) {
	flips := newPodFlips(b, oneService(n), 1)
	b.Run("ours", func(b *testing.B) {
		signals, closeAll := watchOurs(b, startOurs(b, flips.client), serviceNames[:1], serviceWatchers)
		defer closeAll()
		flips.run(b, func(svc int) bool { return receiveAll(signals[svc]) })
	})
	b.Run("limit", func(b *testing.B) {
		factory, informer := bareInformer(flips.client)
		wakes := make([]chan struct{}, serviceWatchers)    // from the handler to each watcher
		received := make([]chan struct{}, serviceWatchers) // from each watcher to the benchmark
		watchersOf := map[string][]chan struct{}{serviceNames[0]: wakes}
		done := make(chan struct{})
		for k := range wakes {
			wakes[k], received[k] = make(chan struct{}, 1), make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-wakes[k]:
						select {
						case received[k] <- struct{}{}:
						case <-done:
							return
						}
					case <-done:
						return
					}
				}
			}()
		}
		_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) {
				pod, _ := obj.(*corev1.Pod)
				if pod == nil {
					return
				}
				for _, wake := range watchersOf[pod.Labels[kuberegistry.LabelsKeyServiceName]] {
					select {
					case wake <- struct{}{}:
					default: // already woken
					}
				}
			},
		})
		stop := startFactory(factory)
		defer func() {
			stop()
			close(done)
		}()
		flips.run(b, func(int) bool { return receiveAll(received) })
	})
}
