package kratos

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/registry"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/kuberegistrytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNewRejectsNoBackend(t *testing.T) {
	var typedNil *kuberegistry.Registry
	for _, b := range []Backend{nil, typedNil} {
		r, err := New(b)
		assert.Nil(t, r)
		assert.ErrorIs(t, err, ErrNilBackend)
	}
}

// newAdapter returns the adapter over a started registry in pod shop/self, on a fake clientset.
func newAdapter(t *testing.T) (*Registry, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	reg := kuberegistrytest.NewRegistry(t, client, "shop", "self")
	r, err := New(reg)
	require.NoError(t, err)
	return r, client
}

func TestRegisterAndDiscoverThroughKratos(t *testing.T) {
	r, client := newAdapter(t)
	ctx := context.Background()
	in := &registry.ServiceInstance{
		ID: "self-1", Name: "greeter", Version: "v1.2.3+build.7",
		Metadata: map[string]string{"zone": "eu-1"},
		// What kratos.App registers: its servers' endpoints, with the host they listen on.
		Endpoints: []string{"grpc://0.0.0.0:9000", "http://0.0.0.0:8000?isSecure=true"},
	}
	require.NoError(t, r.Register(ctx, in))

	got, err := r.GetService(ctx, "greeter")
	require.NoError(t, err)
	self := podIP(t, client, "self")
	want := &registry.ServiceInstance{
		ID: "self-1", Name: "greeter", Version: "v1.2.3+build.7",
		Metadata:  map[string]string{"zone": "eu-1"},
		Endpoints: []string{"http://" + self + ":8000?isSecure=true", "grpc://" + self + ":9000"},
	}
	assert.Equal(t, []*registry.ServiceInstance{want}, got, "discovery serves the pod's IP, with the registered ports, schemes and query")

	require.NoError(t, r.Deregister(ctx, in))
	got, err = r.GetService(ctx, "greeter")
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, r.Deregister(ctx, nil), "Deregister is idempotent and needs no instance")
}

func TestRegisterPassesErrorsThrough(t *testing.T) {
	r, _ := newAdapter(t)
	err := r.Register(context.Background(), nil)
	assert.ErrorIs(t, err, kuberegistry.ErrInvalidInstance)
	err = r.Register(context.Background(), &registry.ServiceInstance{Name: "shop/greeter"})
	assert.ErrorIs(t, err, kuberegistry.ErrInvalidInstance)
	_, err = r.Watch(context.Background(), "shop/greeter")
	assert.ErrorIs(t, err, kuberegistry.ErrInvalidName)
}

func TestGetServiceReturnsCopies(t *testing.T) {
	r, client := newAdapter(t)
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{
		ID: "greeter-0", Name: "greeter", Metadata: map[string]string{"zone": "a"},
		Endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"},
	})
	kuberegistrytest.WaitForInstances(t, r.backend, "greeter", "greeter-0")
	first, err := r.GetService(context.Background(), "greeter")
	require.NoError(t, err)
	first[0].Metadata["zone"] = "changed"
	first[0].Endpoints[0] = "changed"
	again, err := r.GetService(context.Background(), "greeter")
	require.NoError(t, err)
	assert.Equal(t, "a", again[0].Metadata["zone"])
	assert.Equal(t, []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}, again[0].Endpoints)
}

func TestWatcher(t *testing.T) {
	r, client := newAdapter(t)
	w, err := r.Watch(context.Background(), "greeter")
	require.NoError(t, err)
	defer w.Stop()

	got, err := w.Next()
	require.NoError(t, err)
	assert.Empty(t, got, "the first Next returns the current set, empty here")

	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{ID: "greeter-0", Name: "greeter", Endpoints: []string{"grpc://10.0.0.1:9000"}})
	got, err = w.Next()
	require.NoError(t, err)
	assert.Equal(t, []*registry.ServiceInstance{{ID: "greeter-0", Name: "greeter", Endpoints: []string{"grpc://10.0.0.1:9000"}}}, got)

	kuberegistrytest.SetReady(t, client, "shop", "greeter-0", false)
	got, err = w.Next()
	require.NoError(t, err)
	assert.Empty(t, got, "an empty set is reported: the service has no ready instance")
}

