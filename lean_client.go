package kuberegistry

import (
	"context"
	"net/http"
	"time"

	"github.com/kuberegistry/kuberegistry/internal/leanpod"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// podsAPI lists and watches the pods of a namespace ("" for all) for the informers. The default
// is the registry's typed client; NewForConfig gives a leanPods client.
type podsAPI interface {
	List(ctx context.Context, namespace string, opts metav1.ListOptions) (runtime.Object, error)
	Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	// object is an empty object of the type the informer receives.
	object() runtime.Object
}

// typedPods is the registry's client's pod API: full *corev1.Pods.
type typedPods struct{ r *Registry }

func (t typedPods) List(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
	return t.r.client.CoreV1().Pods(ns).List(ctx, o)
}

func (t typedPods) Watch(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
	return t.r.client.CoreV1().Pods(ns).Watch(ctx, o)
}

func (typedPods) object() runtime.Object { return &corev1.Pod{} }

// leanPods lists and watches pods as leanPods, over protobuf.
type leanPods struct{ client rest.Interface }

// newLeanPods builds the lean pod client on the same HTTP client, hence connection, as the
// registry's typed client.
func newLeanPods(cfg *rest.Config, httpClient *http.Client) (leanPods, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.APIPath = "/api"
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(leanpod.Scheme).WithoutConversion()
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := rest.RESTClientForConfigAndClient(cfg, httpClient)
	return leanPods{client: client}, err
}

func (l leanPods) List(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
	list := &leanpod.PodList{}
	err := l.client.Get().NamespaceIfScoped(ns, ns != "").Resource("pods").
		VersionedParams(&o, scheme.ParameterCodec).Timeout(timeoutOf(o)).Do(ctx).Into(list)
	return list, err
}

func (l leanPods) Watch(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
	o.Watch = true
	return l.client.Get().NamespaceIfScoped(ns, ns != "").Resource("pods").
		VersionedParams(&o, scheme.ParameterCodec).Timeout(timeoutOf(o)).Watch(ctx)
}

func (leanPods) object() runtime.Object { return &leanpod.Pod{} }

func timeoutOf(o metav1.ListOptions) time.Duration {
	if o.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*o.TimeoutSeconds) * time.Second
}
