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
	"slices"
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
		// Ours as a program runs it: NewForConfig, protobuf, every string decoded into its own
		// memory; the client is included, as in cmd/kuberegistry-bench.
		config := protobufPods(b, s)
		b.Run(scenarioName(s)+"/ours", func(b *testing.B) {
			var held uint64
			for b.Loop() {
				before := heapAfterGC()
				reg, err := kuberegistry.NewForConfig(config, kuberegistry.WithNamespace(namespace))
				if err != nil {
					b.Fatal(err)
				}
				if err := reg.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
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

// awaitWatch waits until a watch is open: an informer reports synced once it has listed, and
// only then watches, so an update injected before would be lost.
func (in *injector) awaitWatch(tb testing.TB) {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		in.mu.Lock()
		open := slices.ContainsFunc(in.watchers, func(w *watch.FakeWatcher) bool { return !w.IsStopped() })
		in.mu.Unlock()
		if open {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("no informer watched within a minute")
		}
	}
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

// podFlips flips the readiness of the first registered pods of a fleet on the fake clientset, one
// at a time, through the watch of every informer.
type podFlips struct {
	s       workload.Scenario
	client  *fake.Clientset
	events  *injector
	flipped [][2]*corev1.Pod // the ring of flipped pods, prebuilt, each in both states
}

// newPodFlips fills a fake clientset with the fleet of s, whose pods 0..ring-1 will flip.
func newPodFlips(b *testing.B, s workload.Scenario, ring int) *podFlips {
	f := &podFlips{s: s, client: fleet(b, s), flipped: make([][2]*corev1.Pod, ring)}
	f.events = inject(f.client)
	for i := range ring {
		for state := range 2 {
			f.flipped[i][state] = s.Pod(namespace, i)
			workload.SetStatus(f.flipped[i][state], i, state == 1)
			f.flipped[i][state].ResourceVersion = "1"
		}
	}
	return f
}

// run flips pods one by one; wait blocks until the change to a service has been delivered. It
// reports the CPU the process spent per update as "cpu-ns/op".
func (f *podFlips) run(b *testing.B, wait func(svc int) bool) {
	ring := len(f.flipped)
	f.events.awaitWatch(b) // the previous variants' watches are stopped: this one is the variant's
	i := 0
	start := cpuTime()
	for b.Loop() {
		p := i % ring
		ready := (i/ring)%2 == 1 // the first pass takes every pod of the ring down
		f.events.modify(f.flipped[p][btoi(ready)])
		if !wait(f.s.ServiceOf(p)) {
			b.Fatal("the update was not delivered within a minute")
		}
		i++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	// Leave every pod as it was, so that the next variant starts from the listed state.
	for j := i; (j/ring)%2 == 1 || j%ring != 0; j++ {
		p := j % ring
		f.events.modify(f.flipped[p][btoi((j/ring)%2 == 1)])
		wait(f.s.ServiceOf(p))
	}
}

// watchOurs opens perService watchers on each named service, each consumed by a goroutine blocked
// in Next, and returns the signals they send after each Next (by service index, then watcher),
// and a func that closes the registry and waits for them.
func watchOurs(b *testing.B, reg *kuberegistry.Registry, names []string, perService int) (signals [][]chan struct{}, closeAll func()) {
	var wg sync.WaitGroup
	signals = make([][]chan struct{}, len(names))
	for i, name := range names {
		for range perService {
			signal := make(chan struct{}, 1)
			signals[i] = append(signals[i], signal)
			w, err := reg.Watch(context.Background(), name)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Next(); err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for {
					if _, err := w.Next(); err != nil {
						return
					}
					signal <- struct{}{}
				}
			})
		}
	}
	return signals, func() {
		_ = reg.Close()
		wg.Wait()
	}
}

// receiveAll receives once from each signal, for a minute at most each.
func receiveAll(signals []chan struct{}) bool {
	for _, signal := range signals {
		if !receive(signal) {
			return false
		}
	}
	return true
}

// BenchmarkPodUpdate: a registered pod flips readiness and the change is delivered, with one watcher
// open on every service. ns/op is the time from the watch event to its delivery (to the watcher
// of the pod's service, or to the bare handler for the limit); "cpu-ns/op" is the CPU the process
// spent per update. The instances=… variants (service_size_bench_test.go) do the same in a fleet
// of one service of that size.
func BenchmarkPodUpdate(b *testing.B) {
	for _, s := range scenarios {
		b.Run(scenarioName(s), func(b *testing.B) {
			flips := newPodFlips(b, s, min(s.Registered, 1000))
			b.Run("naive", func(b *testing.B) {
				reg := startNaive(b, flips.client)
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
				flips.run(b, func(svc int) bool { return receive(watchers[svc].Updates()) })
			})
			b.Run("ours", func(b *testing.B) {
				signals, closeAll := watchOurs(b, startOurs(b, flips.client), serviceNames[:s.Services], 1)
				defer closeAll()
				flips.run(b, func(svc int) bool { return receive(signals[svc][0]) })
			})
			b.Run("limit", func(b *testing.B) {
				factory := informers.NewSharedInformerFactoryWithOptions(flips.client, 0, informers.WithNamespace(namespace))
				informer := factory.Core().V1().Pods().Informer()
				received := make(chan struct{}, 1)
				_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
					UpdateFunc: func(_, _ any) { received <- struct{}{} },
				})
				defer startFactory(factory)()
				flips.run(b, func(int) bool { return receive(received) })
			})
		})
	}
	for _, n := range updateSizes {
		b.Run(instancesName(n), func(b *testing.B) { podUpdateInOneService(b, n) })
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

// startFactory starts a factory's informers and waits for their caches; the function it returns
// stops them and waits for them to end.
func startFactory(factory informers.SharedInformerFactory) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return func() {
		cancel()
		factory.Shutdown()
	}
}
