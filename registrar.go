package kuberegistry

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// fieldManager names this library in the pod's managedFields.
const fieldManager = "kuberegistry"

// cacheCatchUpLimit bounds how long Register and Deregister wait for the registry's own cache to
// show their change, so that a broken watch delays them but never blocks them.
const cacheCatchUpLimit = 5 * time.Second

// Register publishes service on the pod this process runs in, with one merge patch of its labels
// and annotations: exactly one request when the API server answers. It validates service first
// and makes no request when it is invalid. Transient failures (conflicts, throttling, server
// errors, timeouts) are retried with backoff until ctx ends.
//
// The host of each endpoint is not stored: discovery rebuilds endpoints from the pod's IPs, so
// "grpc://0.0.0.0:9000" registers port 9000 as grpc. Query strings, such as "?isSecure=true", are
// kept. An ID or version that is not a valid label value is stored exactly in an annotation.
//
// When the registry is started and its own pod is in scope, Register returns once the registry's
// cache shows the change (waiting at most a few seconds), so GetService reads its own writes.
func (r *Registry) Register(ctx context.Context, service *ServiceInstance) (err error) {
	defer func(start time.Time) { r.registers.observe(time.Since(start), err) }(time.Now())
	reg, err := encodeRegistration(service)
	if err != nil {
		return err
	}
	patch, err := annotationJSON.Marshal(map[string]any{
		"metadata": map[string]any{"labels": reg.labels, "annotations": reg.annotations},
	})
	if err != nil {
		return fmt.Errorf("kuberegistry: encoding the registration: %w", err)
	}
	mark := r.self.mark()
	pod, err := r.patchSelf(ctx, patch)
	if err != nil {
		return err
	}
	if r.selector.Matches(labels.Set(pod.Labels)) { // else the pod is filtered out of the cache
		r.awaitCache(ctx, mark, pod.ResourceVersion, true)
	}
	return nil
}

// deregistrationPatch removes every key Register writes (null deletes a key in a merge patch).
var deregistrationPatch = []byte(`{"metadata":{"labels":{"` +
	LabelsKeyServiceID + `":null,"` + LabelsKeyServiceName + `":null,"` + LabelsKeyServiceVersion + `":null},"annotations":{"` +
	AnnotationsKeyMetadata + `":null,"` + AnnotationsKeyProtocolMap + `":null,"` + AnnotationsKeyServiceID + `":null,"` +
	AnnotationsKeyServiceVersion + `":null,"` + AnnotationsKeyEndpointParams + `":null}}}`)

// Deregister removes the registration from the pod this process runs in; the pod leaves discovery
// at once. It is idempotent: deregistering an unregistered pod, or one already deleted, succeeds.
// service is not used: a pod holds one registration.
func (r *Registry) Deregister(ctx context.Context, _ *ServiceInstance) (err error) {
	defer func(start time.Time) { r.deregisters.observe(time.Since(start), err) }(time.Now())
	mark := r.self.mark()
	pod, err := r.patchSelf(ctx, deregistrationPatch)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r.awaitCache(ctx, mark, pod.ResourceVersion, false)
	return nil
}

// patchSelf applies a merge patch to the registry's own pod, retrying transient failures.
func (r *Registry) patchSelf(ctx context.Context, patch []byte) (*corev1.Pod, error) {
	if !r.pod.known() {
		return nil, ErrNoPodIdentity
	}
	if r.life.closed() {
		return nil, ErrClosed
	}
	pods := r.client.CoreV1().Pods(r.pod.namespace)
	var pod *corev1.Pod
	err := retryTransient(ctx, r.life.ctx, func() (err error) {
		pod, err = pods.Patch(ctx, r.pod.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		return err
	})
	if denial := admissionDenial(err, "patch pod "+r.pod.String()); denial != nil {
		return nil, denial // before the status codes: a policy answers 403 or 422 too
	}
	switch {
	case err == nil:
		return pod, nil
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return nil, &PermissionError{Verb: "patch", Resource: "pods", Namespace: r.pod.namespace, Err: err}
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("kuberegistry: pod %s not found: check WithPod, or the POD_NAME and POD_NAMESPACE variables set by the Downward API: %w", r.pod, err)
	case apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err):
		return nil, fmt.Errorf("kuberegistry: the API server refused the registration of pod %s (are the pod's annotations too large?): %w", r.pod, err)
	default:
		return nil, fmt.Errorf("kuberegistry: patching pod %s: %w", r.pod, err)
	}
}

// awaitCache waits until the registry's cache shows its own pod at resource version rv or newer
// (or, after a deregistration, no longer holds it), if the registry is started and its pod is in
// scope. It gives up quietly at ctx's end or after cacheCatchUpLimit: the patch is done, and
// discovery catches up on its own.
func (r *Registry) awaitCache(ctx context.Context, mark uint64, rv string, registered bool) {
	if r.selfKey == "" || r.started() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cacheCatchUpLimit)
	defer cancel()
	if !r.self.await(ctx, r.life.ctx.Done(), mark, rv, registered) {
		r.logger.Debug("kuberegistry: the cache did not show the registry's own pod change in time", "pod", r.pod.String(), "resourceVersion", rv)
	}
}

// selfObserver follows the registry's own pod through the informer's events, so that Register
// and Deregister can wait for the cache to show their change.
type selfObserver struct {
	mu      sync.Mutex    // guards seq, rv, cached and changed
	seq     uint64        // counts the events seen for the pod
	rv      string        // the resource version of the last event seen for the pod
	cached  bool          // whether the cache holds the pod
	changed chan struct{} // closed, and replaced, at every event
}

func newSelfObserver() *selfObserver {
	return &selfObserver{changed: make(chan struct{})}
}

// observe records an event for the pod; it never blocks.
func (s *selfObserver) observe(rv string, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.rv, s.cached = rv, !deleted
	close(s.changed)
	s.changed = make(chan struct{})
}

// mark returns a point to wait from, taken before a patch is sent.
func (s *selfObserver) mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// await waits until the cache shows the pod at rv or newer, or, when registered is false, no
// longer holds it. It reports whether that happened before ctx or closed ended. A client whose
// objects carry no resource version (the fake clientset's) waits for any event after mark.
func (s *selfObserver) await(ctx context.Context, closed <-chan struct{}, mark uint64, rv string, registered bool) bool {
	_, err := strconv.ParseUint(rv, 10, 64)
	versioned := err == nil
	for {
		s.mu.Lock()
		done := (!registered && !s.cached) ||
			(versioned && resourceVersionAtLeast(s.rv, rv)) || (!versioned && s.seq > mark)
		changed := s.changed
		s.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-closed:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// resourceVersionAtLeast compares resource versions. They are opaque in the API, but every
// implementation (etcd's revision, the fake clientset's counter) uses integers; anything else is
// compared for equality only.
func resourceVersionAtLeast(have, want string) bool {
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	if err1 != nil || err2 != nil {
		return have == want
	}
	return h >= w
}
