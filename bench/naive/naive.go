// Package naive is the straightforward registry the benchmarks compare kuberegistry with: an
// informer over all pods of the scope (no label selector, no transform, resync every 10 minutes),
// GetService as a lister List with a label selector that decodes the annotations of every match
// on every call, and Watch as one more informer event handler per watcher, each filtering every
// pod event by name and re-listing the service on every match. It exists only to be measured.
package naive

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Registry is the naive registry.
type Registry struct {
	informer cache.SharedIndexInformer
	lister   listersv1.PodLister
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New builds it over namespace ("" for all).
func New(client kubernetes.Interface, namespace string) *Registry {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithNamespace(namespace))
	pods := factory.Core().V1().Pods()
	return &Registry{informer: pods.Informer(), lister: pods.Lister()}
}

// Start runs the informer and waits for its cache.
func (r *Registry) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.informer.RunWithContext(runCtx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// Close stops the informer.
func (r *Registry) Close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

// Informer exposes the informer, for memory measurements.
func (r *Registry) Informer() cache.SharedIndexInformer { return r.informer }

// GetService lists the pods of the service and decodes each one.
func (r *Registry) GetService(name string) ([]*kuberegistry.ServiceInstance, error) {
	pods, err := r.lister.List(labels.SelectorFromSet(labels.Set{kuberegistry.LabelsKeyServiceName: name}))
	if err != nil {
		return nil, err
	}
	var out []*kuberegistry.ServiceInstance
	for _, pod := range pods {
		if in, ok := decode(pod); ok {
			out = append(out, in)
		}
	}
	return out, nil
}

// decode reads a pod's registration as go-kratos's own Kubernetes registry does.
func decode(pod *corev1.Pod) (*kuberegistry.ServiceInstance, bool) {
	if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil || pod.Status.PodIP == "" {
		return nil, false
	}
	ready := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return nil, false
	}
	in := &kuberegistry.ServiceInstance{
		ID:      pod.Labels[kuberegistry.LabelsKeyServiceID],
		Name:    pod.Labels[kuberegistry.LabelsKeyServiceName],
		Version: pod.Labels[kuberegistry.LabelsKeyServiceVersion],
	}
	if err := json.Unmarshal([]byte(pod.Annotations[kuberegistry.AnnotationsKeyMetadata]), &in.Metadata); err != nil {
		return nil, false
	}
	var protocols map[string]string
	if err := json.Unmarshal([]byte(pod.Annotations[kuberegistry.AnnotationsKeyProtocolMap]), &protocols); err != nil {
		return nil, false
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			port := strconv.Itoa(int(p.ContainerPort))
			if scheme, ok := protocols[port]; ok {
				in.Endpoints = append(in.Endpoints, fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(pod.Status.PodIP, port)))
			}
		}
	}
	return in, true
}

// Watcher is one informer handler per watcher.
type Watcher struct {
	r       *Registry
	name    string
	handle  cache.ResourceEventHandlerRegistration
	updates chan []*kuberegistry.ServiceInstance
}

// Watch adds an informer handler that re-lists the service on every event for it.
func (r *Registry) Watch(name string) (*Watcher, error) {
	w := &Watcher{r: r, name: name, updates: make(chan []*kuberegistry.ServiceInstance, 1)}
	on := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Labels[kuberegistry.LabelsKeyServiceName] != name {
			return
		}
		instances, _ := r.GetService(name)
		select { // keep the latest set only
		case <-w.updates:
		default:
		}
		w.updates <- instances
	}
	handle, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    on,
		UpdateFunc: func(_, obj any) { on(obj) },
		DeleteFunc: on,
	})
	if err != nil {
		return nil, err
	}
	w.handle = handle
	return w, nil
}

// Updates delivers the latest set after each event for the service.
func (w *Watcher) Updates() <-chan []*kuberegistry.ServiceInstance { return w.updates }

// Stop removes the handler.
func (w *Watcher) Stop() { _ = w.r.informer.RemoveEventHandler(w.handle) }
