package integration

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cuttableProxy forwards TCP from a loopback port to the API server, and can cut the line: it
// then closes every connection and refuses new ones, as a network partition that the client sees
// (a connection reset) would. Only the clients that go through it are cut off.
type cuttableProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex // guards cut and conns
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup // the accept loop and the copying goroutines
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cuttableProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{in, out}, {out, in}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(pair[0], pair[1])
				_ = pair[0].Close()
				_ = pair[1].Close()
			}()
		}
	}
}

// setCut cuts the line (closing every connection) or restores it.
func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// through returns cfg pointed at the proxy.
func (p *cuttableProxy) through(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = "https://" + p.ln.Addr().String()
	return c
}

func apiServerAddress(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(adminConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// Health on the real API server: a quiet namespace is not stale; cut off from the API server,
// the registry keeps serving its last set and Check reports the outage once maxStale has passed;
// back, Check is nil again and every watcher has the changes made meanwhile.
func TestCheckFollowsAnOutage(t *testing.T) {
	ns := newNamespace(t)
	readyPod(t, ns, "cart-0", "cart", "10.40.0.1")
	proxy := newCuttableProxy(t, apiServerAddress(t))
	reg, err := kuberegistry.NewForConfig(proxy.through(adminConfig), kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	w, err := reg.Watch(t.Context(), "cart")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)

	const maxStale = time.Second
	time.Sleep(2 * maxStale) // quiet, and healthy: no event for longer than maxStale
	if err := reg.Check(maxStale); err != nil {
		t.Fatalf("a quiet namespace was reported stale: %v", err)
	}

	proxy.setCut(true)
	cut := time.Now()
	readyPod(t, ns, "cart-1", "cart", "10.40.0.2")                       // made during the outage,
	setPodStatus(t, ns, "cart-0", corev1.PodRunning, false, "10.40.0.1") // through another connection
	// client-go retries a request whose connection is refused or reset ten times, a second apart,
	// before the informer sees the failure: the documented bound is maxStale plus about 10 s.
	const bound = 15 * time.Second
	var stale error
	for stale = reg.Check(maxStale); stale == nil && time.Since(cut) < 2*bound; stale = reg.Check(maxStale) {
		time.Sleep(50 * time.Millisecond)
	}
	noticed := time.Since(cut)
	if stale == nil || noticed > maxStale+bound {
		t.Fatalf("Check = %v %v after the cut; want ErrStale within maxStale + %v; status %+v", stale, noticed, bound, reg.Status())
	}
	if !errors.Is(stale, kuberegistry.ErrStale) {
		t.Fatalf("Check = %v, want ErrStale", stale)
	}
	if got, _ := reg.GetService(t.Context(), "cart"); endpoints(got) != "grpc://10.40.0.1:9000" {
		t.Errorf("during the outage GetService = %q, want the last known set", endpoints(got))
	}
	t.Logf("Check said, %v after the cut (maxStale %v): %v", noticed.Round(time.Millisecond), maxStale, stale)
	if s := reg.Status().Informers[0]; s.Watching || s.FailingSince.IsZero() || s.LastError == nil {
		t.Errorf("Status during the outage: %+v", s)
	}

	proxy.setCut(false)
	back := time.Now()
	var again error
	deadline := time.Now().Add(time.Minute) // client-go's reflector backs off up to 30 s between relists
	for again = reg.Check(maxStale); again != nil && time.Now().Before(deadline); again = reg.Check(maxStale) {
		time.Sleep(50 * time.Millisecond)
	}
	if again != nil {
		t.Fatalf("still stale a minute after the line came back: %v", again)
	}
	t.Logf("Check was nil again %v after the line came back", time.Since(back).Round(time.Millisecond))
	waitForSet(t, w, "grpc://10.40.0.2:9000", "the watcher after the outage")
}

// RBAC revoked while running: once the watch has to be opened again, Check says which permission
// is missing.
func TestCheckNamesARevokedPermission(t *testing.T) {
	ns := newNamespace(t)
	readyPod(t, ns, "cart-0", "cart", "10.40.1.1")
	grant(t, ns, "health-reader", exampleRole(t, "discovery"))
	user, err := testEnv.AddUser(envtest.User{Name: "health-reader"}, restBase())
	if err != nil {
		t.Fatal(err)
	}
	client := newClientset(t, user.Config())
	eventually(t, func() error {
		_, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		return err
	})
	proxy := newCuttableProxy(t, apiServerAddress(t))
	reg, err := kuberegistry.NewForConfig(proxy.through(user.Config()), kuberegistry.WithNamespace(ns), kuberegistry.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := adminClient(t).RbacV1().RoleBindings(ns).Delete(t.Context(), "kuberegistry-discovery-health-reader", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error { // the authorizer sees the change
		if _, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{}); err == nil {
			return errors.New("still allowed")
		}
		return nil
	})
	// An open watch keeps the authorization it started with, until it ends (client-go's watches
	// last 5 to 10 minutes): end it.
	proxy.setCut(true)
	proxy.setCut(false)
	var perm *kuberegistry.PermissionError
	eventually(t, func() error {
		err := reg.Check(0)
		if !errors.As(err, &perm) {
			return errors.New("no PermissionError yet: " + errString(err))
		}
		return nil
	})
	if perm.Verb != "list" || perm.Resource != "pods" || perm.Namespace != ns {
		t.Errorf("PermissionError %+v, want list pods in %s", perm, ns)
	}
	t.Logf("Check said: %v", reg.Check(0))
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
