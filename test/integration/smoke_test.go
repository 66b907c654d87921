package integration

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestServerVersion checks that kube-apiserver was built with its release
// version stamped in (see hack/control-plane.sh), not a development default.
func TestServerVersion(t *testing.T) {
	requireControlPlane(t)
	v, err := adminClient(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	m := regexp.MustCompile(`^v(\d+)\.(\d+)\.\d+$`).FindStringSubmatch(v.GitVersion)
	if m == nil || v.Major != m[1] || v.Minor != m[2] || v.BuildDate == "1970-01-01T00:00:00Z" {
		t.Fatalf("kube-apiserver reports version %+v; want a stamped release version such as v1.36.3", v)
	}
	t.Logf("kube-apiserver %s", v.GitVersion)
}

func TestPodStatusRoundTrip(t *testing.T) {
	requireControlPlane(t)
	cs := adminClient(t)
	ns := newNamespace(t)

	labels := map[string]string{"app": "web"}
	annotations := map[string]string{"example.com/note": "smoke"}
	port := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
	created := createPod(t, ns, "web-0", labels, annotations, port)
	if created.Status.Phase != corev1.PodPending {
		t.Fatalf("new pod phase = %q, want %q (the API server's default)", created.Status.Phase, corev1.PodPending)
	}

	setPodStatus(t, ns, "web-0", corev1.PodRunning, true, "10.1.2.3", "fd00::3")

	got, err := cs.CoreV1().Pods(ns).Get(t.Context(), "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("phase = %q, want Running", got.Status.Phase)
	}
	if !podReady(got) {
		t.Errorf("pod is not Ready: %+v", got.Status.Conditions)
	}
	if got.Status.PodIP != "10.1.2.3" {
		t.Errorf("podIP = %q, want 10.1.2.3", got.Status.PodIP)
	}
	if ips := podIPs(got); !slices.Equal(ips, []string{"10.1.2.3", "fd00::3"}) {
		t.Errorf("podIPs = %v, want [10.1.2.3 fd00::3]", ips)
	}
	if got.Labels["app"] != "web" || got.Annotations["example.com/note"] != "smoke" {
		t.Errorf("metadata lost: labels %v, annotations %v", got.Labels, got.Annotations)
	}
	if ports := got.Spec.Containers[0].Ports; len(ports) != 1 || ports[0].ContainerPort != 8080 || ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("ports = %+v, want one TCP port 8080", ports)
	}
	if len(got.Spec.Volumes) != 0 {
		t.Errorf("unexpected volumes %+v", got.Spec.Volumes)
	}

	// The pod is found by label, as a registry would look it up.
	list, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list by label: %d pods, err %v", len(list.Items), err)
	}

	// Not ready and without IPs again, as when a pod is being replaced.
	setPodStatus(t, ns, "web-0", corev1.PodRunning, false)
	got, err = cs.CoreV1().Pods(ns).Get(t.Context(), "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if podReady(got) || got.Status.PodIP != "" || len(got.Status.PodIPs) != 0 {
		t.Errorf("after marking not ready: ready %v, podIP %q, podIPs %v", podReady(got), got.Status.PodIP, got.Status.PodIPs)
	}
}

// TestNamespaceCleanup checks that newNamespace's cleanup really removes the
// namespace and its pods, although no namespace controller runs.
func TestNamespaceCleanup(t *testing.T) {
	requireControlPlane(t)
	cs := adminClient(t)
	var ns string
	t.Run("create", func(t *testing.T) {
		ns = newNamespace(t)
		createPod(t, ns, "leftover", nil, nil)
		setPodStatus(t, ns, "leftover", corev1.PodRunning, true, "10.1.2.5")
	})
	eventually(t, func() error {
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left in %s", len(pods.Items), ns)
		}
		_, err = cs.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s still there (err %v)", ns, err)
		}
		return nil
	})
}

// TestUserClientRBAC checks that userClient authenticates as the given user
// and that RBAC applies to it.
func TestUserClientRBAC(t *testing.T) {
	requireControlPlane(t)
	admin := adminClient(t)
	ns := newNamespace(t)
	user := userClient(t, "reader", "kuberegistry:test")

	review, err := user.AuthenticationV1().SelfSubjectReviews().Create(t.Context(),
		&authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != "reader" || !slices.Contains(u.Groups, "kuberegistry:test") {
		t.Fatalf("authenticated as %+v, want user reader in group kuberegistry:test", u)
	}

	if _, err := user.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods without a role: err = %v, want Forbidden", err)
	}
	grantPodReader(t, admin, ns, "reader")
	// RBAC changes reach the authorizer through an informer: poll briefly.
	eventually(t, func() error {
		_, err := user.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})
}

// TestRestartAPIServer checks that clients made before a restart of
// kube-apiserver work after it, and that the data in etcd survived.
func TestRestartAPIServer(t *testing.T) {
	requireControlPlane(t)
	admin := adminClient(t)
	ns := newNamespace(t)
	createPod(t, ns, "before-restart", map[string]string{"app": "restart"}, nil)
	user := userClient(t, "restart-reader")
	grantPodReader(t, admin, ns, "restart-reader")
	eventually(t, func() error {
		_, err := user.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})

	restartAPIServer(t)

	// The clientsets created before the restart, admin and user alike,
	// work at once: same address, same serving CA, same client CA.
	for name, cs := range map[string]kubernetes.Interface{"admin": admin, "user": user} {
		if _, err := cs.CoreV1().Pods(ns).Get(t.Context(), "before-restart", metav1.GetOptions{}); err != nil {
			t.Fatalf("%s client from before the restart: %v", name, err)
		}
	}
	// Writes work too, including the status subresource.
	createPod(t, ns, "after-restart", nil, nil)
	setPodStatus(t, ns, "before-restart", corev1.PodRunning, true, "10.1.2.4")
}

func grantPodReader(t testing.TB, admin kubernetes.Interface, ns, user string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"pods"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating role: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating role binding: %v", err)
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podIPs(pod *corev1.Pod) []string {
	var ips []string
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return ips
}
