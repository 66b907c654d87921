package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cleanupTimeout bounds each cleanup call; t.Context() is already cancelled
// when cleanups run, so they use their own context.
const cleanupTimeout = 30 * time.Second

// testPodImage is never pulled (there is no kubelet); a pod spec just needs a
// syntactically valid image.
const testPodImage = "registry.k8s.io/pause:3.10"

// adminClient returns a clientset authenticated as a member of
// system:masters.
func adminClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	requireControlPlane(t)
	return newClientset(t, adminConfig)
}

// userClient returns a clientset authenticated, by a client certificate, as
// the given user and groups. Such a user has no permissions until a test
// grants them through RBAC.
func userClient(t testing.TB, name string, groups ...string) kubernetes.Interface {
	t.Helper()
	requireControlPlane(t)
	user, err := testEnv.AddUser(envtest.User{Name: name, Groups: groups}, restBase())
	if err != nil {
		t.Fatalf("adding user %q: %v", name, err)
	}
	return newClientset(t, user.Config())
}

// restBase is the starting point for every client configuration: envtest's
// own admin config uses the same generous limits, so that client-side
// throttling never slows a test down.
func restBase() *rest.Config {
	return &rest.Config{QPS: 1000, Burst: 2000}
}

func newClientset(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatalf("creating clientset: %v", err)
	}
	configs.Store(cs, rest.CopyConfig(cfg))
	return cs
}

// configs maps each clientset newClientset made to its configuration, so that startRegistry
// builds its registries with kuberegistry.NewForConfig, as users are told to.
var configs sync.Map // kubernetes.Interface → *rest.Config

var nonNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace with a unique name derived from the test's
// name and removes it, with its pods, when the test ends.
func newNamespace(t testing.TB) string {
	t.Helper()
	cs := adminClient(t)

	prefix := nonNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	prefix = strings.Trim(prefix[:min(len(prefix), 40)], "-")
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	name := ns.Name

	// Stand in for the serviceaccount controller, which creates this in every
	// namespace. envtest disables the ServiceAccount admission plugin, but
	// with it enabled a pod is rejected unless its ServiceAccount exists
	// (whatever automountServiceAccountToken says).
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the default service account of %s: %v", name, err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		// Without a namespace controller nothing deletes the pods of a
		// deleted namespace, and the namespace itself stays Terminating
		// forever. Delete the pods (at once: no kubelet will confirm a
		// graceful stop), then the namespace, then drop its finalizer so
		// the API server removes it; tests that list or watch across
		// namespaces then never see another test's leftovers.
		zero := int64(0)
		if err := cs.CoreV1().Pods(name).DeleteCollection(ctx,
			metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
			t.Errorf("deleting pods in namespace %s: %v", name, err)
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
			return
		}
		if err := finalizeNamespace(ctx, cs, name); err != nil {
			t.Errorf("finalizing namespace %s: %v", name, err)
		}
	})
	return name
}

// finalizeNamespace does the namespace controller's last step: it clears the
// "kubernetes" finalizer of a namespace being deleted, and the API server
// then removes the namespace.
func finalizeNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		ns.Spec.Finalizers = nil
		_, err = cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// createPod creates a pod with one container exposing the given ports. The
// pod is never scheduled or run; use setPodStatus to make it look running.
func createPod(t testing.TB, ns, name string, labels, annotations map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	t.Helper()
	noToken := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   ns,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			// No token controller or kubelet would ever serve a token; this
			// also keeps the ServiceAccount admission plugin, if enabled,
			// from adding a token volume.
			AutomountServiceAccountToken: &noToken,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: testPodImage,
				Ports: ports,
			}},
		},
	}
	created, err := adminClient(t).CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return created
}

// setPodStatus plays the kubelet: through the status subresource it sets the
// pod's phase, its Ready condition, and its IPs (status.podIP is the first of
// ips, status.podIPs all of them; at most one IPv4 and one IPv6 address). No
// ips clears both.
func setPodStatus(t testing.TB, ns, name string, phase corev1.PodPhase, ready bool, ips ...string) {
	t.Helper()
	pods := adminClient(t).CoreV1().Pods(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Status.Phase = phase
		pod.Status.PodIP = ""
		pod.Status.PodIPs = nil
		for i, ip := range ips {
			if i == 0 {
				pod.Status.PodIP = ip
			}
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		setReadyCondition(&pod.Status, ready)
		_, err = pods.UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("setting status of pod %s/%s: %v", ns, name, err)
	}
}

// setReadyCondition sets or adds the Ready condition, moving its transition
// time only when its status changes, as the kubelet does.
func setReadyCondition(status *corev1.PodStatus, ready bool) {
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	now := metav1.Now()
	for i := range status.Conditions {
		c := &status.Conditions[i]
		if c.Type != corev1.PodReady {
			continue
		}
		if c.Status != want {
			c.Status = want
			c.LastTransitionTime = now
		}
		c.LastProbeTime = now
		return
	}
	status.Conditions = append(status.Conditions, corev1.PodCondition{
		Type:               corev1.PodReady,
		Status:             want,
		LastProbeTime:      now,
		LastTransitionTime: now,
	})
}

// restartAPIServer stops kube-apiserver and starts it again with the same
// etcd, address, serving certificate and client CA, so existing rest.Configs
// and clientsets keep working once it is back. It affects every test: never
// call it from a test that runs in parallel with others.
//
// envtest supports this because the APIServer keeps its ports, and the client
// CA lives in memory and is rewritten on Start; only a CertDir that envtest
// made itself would be deleted on Stop (and with it the serving certificate,
// which Start would then regenerate under a new CA). TestMain therefore gives
// the API server a CertDir of its own.
func restartAPIServer(t testing.TB) {
	t.Helper()
	requireControlPlane(t)
	apiServer := testEnv.ControlPlane.APIServer
	before := apiServer.SecureServing.URL("https", "/").String()

	if err := apiServer.Stop(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	if err := apiServer.Start(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	if after := apiServer.SecureServing.URL("https", "/").String(); after != before {
		t.Fatalf("kube-apiserver came back at %s, not %s", after, before)
	}
	waitForReady(t)
}

// waitForReady waits until the API server answers /readyz with 200 OK, i.e.
// until its post-start hooks (RBAC bootstrap and the like) have run; envtest
// itself only waits for /healthz.
func waitForReady(t testing.TB) {
	t.Helper()
	rc := adminClient(t).Discovery().RESTClient()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			_, last = rc.Get().AbsPath("/readyz").DoRaw(ctx)
			return last == nil, nil
		})
	if err != nil {
		t.Fatalf("kube-apiserver not ready: %v", fmt.Errorf("%w (last error: %v)", err, last))
	}
}

// eventually retries f until it returns nil, failing the test if it still
// errs after ten seconds; for state that the API server applies
// asynchronously, such as RBAC changes.
func eventually(t testing.TB, f func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			last = f()
			return last == nil, nil
		})
	if err != nil {
		t.Fatalf("still failing after 10s: %v", last)
	}
}