func TestWatcherEndsWithContextCanceled(t *testing.T) {
	tests := []struct {
		name string
		end  func(w registry.Watcher, cancel context.CancelFunc, reg *kuberegistry.Registry)
	}{
		{"Stop", func(w registry.Watcher, _ context.CancelFunc, _ *kuberegistry.Registry) { _ = w.Stop() }},
		{"the Watch context ends", func(_ registry.Watcher, cancel context.CancelFunc, _ *kuberegistry.Registry) { cancel() }},
		{"the registry is closed", func(_ registry.Watcher, _ context.CancelFunc, reg *kuberegistry.Registry) { _ = reg.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := kuberegistrytest.NewRegistry(t, fake.NewClientset(), "shop", "self")
			r, err := New(reg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := r.Watch(ctx, "greeter")
			require.NoError(t, err)
			defer w.Stop()
			_, err = w.Next()
			require.NoError(t, err)

			errs := make(chan error, 1)
			go func() {
				_, err := w.Next() // blocks: nothing changes
				errs <- err
			}()
			tt.end(w, cancel, reg)
			select {
			case err := <-errs:
				assert.ErrorIs(t, err, context.Canceled)
			case <-time.After(10 * time.Second):
				t.Fatal("a blocked Next did not return")
			}
			_, err = w.Next()
			assert.ErrorIs(t, err, context.Canceled, "Next after the end")
			assert.NoError(t, w.Stop(), "Stop is idempotent")
		})
	}
}

// stubWatcher is a backend watcher that does not follow kuberegistry's contract: after Stop,
// Next returns a plain error.
type stubWatcher struct {
	entered chan struct{} // closed when Next is called
	stopped chan struct{}
	once    sync.Once
}

func (s *stubWatcher) Next() ([]*kuberegistry.ServiceInstance, error) {
	close(s.entered)
	<-s.stopped
	return nil, errors.New("connection lost")
}

func (s *stubWatcher) Stop() error {
	s.once.Do(func() { close(s.stopped) })
	return nil
}

func TestWatcherGuaranteesCanceledAfterStop(t *testing.T) {
	stub := &stubWatcher{entered: make(chan struct{}), stopped: make(chan struct{})}
	w := newWatcher(stub)
	errs := make(chan error, 1)
	go func() {
		_, err := w.Next()
		errs <- err
	}()
	<-stub.entered
	require.NoError(t, w.Stop())
	err := <-errs
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "connection lost", "the backend's error is kept")
}

// go-kratos's HTTP client starts a resolver goroutine that loops forever unless Next fails with
// context.Canceled; closing the client must end it.
func TestKratosHTTPClientCloseEndsItsResolver(t *testing.T) {
	r, client := newAdapter(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"message":"hello"}`))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	kuberegistrytest.ReadyPod(t, client, "shop", "greeter-0", &kuberegistry.ServiceInstance{
		Name: "greeter", Endpoints: []string{"http://127.0.0.1:" + strconv.Itoa(port)},
	})
	kuberegistrytest.WaitForInstances(t, r.backend, "greeter", "greeter-0")

	before := goleak.IgnoreCurrent()
	transport := &http.Transport{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := khttp.NewClient(ctx, khttp.WithEndpoint("discovery:///greeter"), khttp.WithDiscovery(r),
		khttp.WithBlock(), khttp.WithTransport(transport))
	require.NoError(t, err)
	var reply struct{ Message string }
	require.NoError(t, c.Invoke(ctx, http.MethodGet, "/hello", nil, &reply))
	assert.Equal(t, "hello", reply.Message)

	require.NoError(t, c.Close())
	transport.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}

// setsWatcher is a backend watcher that returns prepared sets, one per Next.
type setsWatcher struct {
	sets [][]*kuberegistry.ServiceInstance
}

func (s *setsWatcher) Next() ([]*kuberegistry.ServiceInstance, error) {
	next := s.sets[0]
	s.sets = s.sets[1:]
	return next, nil
}

func (s *setsWatcher) Stop() error { return nil }

// An update of a large service copies only the instances that changed: the others are the copies
// the previous Next returned.
func TestWatcherCopiesOnlyWhatChanged(t *testing.T) {
	a := &kuberegistry.ServiceInstance{ID: "a", Name: "greeter", Endpoints: []string{"grpc://10.0.0.1:9000"}}
	b := &kuberegistry.ServiceInstance{ID: "b", Name: "greeter", Endpoints: []string{"grpc://10.0.0.2:9000"}}
	b2 := &kuberegistry.ServiceInstance{ID: "b", Name: "greeter", Version: "v2", Endpoints: []string{"grpc://10.0.0.2:9000"}}
	w := newWatcher(&setsWatcher{sets: [][]*kuberegistry.ServiceInstance{{a, b}, {a, b2}, nil}})
	first, err := w.Next()
	require.NoError(t, err)
	second, err := w.Next()
	require.NoError(t, err)
	assert.Same(t, first[0], second[0], "a did not change: same copy")
	assert.NotSame(t, first[1], second[1])
	assert.Equal(t, "v2", second[1].Version)
	assert.Equal(t, toKratos(a), first[0])
	third, err := w.Next()
	require.NoError(t, err)
	assert.Nil(t, third)
}
