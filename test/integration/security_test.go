package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The scene of the security tests, as examples/deploy sets it up: registrar "hello" runs in pod
// "self" (owned by a ReplicaSet, like a Deployment's pods); pod "victim" belongs to service
// payments, selected by a Service through app=payments and registered as payments.
const (
	registrarAccount = "hello"
	ownPod           = "self"
	otherPod         = "victim"
	policyName       = "kuberegistry-registrar"
)

// securityScene is one namespace with the example applied and the clients of every actor.
type securityScene struct {
	ns        string
	admin     kubernetes.Interface
	bound     *rest.Config // hello's token, bound to pod self
	unbound   *rest.Config // hello's token, bound to no pod
	discovery *rest.Config // a discovery client with role-discovery.yaml only
}

// newSecurityScene applies examples/deploy to a new namespace, without the registrar ConfigMap
// when withPolicy is false (the policy then does not apply there: the Role alone), and creates
// the two pods and the actors' credentials.
func newSecurityScene(t *testing.T, withPolicy bool) *securityScene {
	t.Helper()
	ns := newNamespace(t)
	var objs []*unstructured.Unstructured
	for _, obj := range buildKustomization(t, "examples/deploy") {
		if !withPolicy && obj.GetKind() == "ConfigMap" {
			continue
		}
		objs = append(objs, obj)
	}
	applyObjects(t, ns, objs)

	controller := true
	self := createPodAs(t, ns, ownPod, registrarAccount, map[string]string{"app": "hello"}, nil)
	self.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "hello-6b7f9c", UID: "0c1f6a0e-1111-4222-8333-944455556666", Controller: &controller,
	}}
	self, err := adminClient(t).CoreV1().Pods(ns).Update(t.Context(), self, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createPodAs(t, ns, otherPod, "payments",
		map[string]string{"app": "payments", kuberegistry.LabelsKeyServiceName: "payments", kuberegistry.LabelsKeyServiceID: otherPod},
		map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"8080":"http"}`, "team": "payments"})
	setPodStatus(t, ns, ownPod, corev1.PodRunning, true, "10.7.0.1")
	setPodStatus(t, ns, otherPod, corev1.PodRunning, true, "10.7.0.2")

	s := &securityScene{
		ns:      ns,
		admin:   adminClient(t),
		bound:   serviceAccountConfig(t, ns, registrarAccount, self),
		unbound: serviceAccountConfig(t, ns, registrarAccount, nil),
	}
	s.discovery = s.serviceAccount(t, "watcher", "kuberegistry-discovery")

	// RBAC and admission policies reach the API server's caches asynchronously.
	registrar := newClientset(t, s.bound)
	eventually(t, func() error {
		_, err := registrar.CoreV1().Pods(ns).Patch(t.Context(), ownPod, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"kratos-service-version":"v0"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})
	if withPolicy {
		eventually(t, func() error {
			_, err := registrar.CoreV1().Pods(ns).Patch(t.Context(), otherPod, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"app":"hello"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			if deniedBy(err) != "policy" {
				return fmt.Errorf("the policy is not in force yet: %v", err)
			}
			return nil
		})
	}
	return s
}

// serviceAccount creates service account name bound to role and returns a configuration with a
// token of it that is bound to no pod.
func (s *securityScene) serviceAccount(t *testing.T, name, role string) *rest.Config {
	t.Helper()
	admin := adminClient(t)
	if _, err := admin.CoreV1().ServiceAccounts(s.ns).Create(t.Context(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(s.ns).Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: s.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return serviceAccountConfig(t, s.ns, name, nil)
}

// deniedBy tells who refused a request: "" when nothing did, "policy" for the registrar policy,
// "RBAC" for the authorizer; anything else is returned whole, and fails the test.
func deniedBy(err error) string {
	var policy *kuberegistry.PolicyError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &policy) && policy.Policy == policyName,
		strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policyName+"'"):
		return "policy"
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "cannot "):
		return "RBAC"
	}
	var perm *kuberegistry.PermissionError
	if errors.As(err, &perm) {
		return "RBAC"
	}
	return "error: " + err.Error()
}

// attack is one thing a compromised registrar (or a discovery client) might try.
type attack struct {
	actor  string // whose credential: "registrar" (pod-bound token), "unbound", "discovery"
	what   string
	target string // the pod that must not change
	try    func(ctx context.Context, s *securityScene, cs kubernetes.Interface, cfg *rest.Config) error
}

func patchPod(pod string, pt types.PatchType, body string) func(context.Context, *securityScene, kubernetes.Interface, *rest.Config) error {
	return func(ctx context.Context, s *securityScene, cs kubernetes.Interface, _ *rest.Config) error {
		opts, data := metav1.PatchOptions{}, body
		if pt == types.ApplyPatchType {
			force := true
			opts = metav1.PatchOptions{FieldManager: "attacker", Force: &force}
			data = fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,%s}}`, pod, body)
		}
		_, err := cs.CoreV1().Pods(s.ns).Patch(ctx, pod, pt, []byte(data), opts)
		return err
	}
}

