package integration

import (
	"bufio"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the kubectl registry tests")

// buildPlugin builds kubectl-registry as a user installs it, into a directory of the test.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-registry")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "cmd", "kubectl-registry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-registry: %v\n%s", err, out)
	}
	return bin
}

// kubeconfigOf writes a kubeconfig for an envtest user and returns its path.
func kubeconfigOf(t *testing.T, user *envtest.AuthenticatedUser) string {
	t.Helper()
	data, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// golden compares out, with the namespace written NAMESPACE, to testdata/kubectl-registry/name;
// -update rewrites the file.
func golden(t *testing.T, name, ns, out string) {
	t.Helper()
	got := strings.ReplaceAll(out, ns, "NAMESPACE")
	path := filepath.Join("testdata", "kubectl-registry", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("kubectl registry %s printed:\n%s\nwant (%s):\n%s", name, got, path, want)
	}
}

// The plugin against the real API server, run as a user runs it, with a kubeconfig whose
// identity has the discovery Role only.
func TestKubectlRegistry(t *testing.T) {
	ns := newNamespace(t)
	client := adminClient(t)
	readyPod(t, ns, "cart-0", "cart", "10.60.0.1")
	createPod(t, ns, "cart-1", registeredLabels("cart", "cart-1"), grpcProtocols())
	setPodStatus(t, ns, "cart-1", corev1.PodRunning, false, "10.60.0.2")
	leaving := createPod(t, ns, "cart-2", registeredLabels("cart", "cart-2"), grpcProtocols())
	leaving.Finalizers = []string{"kuberegistry.io/test"}
	if _, err := client.CoreV1().Pods(ns).Update(t.Context(), leaving, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeFinalizers(t, client, ns, "cart-2") })
	setPodStatus(t, ns, "cart-2", corev1.PodRunning, true, "10.60.0.3")
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "cart-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	createPod(t, ns, "cart-3", registeredLabels("cart", "cart-3"),
		map[string]string{kuberegistry.AnnotationsKeyProtocolMap: `{"nine thousand":"grpc"}`})
	setPodStatus(t, ns, "cart-3", corev1.PodRunning, true, "10.60.0.4")
	readyPod(t, ns, "web-0", "web", "10.60.0.9")

	grant(t, ns, "kubectl-user", exampleRole(t, "discovery"))
	user, err := testEnv.AddUser(envtest.User{Name: "kubectl-user"}, restBase())
	if err != nil {
		t.Fatal(err)
	}
	userClient := newClientset(t, user.Config())
	eventually(t, func() error {
		_, err := userClient.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})
	bin, kubeconfig := buildPlugin(t), kubeconfigOf(t, user)
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), bin, append(args, "--kubeconfig", kubeconfig, "-n", ns)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		golden string
		args   []string
		fails  bool
	}{
		{"services.golden", []string{"services"}, false},
		{"instances-wide.golden", []string{"instances", "cart", "-o", "wide"}, false},
		{"pods.golden", []string{"pods"}, false},
		{"pods-web-json.golden", []string{"pods", "web", "-o", "json"}, false},
		{"doctor.golden", []string{"doctor"}, true}, // this identity may not register: exit 1
	} {
		out, err := run(c.args...)
		if (err != nil) != c.fails {
			t.Errorf("kubectl registry %v: %v\n%s", c.args, err, out)
		}
		golden(t, c.golden, ns, out)
	}

	// watch: the current set, then one change.
	cmd := exec.CommandContext(t.Context(), bin, "watch", "cart", "--changes", "1", "--kubeconfig", kubeconfig, "-n", ns)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var seen []string
	read := func(prefix string) {
		for lines.Scan() {
			seen = append(seen, lines.Text())
			if strings.Contains(lines.Text(), prefix) {
				return
			}
		}
		t.Fatalf("watch ended before %q: %v", prefix, seen)
	}
	read("+ cart-0 grpc://10.60.0.1:9000")
	setPodStatus(t, ns, "cart-1", corev1.PodRunning, true, "10.60.0.2")
	read("+ cart-1 grpc://10.60.0.2:9000")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	stamp := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d\d\d `)
	for _, l := range seen {
		if !stamp.MatchString(l) {
			t.Errorf("watch line %q has no timestamp", l)
		}
	}
	t.Logf("kubectl registry watch cart:\n%s", strings.Join(seen, "\n"))
}
