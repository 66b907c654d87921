package integration

// The xDS tier as a user runs it: cmd/kuberegistry-xds built into a temporary directory, started
// against the test control plane's kubeconfig on free ports, and gRPC clients that reach it with
// grpc-go's own xDS resolver and balancers only.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/xds" // grpc-go's xds:/// resolver, its balancers and its xDS client
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// buildXDSTier builds cmd/kuberegistry-xds as a user installs it, into a directory of the test,
// with the race detector: the tier's data races under real traffic fail the test (see
// startXDSTier), and its packages are those `go test -race` of the program's module compiled.
func buildXDSTier(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kuberegistry-xds")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-race", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "cmd", "kuberegistry-xds")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kuberegistry-xds: %v\n%s", err, out)
	}
	t.Logf("built kuberegistry-xds in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// raceEnv is the environment of the tier's processes: the race detector's default second of sleep
// at exit (atexit_sleep_ms), which lets other goroutines report races, would add a second to every
// run of the program; a race found before exit still fails it with status 66.
func raceEnv() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

// tierKubeconfig writes the kubeconfig of the identity the tier runs as, with the permissions its
// documentation asks for with -all-namespaces and -services: the rules of
// examples/deploy/clusterrole-discovery.yaml (list and watch pods) and list and watch on
// EndpointSlices (examples/xds/role.yaml), bound cluster-wide.
func tierKubeconfig(t *testing.T) string {
	t.Helper()
	const name = "kuberegistry-xds-e2e"
	admin := adminClient(t)
	var role *rbacv1.ClusterRole
	for _, obj := range decodeAll(t, repoFile(t, "examples/deploy/clusterrole-discovery.yaml")) {
		role = obj.(*rbacv1.ClusterRole)
	}
	role.Name = name
	role.Rules = append(role.Rules, rbacv1.PolicyRule{
		APIGroups: []string{discoveryv1.GroupName}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"},
	})
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	user, err := testEnv.AddUser(envtest.User{Name: name}, restBase())
	if err != nil {
		t.Fatal(err)
	}
	// RBAC changes reach the authorizer asynchronously.
	cs := newClientset(t, user.Config())
	eventually(t, func() error {
		if _, err := cs.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
		_, err := cs.DiscoveryV1().EndpointSlices("").List(t.Context(), metav1.ListOptions{Limit: 1})
		return err
	})
	return kubeconfigOf(t, user)
}

// xdsTier is one running process of the tier.
type xdsTier struct {
	name     string
	xdsAddr  string // host:port of its xDS (gRPC) listener
	httpAddr string // host:port of /healthz, /readyz and /metrics
	cmd      *exec.Cmd
	logs     *syncBuffer
	exited   chan struct{} // closed once the process has exited and waitErr is set
	waitErr  error

	stopOnce sync.Once
}

// startXDSTier starts the program at bin with the given flags besides -kubeconfig and the two
// listen addresses, waits until it answers /readyz, and stops it with the test.
func startXDSTier(t *testing.T, bin, kubeconfig, name string, args ...string) *xdsTier {
	t.Helper()
	p := &xdsTier{
		name:     name,
		xdsAddr:  freeAddr(t),
		httpAddr: freeAddr(t),
		logs:     &syncBuffer{},
		exited:   make(chan struct{}),
	}
	args = append([]string{"-kubeconfig", kubeconfig, "-xds-listen", p.xdsAddr, "-http-listen", p.httpAddr}, args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = raceEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in %s", p.name)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.name, p.logs.String())
		}
	})
	p.waitReady(t)
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago. Another process
// may take it meanwhile, but nothing else on the test machine picks ports at that rate.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// waitReady polls /readyz until it answers 200, failing at once if the process exits.
func (p *xdsTier) waitReady(t *testing.T) {
	t.Helper()
	start := time.Now()
	var last string
	for {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.waitErr, p.logs.String())
		default:
		}
		code, body, err := p.get("/readyz")
		switch {
		case err == nil && code == http.StatusOK:
			t.Logf("%s ready after %v (xDS on %s)", p.name, time.Since(start).Round(time.Millisecond), p.xdsAddr)
			return
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s not ready after 30s: /readyz: %s\n%s", p.name, last, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches path from the tier's HTTP listener.
func (p *xdsTier) get(path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metric returns the value of the first series of /metrics whose name (with its labels, if
// any) starts with series; ok is false when there is none.
func (p *xdsTier) metric(t *testing.T, series string) (value float64, ok bool) {
	t.Helper()
	code, body, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %v", p.name, code, err)
	}
	lines := bufio.NewScanner(strings.NewReader(body))
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, series) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", p.name, line, err)
		}
		return v, true
	}
	return 0, false
}

// kill ends the process at once, as a node failure or an OOM kill would: its xDS streams break
// without a word to the clients.
func (p *xdsTier) kill(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// stop ends the process as Kubernetes does (SIGTERM, then SIGKILL after a grace period) and
// reports an exit other than a clean one. It is idempotent.
func (p *xdsTier) stop(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("%s exited with %v after SIGTERM", p.name, p.waitErr)
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not exit within 15s of SIGTERM", p.name)
		}
	})
}

// printBootstrap runs the program as a user does to write GRPC_XDS_BOOTSTRAP for clients of the
// given server URIs, and returns what it printed.
func printBootstrap(t *testing.T, bin string, serverURIs ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "-print-bootstrap", "-server-uri", strings.Join(serverURIs, ","))
	cmd.Env = raceEnv()
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("kuberegistry-xds -print-bootstrap: %v\n%s", err, exit.Stderr)
		}
		t.Fatal(err)
	}
	return out
}

// dialXDS dials target, such as xds:///greeter, with grpc-go's xDS resolver reading bootstrap:
// each ClientConn gets an xDS client of its own, as a process given GRPC_XDS_BOOTSTRAP_CONFIG
// would have (grpc-go reads that variable once per process, and these tests need several
// bootstraps). The load balancing policy is the one the tier's Cluster names; the ClientConn is
// closed with the test.
func dialXDS(t *testing.T, bootstrap []byte, target string) *grpc.ClientConn {
	t.Helper()
	resolverBuilder, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatalf("the bootstrap the tier printed is not one grpc-go accepts: %v\n%s", err, bootstrap)
	}
	conn, err := grpc.NewClient(target, grpc.WithResolvers(resolverBuilder),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dialTier opens a plain gRPC connection to the tier's xDS listener, for xds.NewDiscovery.
func dialTier(t *testing.T, p *xdsTier) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+p.xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
