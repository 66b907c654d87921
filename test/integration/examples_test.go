package integration

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// decodeAll decodes a multi-document YAML file into typed objects.
func decodeAll(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// 3. A pod made from the go-kratos Deployment example — labelled and annotated by hand, never
// registered — is discovered as the fixture says.
func TestKratosDeploymentExample(t *testing.T) {
	objs := decodeAll(t, repoFile(t, "test/integration/testdata/kratos-deployment-example.yaml"))
	deployment := objs[0].(*appsv1.Deployment)
	ns := newNamespace(t)
	tmpl := deployment.Spec.Template
	createPod(t, ns, "nginx-abcde", tmpl.Labels, tmpl.Annotations, tmpl.Spec.Containers[0].Ports...)
	setPodStatus(t, ns, "nginx-abcde", corev1.PodRunning, true, "10.0.0.5")

	reg := startRegistry(t, adminClient(t), kuberegistry.WithNamespace(ns))
	got := waitFor(t, reg, "nginx", "http://10.0.0.5:80")[0]
	want := map[string]string{"region": "sh", "zone": "sh001", "cluster": "pd"}
	if got.ID != "56991810-c77f-4a95-8190-393efa9c1a61" || got.Version != "v3.5.0" || len(got.Metadata) != 3 {
		t.Fatalf("got %+v", got)
	}
	for k, v := range want {
		if got.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, got.Metadata[k], v)
		}
	}
}

// The manifests in examples/deploy are valid: the API server accepts them (dry run).
func TestDeployManifestsApply(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	entries, err := os.ReadDir(filepath.Join("..", "..", "examples", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	applied := 0
	for _, e := range entries {
		if e.Name() == "kustomization.yaml" {
			continue
		}
		for _, obj := range decodeAll(t, repoFile(t, "examples/deploy/"+e.Name())) {
			var err error
			switch o := obj.(type) {
			case *corev1.ServiceAccount:
				_, err = client.CoreV1().ServiceAccounts(ns).Create(t.Context(), o, dryRun)
			case *rbacv1.Role:
				_, err = client.RbacV1().Roles(ns).Create(t.Context(), o, dryRun)
			case *rbacv1.RoleBinding:
				_, err = client.RbacV1().RoleBindings(ns).Create(t.Context(), o, dryRun)
			case *appsv1.Deployment:
				_, err = client.AppsV1().Deployments(ns).Create(t.Context(), o, dryRun)
			case *corev1.ConfigMap:
				_, err = client.CoreV1().ConfigMaps(ns).Create(t.Context(), o, dryRun)
			case *rbacv1.ClusterRole:
				_, err = client.RbacV1().ClusterRoles().Create(t.Context(), o, dryRun)
			case *admissionregistrationv1.ValidatingAdmissionPolicy:
				_, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(t.Context(), o, dryRun)
			case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
				_, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(t.Context(), o, dryRun)
			default:
				t.Fatalf("%s: unexpected %T", e.Name(), obj)
			}
			if err != nil {
				t.Errorf("%s: %v", e.Name(), err)
			}
			applied++
		}
	}
	if applied < 9 {
		t.Fatalf("applied %d objects, want at least 9", applied)
	}
}

// The demo's cluster mode runs against the real API server: `go run ./examples/demo -kubeconfig`.
func TestDemoAgainstTheAPIServer(t *testing.T) {
	requireControlPlane(t)
	user, err := testEnv.AddUser(envtest.User{Name: "demo", Groups: []string{"system:masters"}}, restBase())
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/demo", "-kubeconfig", path)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	t.Logf("demo output:\n%s", out)
	if !strings.Contains(string(out), "step 5: greeter-4 is added and becomes ready") ||
		!strings.Contains(string(out), "[greeter-1 http://10.0.0.1:8080, greeter-3 http://10.0.0.3:8080, greeter-4 http://10.0.0.4:8080]") {
		t.Fatalf("unexpected demo output:\n%s", out)
	}
}
