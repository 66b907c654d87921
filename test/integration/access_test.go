package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// repoFile reads a file of the repository, relative to its root.
func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exampleRole is a Role of examples/deploy, as the README gives it to users: "registrar" or
// "discovery".
func exampleRole(t *testing.T, kind string) *rbacv1.Role {
	t.Helper()
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(repoFile(t, "examples/deploy/role-"+kind+".yaml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*rbacv1.Role)
}

// grant creates role in ns, unless it is there, and binds it to user.
func grant(t *testing.T, ns, user string, role *rbacv1.Role) {
	t.Helper()
	client := adminClient(t)
	role = role.DeepCopy()
	role.Namespace = ns
	if _, err := client.RbacV1().Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// 6. Least privilege: the example Role is enough, and what is missing is named.
func TestLeastPrivilege(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, "self", nil, nil)
	setPodStatus(t, ns, "self", corev1.PodRunning, true, "10.0.6.1")
	grant(t, ns, "registrar", exampleRole(t, "discovery"))
	grant(t, ns, "registrar", exampleRole(t, "registrar"))
	user := userClient(t, "registrar")
	// RBAC changes reach the authorizer asynchronously.
	eventually(t, func() error {
		_, err := user.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})

	t.Run("the example Roles are enough", func(t *testing.T) {
		reg := startRegistry(t, user, kuberegistry.WithPod(ns, "self"))
		w, err := reg.Watch(t.Context(), "cart")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		next(t, w)
		if err := reg.Register(t.Context(), &kuberegistry.ServiceInstance{Name: "cart", Endpoints: []string{"grpc://:9000"}}); err != nil {
			t.Fatalf("Register: %v", err)
		}
		if got := endpoints(next(t, w)); got != "grpc://10.0.6.1:9000" {
			t.Fatalf("watcher saw %q", got)
		}
	})

	t.Run("all namespaces fails Start with a clear error, within its context", func(t *testing.T) {
		reg, err := kuberegistry.New(user, kuberegistry.WithNamespace(""), kuberegistry.WithPod(ns, "self"))
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		err = reg.Start(ctx)
		var perm *kuberegistry.PermissionError
		if !errors.As(err, &perm) || perm.Verb != "list" || perm.Namespace != "" {
			t.Fatalf("Start = %v, want a PermissionError for list in all namespaces", err)
		}
		if ctx.Err() != nil {
			t.Fatal("Start waited for its context instead of failing fast")
		}
		t.Logf("Start said: %v", err)
	})

	t.Run("without patch, Register names the missing verb", func(t *testing.T) {
		grant(t, ns, "reader", exampleRole(t, "discovery"))
		reader := userClient(t, "reader")
		eventually(t, func() error {
			_, err := reader.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
			return err
		})
		reg := startRegistry(t, reader, kuberegistry.WithPod(ns, "self"))
		err := reg.Register(t.Context(), &kuberegistry.ServiceInstance{Name: "cart"})
		var perm *kuberegistry.PermissionError
		if !errors.As(err, &perm) || perm.Verb != "patch" || perm.Resource != "pods" {
			t.Fatalf("Register = %v, want a PermissionError for patch on pods", err)
		}
		t.Logf("Register said: %v", err)
	})
}
