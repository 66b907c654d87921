// Benchmarks of in-process costs on the client-go fake clientset, each run three ways in the same
// run: "naive" (package naive), "ours" (kuberegistry) and "limit" (the physical limit: a map access
// returning a prebuilt slice, a bare informer handler, the bytes of the fields kept).
//
//	go test -run '^$' -bench . -benchmem ./bench
package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/naive"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

const namespace = "shop"

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// fleet returns a fake clientset holding the scenario's pods.
func fleet(tb testing.TB, s workload.Scenario) *fake.Clientset {
	tb.Helper()
	client := fake.NewClientset()
	for i := range s.Pods {
		if err := client.Tracker().Create(podsResource, s.Pod(namespace, i), namespace); err != nil {
			tb.Fatal(err)
		}
	}
	return client
}

func startOurs(tb testing.TB, client *fake.Clientset) *kuberegistry.Registry {
	tb.Helper()
	reg, err := kuberegistry.New(client, kuberegistry.WithNamespace(namespace))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return reg
}

func startNaive(tb testing.TB, client *fake.Clientset) *naive.Registry {
	tb.Helper()
	reg := naive.New(client, namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := reg.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return reg
}

// serviceNames are the scenario's service names, made once so that lookups measure only lookups.
var serviceNames = func() []string {
	names := make([]string, 500)
	for i := range names {
		names[i] = workload.Service(i)
	}
	return names
}()

var scenarios = []workload.Scenario{
	{Pods: 1000, Registered: 500, Services: 50},
	{Pods: 10000, Registered: 5000, Services: 500},
}

func scenarioName(s workload.Scenario) string {
	return fmt.Sprintf("pods=%dk/services=%d", s.Pods/1000, s.Services)
}

// BenchmarkGetService: one lookup of a service of 10 instances.
func BenchmarkGetService(b *testing.B) {
	for _, s := range scenarios {
		client := fleet(b, s)
		b.Run(scenarioName(s)+"/naive", func(b *testing.B) {
			reg := startNaive(b, client)
			defer reg.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if in, _ := reg.GetService(serviceNames[i%s.Services]); len(in) == 0 {
					b.Fatal("no instances")
				}
				i++
			}
		})
		b.Run(scenarioName(s)+"/ours", func(b *testing.B) {
			reg := startOurs(b, client)
			defer reg.Close()
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if in, _ := reg.GetService(ctx, serviceNames[i%s.Services]); len(in) == 0 {
					b.Fatal("no instances")
				}
				i++
			}
		})
		b.Run(scenarioName(s)+"/limit", func(b *testing.B) {
			reg := startOurs(b, client)
			prebuilt := map[string][]*kuberegistry.ServiceInstance{}
			for i := range s.Services {
				prebuilt[workload.Service(i)], _ = reg.GetService(context.Background(), workload.Service(i))
			}
			reg.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if len(prebuilt[serviceNames[i%s.Services]]) == 0 {
					b.Fatal("no instances")
				}
				i++
			}
		})
	}
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCacheMemory: the heap a started registry holds, per pod of the fleet and in all
// ("MiB"). The limit is the bytes of the strings discovery returns (IDs, names, versions,
// metadata, endpoints) with no structure around them.
func BenchmarkCacheMemory(b *testing.B) {
	for _, s := range scenarios {
		client := fleet(b, s)
		report := func(b *testing.B, bytes uint64) {
			b.ReportMetric(float64(bytes)/float64(s.Pods), "B/pod")
			b.ReportMetric(float64(bytes)/(1<<20), "MiB")
		}
		b.Run(scenarioName(s)+"/naive", func(b *testing.B) {
			var held uint64
			for b.Loop() {
				before := heapAfterGC()
				reg := startNaive(b, client)
				held = heapAfterGC() - before
				reg.Close()
			}
			report(b, held)
		})
		b.Run(scenarioName(s)+"/ours", func(b *testing.B) {
			var held uint64
			for b.Loop() {
				before := heapAfterGC()
				reg := startOurs(b, client)
				held = heapAfterGC() - before
				_ = reg.Close()
			}
			report(b, held)
		})
		b.Run(scenarioName(s)+"/limit", func(b *testing.B) {
			reg := startOurs(b, client)
			defer reg.Close()
			var held uint64
			for b.Loop() {
				held = 0
				for i := range s.Services {
					instances, _ := reg.GetService(context.Background(), workload.Service(i))
					for _, in := range instances {
						held += uint64(len(in.ID) + len(in.Name) + len(in.Version))
						for k, v := range in.Metadata {
							held += uint64(len(k) + len(v))
						}
						for _, e := range in.Endpoints {
							held += uint64(len(e))
						}
					}
				}
			}
			report(b, held)
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// injector stands in for the API server's watch: every informer that watches pods through the
// fake clientset gets the events pushed here, decoded already, so that an update costs only what
// the informer and its handlers do with it.
type injector struct {
	mu       sync.Mutex // guards watchers
	watchers []*watch.FakeWatcher
}

func inject(client *fake.Clientset) *injector {
	in := &injector{}
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewFakeWithChanSize(1<<14, false) // room for any backlog: a full channel would block the benchmark
		in.mu.Lock()
		defer in.mu.Unlock()
		in.watchers = append(in.watchers, w)
		return true, w, nil
	})
	return in
}

// modify delivers an update to every open watch.
func (in *injector) modify(pod *corev1.Pod) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, w := range in.watchers {
		if !w.IsStopped() {
			w.Modify(pod)
		}
	}
}

// BenchmarkPodUpdate: a registered pod flips readiness and the change is delivered, with one watcher
// open on every service. ns/op is the time from the watch event to its delivery (to the watcher
// of the pod's service, or to the bare handler for the limit); "cpu-ns/op" is the CPU the process
// spent per update.
func BenchmarkPodUpdate(b *testing.B) {
	for _, s := range scenarios {
		client := fleet(b, s)
		events := inject(client)
		// Updated pods, prebuilt: a ring of pods, each in both states.
		ring := min(s.Registered, 1000)
		flipped := make([][2]*corev1.Pod, ring)
		for i := range ring {
			for state := range 2 {
				flipped[i][state] = s.Pod(namespace, i)
				workload.SetStatus(flipped[i][state], i, state == 1)
				flipped[i][state].ResourceVersion = "1"
			}
		}
		// run flips pods one by one; wait blocks until the change to a service has been delivered.
		run := func(b *testing.B, wait func(svc int) bool) {
			i := 0
			start := cpuTime()
			for b.Loop() {
				p := i % ring
				ready := (i/ring)%2 == 1 // the first pass takes every pod of the ring down
				events.modify(flipped[p][btoi(ready)])
				if !wait(s.ServiceOf(p)) {
					b.Fatal("the update was not delivered within a minute")
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			// Leave every pod as it was, so that the next variant starts from the listed state.
			for j := i; (j/ring)%2 == 1 || j%ring != 0; j++ {
				p := j % ring
				events.modify(flipped[p][btoi((j/ring)%2 == 1)])
				wait(s.ServiceOf(p))
			}
		}
		b.Run(scenarioName(s)+"/naive", func(b *testing.B) {
			reg := startNaive(b, client)
			defer reg.Close()
			watchers := make([]*naive.Watcher, s.Services)
			for i := range s.Services {
				w, err := reg.Watch(serviceNames[i])
				if err != nil {
					b.Fatal(err)
				}
				watchers[i] = w
				defer w.Stop()
			}
			run(b, func(svc int) bool { return receive(watchers[svc].Updates()) })
		})
		b.Run(scenarioName(s)+"/ours", func(b *testing.B) {
			reg := startOurs(b, client)
			signals := make([]chan struct{}, s.Services)
			var wg sync.WaitGroup
			for i := range s.Services {
				signals[i] = make(chan struct{}, 1)
				w, err := reg.Watch(context.Background(), serviceNames[i])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Next(); err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if _, err := w.Next(); err != nil {
							return
						}
						signals[i] <- struct{}{}
					}
				}()
			}
			defer func() {
				_ = reg.Close()
				wg.Wait()
			}()
			run(b, func(svc int) bool { return receive(signals[svc]) })
		})
		b.Run(scenarioName(s)+"/limit", func(b *testing.B) {
			factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
			informer := factory.Core().V1().Pods().Informer()
			received := make(chan struct{}, 1)
			_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
				UpdateFunc: func(_, _ any) { received <- struct{}{} },
			})
			ctx, cancel := context.WithCancel(context.Background())
			factory.Start(ctx.Done())
			factory.WaitForCacheSync(ctx.Done())
			defer func() {
				cancel()
				factory.Shutdown()
			}()
			run(b, func(int) bool { return receive(received) })
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// receive waits for one value on ch, for a minute at most.
func receive[T any](ch <-chan T) bool {
	select {
	case <-ch:
		return true
	case <-time.After(time.Minute):
		return false
	}
}