// register calls the library's Register for pod self with the actor's credential.
func register(service string) func(context.Context, *securityScene, kubernetes.Interface, *rest.Config) error {
	return func(ctx context.Context, s *securityScene, _ kubernetes.Interface, cfg *rest.Config) error {
		reg, err := kuberegistry.NewForConfig(cfg, kuberegistry.WithPod(s.ns, ownPod), kuberegistry.WithNamespace(s.ns))
		if err != nil {
			return err
		}
		defer reg.Close()
		return reg.Register(ctx, &kuberegistry.ServiceInstance{Name: service, Endpoints: []string{"http://:8080"}})
	}
}

// withPod fetches pod as the administrator (the attacker is assumed to know it), changes it, and
// sends it back with the actor's credential.
func withPod(pod string, send func(context.Context, kubernetes.Interface, *corev1.Pod) error) func(context.Context, *securityScene, kubernetes.Interface, *rest.Config) error {
	return func(ctx context.Context, s *securityScene, cs kubernetes.Interface, _ *rest.Config) error {
		p, err := s.admin.CoreV1().Pods(s.ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Labels["app"] = "hello"
		return send(ctx, cs, p)
	}
}

var attacks = []attack{
	{"registrar", "deregister another service: remove its pod's registry labels (merge patch)", otherPod,
		patchPod(otherPod, types.MergePatchType, `{"metadata":{"labels":{"kratos-service-app":null,"kratos-service-id":null}}}`)},
	{"registrar", "take another pod out of its Service: change its `app` label (merge patch)", otherPod,
		patchPod(otherPod, types.MergePatchType, `{"metadata":{"labels":{"app":"hello"}}}`)},
	{"registrar", "rename another pod's service (JSON patch)", otherPod,
		patchPod(otherPod, types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/kratos-service-app","value":"hello"}]`)},
	{"registrar", "change another pod's `app` label (strategic-merge patch)", otherPod,
		patchPod(otherPod, types.StrategicMergePatchType, `{"metadata":{"labels":{"app":"hello"}}}`)},
	{"registrar", "change another pod's `app` label (server-side apply)", otherPod,
		patchPod(otherPod, types.ApplyPatchType, `"labels":{"app":"hello"}`)},
	{"registrar", "read another pod's spec and environment through a no-op patch", otherPod,
		patchPod(otherPod, types.MergePatchType, `{}`)},
	{"registrar", "join another Service: add `app: payments` to its own pod (merge patch)", ownPod,
		patchPod(ownPod, types.MergePatchType, `{"metadata":{"labels":{"app":"payments"}}}`)},
	{"registrar", "join another Service (JSON patch)", ownPod,
		patchPod(ownPod, types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/app","value":"payments"}]`)},
	{"registrar", "join another Service (server-side apply)", ownPod,
		patchPod(ownPod, types.ApplyPatchType, `"labels":{"app":"payments"}`)},
	{"registrar", "impersonate another service: Register its own pod as `payments`", ownPod,
		register("payments")},
	{"registrar", "change its own pod's spec (activeDeadlineSeconds)", ownPod,
		patchPod(ownPod, types.MergePatchType, `{"spec":{"activeDeadlineSeconds":1}}`)},
	{"registrar", "change a non-registry annotation of its own pod", ownPod,
		patchPod(ownPod, types.MergePatchType, `{"metadata":{"annotations":{"prometheus.io/scrape":"false"}}}`)},
	{"registrar", "orphan its own pod from its ReplicaSet (owner references)", ownPod,
		patchPod(ownPod, types.MergePatchType, `{"metadata":{"ownerReferences":null}}`)},
	{"registrar", "replace another pod whole (update)", otherPod,
		withPod(otherPod, func(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) error {
			_, err := cs.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})},
	{"registrar", "write its own pod's status", ownPod,
		withPod(ownPod, func(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) error {
			_, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})},
	{"registrar", "delete another pod", otherPod,
		func(ctx context.Context, s *securityScene, cs kubernetes.Interface, _ *rest.Config) error {
			return cs.CoreV1().Pods(s.ns).Delete(ctx, otherPod, metav1.DeleteOptions{})
		}},
	{"unbound", "register its own pod with a token bound to no pod", ownPod,
		register(registrarAccount)},
	{"unbound", "deregister another service (merge patch)", otherPod,
		patchPod(otherPod, types.MergePatchType, `{"metadata":{"labels":{"kratos-service-app":null}}}`)},
	{"unbound", "change another pod's `app` label (server-side apply)", otherPod,
		patchPod(otherPod, types.ApplyPatchType, `"labels":{"app":"hello"}`)},
	{"discovery", "deregister another service (merge patch)", otherPod,
		patchPod(otherPod, types.MergePatchType, `{"metadata":{"labels":{"kratos-service-app":null}}}`)},
}

// run tries every attack in the scene and reports, for each, who denied it ("" when it
// succeeded), checking that a denied attack changed nothing.
func (s *securityScene) run(t *testing.T) []string {
	t.Helper()
	admin := adminClient(t)
	configs := map[string]*rest.Config{"registrar": s.bound, "unbound": s.unbound, "discovery": s.discovery}
	results := make([]string, len(attacks))
	for i, a := range attacks {
		cfg := configs[a.actor]
		before, err := admin.CoreV1().Pods(s.ns).Get(t.Context(), a.target, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = a.try(t.Context(), s, newClientset(t, cfg), cfg)
		results[i] = deniedBy(err)
		after, getErr := admin.CoreV1().Pods(s.ns).Get(t.Context(), a.target, metav1.GetOptions{})
		switch {
		case strings.HasPrefix(results[i], "error: "):
			t.Errorf("attack %q (%s): unexpected %v", a.what, a.actor, err)
		case results[i] != "" && (getErr != nil || after.ResourceVersion != before.ResourceVersion):
			t.Errorf("attack %q (%s) was denied (%v) but pod %s changed", a.what, a.actor, err, a.target)
		}
		if results[i] != "" {
			t.Logf("%s, %s: %v", a.actor, a.what, err)
		}
	}
	return results
}

// A registrar can change only its own pod's registry keys; nobody else is affected. The policy,
// Roles and bindings are applied from examples/deploy through its kustomization, and every
// request is made with a real service-account token, as in a pod.
func TestRegistrarAdmissionPolicy(t *testing.T) {
	roleOnly := newSecurityScene(t, false).run(t)
	scene := newSecurityScene(t, true)
	withPolicy := scene.run(t)

	var policyDenials, rbacDenials, roleOnlySucceeded int
	for i, a := range attacks {
		switch withPolicy[i] {
		case "":
			t.Errorf("attack %q (%s) succeeded with the policy in force", a.what, a.actor)
		case "policy":
			policyDenials++
			if roleOnly[i] != "" { // else the test proves nothing about the policy
				t.Errorf("attack %q (%s) is denied by the policy, but the Role alone denies it too (%s)", a.what, a.actor, roleOnly[i])
			}
		case "RBAC":
			rbacDenials++
			if roleOnly[i] != "RBAC" {
				t.Errorf("attack %q (%s): RBAC denies it with the policy but not without (%q)", a.what, a.actor, roleOnly[i])
			}
		}
		if roleOnly[i] == "" {
			roleOnlySucceeded++
		}
	}

	legitimate := scene.legitimateOperations(t)
	broken := 0
	for _, op := range legitimate {
		if op.err != nil {
			broken++
			t.Errorf("legitimate operation %q failed: %v", op.what, op.err)
		}
	}

	table := securityTable(roleOnly, withPolicy, legitimate)
	summary := fmt.Sprintf("%d attacks tried: %d succeed with the Role alone; with the policy all %d are denied "+
		"(%d by the policy, %d by RBAC). %d legitimate operations, %d broken.",
		len(attacks), roleOnlySucceeded, policyDenials+rbacDenials, policyDenials, rbacDenials, len(legitimate), broken)
	t.Logf("\n%s\n%s", table, summary)
	checkREADMETable(t, table+"\n"+summary+"\n")
}

// operation is a legitimate request and what became of it.
type operation struct {
	what string
	err  error
}

// legitimateOperations runs, in the protected scene, what the policy must never stop.
func (s *securityScene) legitimateOperations(t *testing.T) []operation {
	t.Helper()
	ctx := t.Context()
	var ops []operation
	do := func(what string, f func() error) { ops = append(ops, operation{what, f()}) }

	// The discovery client watches what the registrar does.
	discovery := startRegistry(t, newClientset(t, s.discovery), kuberegistry.WithNamespace(s.ns))
	w, err := discovery.Watch(ctx, registrarAccount)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)
	registrar, err := kuberegistry.NewForConfig(s.bound, kuberegistry.WithPod(s.ns, ownPod), kuberegistry.WithNamespace(s.ns))
	if err != nil {
		t.Fatal(err)
	}
	defer registrar.Close()
	sees := func(version string) error {
		got := next(t, w)
		if version == "" && len(got) == 0 || len(got) == 1 && got[0].Version == version {
			return nil
		}
		return fmt.Errorf("the discovery client saw %v", got)
	}
	do("the registrar registers its own pod (pod-bound token); a discovery client sees it", func() error {
		err := registrar.Register(ctx, &kuberegistry.ServiceInstance{Name: registrarAccount, Version: "v1", Endpoints: []string{"http://:8080"}})
		return errors.Join(err, sees("v1"))
	})
	do("the registrar updates its registration (new version, metadata)", func() error {
		err := registrar.Register(ctx, &kuberegistry.ServiceInstance{Name: registrarAccount, Version: "v2+build.7",
			Metadata: map[string]string{"zone": "a"}, Endpoints: []string{"http://:8080?isSecure=false"}})
		return errors.Join(err, sees("v2+build.7"))
	})
	do("the registrar deregisters; the discovery client sees it leave", func() error {
		return errors.Join(registrar.Deregister(ctx, nil), sees(""))
	})
	admin := adminClient(t)
	do("an administrator relabels another pod (app and registry labels)", func() error {
		_, err := admin.CoreV1().Pods(s.ns).Patch(ctx, otherPod, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"app":"payments-v2","kratos-service-version":"v9"}}}`), metav1.PatchOptions{})
		return err
	})
	do("the kubelet (system:node:node-1) writes the registrar pod's status", func() error {
		kubelet := s.clusterUser(t, "system:node:node-1", []string{"system:nodes"}, "system:node")
		pod, err := admin.CoreV1().Pods(s.ns).Get(ctx, ownPod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setReadyCondition(&pod.Status, false)
		_, err = kubelet.CoreV1().Pods(s.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	do("the ReplicaSet controller orphans and adopts the registrar's pod (owner references)", func() error {
		// Bootstrap RBAC already binds this service account to its controller ClusterRole.
		rs := userClient(t, "system:serviceaccount:kube-system:replicaset-controller",
			"system:serviceaccounts", "system:serviceaccounts:kube-system")
		pod, err := admin.CoreV1().Pods(s.ns).Get(ctx, ownPod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		owners := pod.OwnerReferences
		if _, err := rs.CoreV1().Pods(s.ns).Patch(ctx, ownPod, types.MergePatchType,
			[]byte(`{"metadata":{"ownerReferences":null}}`), metav1.PatchOptions{}); err != nil {
			return err
		}
		pod.OwnerReferences = owners
		body := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":%q,"uid":%q,"controller":true}]}}`,
			owners[0].Name, owners[0].UID)
		_, err = rs.CoreV1().Pods(s.ns).Patch(ctx, ownPod, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	})
	do("another service account of the namespace, not a registrar, relabels a pod", func() error {
		if _, err := admin.RbacV1().Roles(s.ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-labeller"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"patch"}}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		labeller := newClientset(t, s.serviceAccount(t, "labeller", "pod-labeller"))
		var err error
		eventually(t, func() error {
			_, err = labeller.CoreV1().Pods(s.ns).Patch(ctx, otherPod, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"app":"payments"}}}`), metav1.PatchOptions{})
			if deniedBy(err) == "RBAC" {
				return err // the binding is not in force yet
			}
			return nil
		})
		return err
	})
	do("discovery in all namespaces with clusterrole-discovery.yaml", func() error {
		var role *rbacv1.ClusterRole
		for _, obj := range decodeAll(t, repoFile(t, "examples/deploy/clusterrole-discovery.yaml")) {
			role = obj.(*rbacv1.ClusterRole)
		}
		role.Name = s.ns + "-discovery"
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return err
		}
		t.Cleanup(func() {
			_ = admin.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
		user := s.clusterUser(t, s.ns+"-everywhere", nil, role.Name)
		reg, err := kuberegistry.New(user, kuberegistry.WithNamespace(""))
		if err != nil {
			return err
		}
		defer reg.Close()
		return reg.Start(ctx)
	})
	return ops
}

// clusterUser returns a client of user (a client certificate) bound to clusterRole by a
// ClusterRoleBinding, once the binding is in force.
func (s *securityScene) clusterUser(t *testing.T, user string, groups []string, clusterRole string) kubernetes.Interface {
	t.Helper()
	admin := adminClient(t)
	name := s.ns + "-" + nonNameChars.ReplaceAllString(user, "-")
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	cs := userClient(t, user, groups...)
	eventually(t, func() error {
		_, err := cs.CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{Limit: 1})
		return err
	})
	return cs
}

// securityTable renders the results as the README's Security section shows them.
func securityTable(roleOnly, withPolicy []string, legitimate []operation) string {
	actors := map[string]string{
		"registrar": "registrar (its pod's token)",
		"unbound":   "registrar (token bound to no pod)",
		"discovery": "discovery client",
	}
	verdict := func(s string) string {
		if s == "" {
			return "**succeeds**"
		}
		return "denied (" + s + ")"
	}
	var b strings.Builder
	b.WriteString("| # | who | tries to | Role alone | Role + policy |\n|---|---|---|---|---|\n")
	for i, a := range attacks {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1, actors[a.actor], a.what, verdict(roleOnly[i]), verdict(withPolicy[i]))
	}
	b.WriteString("\n| legitimate operation, with the policy in force | result |\n|---|---|\n")
	for _, op := range legitimate {
		result := "works"
		if op.err != nil {
			result = "**broken**"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", op.what, result)
	}
	return b.String()
}

const (
	readmeTableBegin = "<!-- security-table: written by TestRegistrarAdmissionPolicy -->\n"
	readmeTableEnd   = "<!-- end of security-table -->"
)

// checkREADMETable fails unless the README shows exactly the table this run produced, so that
// the README never claims what the suite did not prove.
func checkREADMETable(t *testing.T, table string) {
	t.Helper()
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	begin, end := strings.Index(text, readmeTableBegin), strings.Index(text, readmeTableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md lacks the security table's markers %q … %q", readmeTableBegin, readmeTableEnd)
	}
	if got := text[begin+len(readmeTableBegin) : end]; got != table {
		t.Errorf("README.md's security table is not what this run measured; replace it with:\n%s", table)
	}
}
