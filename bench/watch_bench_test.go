package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkWatchUpdate: a registered pod flips readiness and the API server sends the event over
// a protobuf watch (a stub that writes prebuilt frames, so that its own cost is a write), with one
// watcher on every service. It is BenchmarkPodUpdate with what the fake clientset leaves out: the
// HTTP stream, the framing and the decoding, which are most of a client's CPU per update.
// "ours" is a Registry built by NewForConfig; "limit" a bare protobuf informer over the same
// selector whose handler only signals the changed service's watcher. "cpu-ns/op" is the CPU the
// process spent per update, the stub's writes included (the same for both).
func BenchmarkWatchUpdate(b *testing.B) {
	s := workload.Default
	const ring = 1000
	config, events := protobufPodsWatched(b, s)
	frames := make([][2][]byte, ring) // pod i not ready, ready
	for i := range ring {
		for state := range 2 {
			pod := s.Pod(namespace, i)
			pod.UID = stubUID(i)
			pod.ResourceVersion = strconv.Itoa(100000 + 2*i + state)
			workload.SetStatus(pod, i, state == 1)
			frames[i][state] = watchFrame(b, pod)
		}
	}
	run := func(b *testing.B, wait func(svc int) bool) {
		i := 0
		start := cpuTime()
		for b.Loop() {
			p := i % ring
			events <- frames[p][(i/ring)%2]
			if !wait(s.ServiceOf(p)) {
				b.Fatal("the update was not delivered within a minute")
			}
			i++
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		for j := i; (j/ring)%2 == 1 || j%ring != 0; j++ { // leave every pod ready for the next variant
			p := j % ring
			events <- frames[p][(j/ring)%2]
			wait(s.ServiceOf(p))
		}
	}
	b.Run("ours", func(b *testing.B) {
		reg, err := kuberegistry.NewForConfig(config, kuberegistry.WithNamespace(namespace))
		if err != nil {
			b.Fatal(err)
		}
		if err := reg.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		signals, closeAll := watchOurs(b, reg, serviceNames[:s.Services], 1)
		defer closeAll()
		run(b, func(svc int) bool { return receive(signals[svc][0]) })
	})
	b.Run("limit", func(b *testing.B) {
		client, err := kubernetes.NewForConfig(protobufStubConfig(config))
		if err != nil {
			b.Fatal(err)
		}
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = kuberegistry.LabelsKeyServiceName }))
		signals := make(map[string]chan struct{}, s.Services)
		for i := range s.Services {
			signals[workload.Service(i)] = make(chan struct{}, 1)
		}
		_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) {
				if signal := signals[obj.(*corev1.Pod).Labels[kuberegistry.LabelsKeyServiceName]]; signal != nil {
					select {
					case signal <- struct{}{}:
					default:
					}
				}
			},
		})
		defer startFactory(factory)()
		run(b, func(svc int) bool { return receive(signals[workload.Service(svc)]) })
	})
}

// protobufStubConfig makes a client of config speak protobuf, as NewForConfig's does.
func protobufStubConfig(config *rest.Config) *rest.Config {
	config = rest.CopyConfig(config)
	config.ContentType = runtime.ContentTypeProtobuf
	config.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return config
}
