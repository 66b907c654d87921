package kuberegistry

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

var podsResource = schema.GroupResource{Resource: "pods"}

func TestNewRejectsBadInput(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name   string
		client *fake.Clientset
		opts   []Option
		want   string
	}{
		{"nil client", nil, nil, "client is nil"},
		{"bad namespace", client, []Option{WithNamespace("Shop_1")}, `WithNamespace("Shop_1")`},
		{"bad pod name", client, []Option{WithPod("shop", "Cart!")}, `WithPod name "Cart!"`},
		{"empty pod namespace", client, []Option{WithPod("", "cart")}, `WithPod namespace ""`},
		{"nil logger", client, []Option{WithLogger(nil)}, "WithLogger(nil)"},
		{"nil option", client, []Option{nil}, "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.client == nil {
				_, err = New(nil, tt.opts...)
			} else {
				_, err = New(tt.client, tt.opts...)
			}
			require.ErrorIs(t, err, ErrInvalidOption)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestPodIdentityAndDefaultNamespace(t *testing.T) {
	env := func(vars map[string]string, nsFile string) environment {
		return environment{
			getenv: func(k string) string { return vars[k] },
			readFile: func(string) ([]byte, error) {
				if nsFile == "" {
					return nil, errors.New("no such file")
				}
				return []byte(nsFile), nil
			},
		}
	}
	tests := []struct {
		name          string
		opts          []Option
		wantPod       podIdentity
		wantNamespace string
	}{
		{"downward API", []Option{withEnvironment(env(map[string]string{"POD_NAME": " cart-1\n", "POD_NAMESPACE": "shop\n"}, ""))},
			podIdentity{"shop", "cart-1"}, "shop"},
		{"service account file and hostname", []Option{withEnvironment(env(map[string]string{"HOSTNAME": "cart-2"}, "shop\n"))},
			podIdentity{"shop", "cart-2"}, "shop"},
		{"outside a pod", []Option{withEnvironment(env(map[string]string{"HOSTNAME": "laptop"}, ""))},
			podIdentity{}, "default"},
		{"WithPod wins", []Option{WithPod("a", "b"), withEnvironment(env(map[string]string{"POD_NAME": "x", "POD_NAMESPACE": "y"}, ""))},
			podIdentity{"a", "b"}, "a"},
		{"WithNamespace sets the scope only", []Option{WithNamespace(""), withEnvironment(env(map[string]string{"POD_NAME": "x", "POD_NAMESPACE": "y"}, ""))},
			podIdentity{"y", "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(fake.NewClientset(), tt.opts...)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPod, r.pod)
			assert.Equal(t, []string{tt.wantNamespace}, r.namespaces)
		})
	}
}

func TestNotStartedAndClosed(t *testing.T) {
	r, err := New(fake.NewClientset(), WithPod(testNamespace, "self"))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = r.GetService(ctx, "cart")
	require.ErrorIs(t, err, ErrNotStarted)
	_, err = r.Watch(ctx, "cart")
	require.ErrorIs(t, err, ErrNotStarted)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")
	require.ErrorIs(t, r.Start(ctx), ErrClosed)
	_, err = r.GetService(ctx, "cart")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, r.Register(ctx, &ServiceInstance{Name: "cart"}), ErrClosed)
}

func TestStartTwice(t *testing.T) {
	f := newFixture(t)
	require.ErrorIs(t, f.reg.Start(context.Background()), ErrAlreadyStarted)
}

func TestGetServiceServesReadyPodsInStableOrder(t *testing.T) {
	spec := func(name, ip string, edit func(*podSpec)) *corev1.Pod {
		s := registered("cart", `{"9000":"grpc"}`)
		s.name, s.ips = name, []string{ip}
		if edit != nil {
			edit(&s)
		}
		return newPod(s)
	}
	f := newFixture(t,
		spec("cart-c", "10.0.0.3", nil),
		spec("cart-a", "10.0.0.1", nil),
		spec("cart-b", "10.0.0.2", func(s *podSpec) { s.notReady = true }),
		spec("cart-d", "10.0.0.4", func(s *podSpec) { s.terminating = true }),
		spec("cart-e", "10.0.0.5", func(s *podSpec) { s.phase = corev1.PodSucceeded }),
		newPod(podSpec{name: "other", service: "other"}),
	)
	got, err := f.reg.GetService(context.Background(), "cart")
	require.NoError(t, err)
	require.Len(t, got, 2, describe(got))
	assert.Equal(t, []string{"grpc://10.0.0.1:9000"}, got[0].Endpoints)
	assert.Equal(t, []string{"grpc://10.0.0.3:9000"}, got[1].Endpoints)

	none, err := f.reg.GetService(context.Background(), "nobody")
	require.NoError(t, err)
	assert.Empty(t, none)
	_, err = f.reg.GetService(context.Background(), "not/a label")
	require.ErrorIs(t, err, ErrInvalidName)
}

func TestKratosDeploymentPodIsDiscovered(t *testing.T) {
	f := newFixture(t, kratosFixturePod())
	got := f.eventually(t, "nginx", 1)
	assert.Equal(t, "56991810-c77f-4a95-8190-393efa9c1a61", got[0].ID)
	assert.Equal(t, []string{"http://10.0.0.5:80"}, got[0].Endpoints)
}

// countPatches counts the patch requests the fake clientset receives.
func countPatches(client *fake.Clientset) *atomic.Int32 {
	var n atomic.Int32
	client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		return false, nil, nil
	})
	return &n
}

func TestRegisterDeregisterRoundTrip(t *testing.T) {
	f := newFixture(t)
	patches := countPatches(f.client)
	ctx := context.Background()
	in := &ServiceInstance{
		ID: strings.Repeat("x", 100), Name: "cart", Version: "v1.2.3+build.7",
		Metadata:  map[string]string{"zone": "a"},
		Endpoints: []string{"grpc://10.9.9.9:9000?isSecure=true", "http://10.9.9.9:8000"},
	}
	require.NoError(t, f.reg.Register(ctx, in))
	assert.Equal(t, int32(1), patches.Load(), "Register makes exactly one request")

	// Read-your-writes: no waiting needed after Register returns.
	got, err := f.reg.GetService(ctx, "cart")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, &ServiceInstance{
		ID: in.ID, Name: "cart", Version: in.Version, Metadata: in.Metadata,
		Endpoints: []string{"http://10.9.9.9:8000", "grpc://10.9.9.9:9000?isSecure=true"},
	}, got[0])

	require.NoError(t, f.reg.Deregister(ctx, in))
	got, err = f.reg.GetService(ctx, "cart")
	require.NoError(t, err)
	assert.Empty(t, got, "the pod leaves discovery as Deregister returns")

	pod, err := f.client.CoreV1().Pods(testNamespace).Get(ctx, "self", metav1.GetOptions{})
	require.NoError(t, err)
	for _, k := range []string{LabelsKeyServiceID, LabelsKeyServiceName, LabelsKeyServiceVersion} {
		assert.NotContains(t, pod.Labels, k)
	}
	assert.Empty(t, pod.Annotations)

	require.NoError(t, f.reg.Deregister(ctx, in), "Deregister is idempotent")
}

func TestRegisterValidatesBeforeAnyRequest(t *testing.T) {
	client := fake.NewClientset()
	patches := countPatches(client)
	r, err := New(client, WithPod(testNamespace, "self"))
	require.NoError(t, err)
	defer r.Close()
	err = r.Register(context.Background(), &ServiceInstance{Name: "cart", Endpoints: []string{"grpc://x"}})
	require.ErrorIs(t, err, ErrInvalidInstance)
	assert.Zero(t, patches.Load())

	noPod, err := New(client, withEnvironment(environment{getenv: func(string) string { return "" }, readFile: func(string) ([]byte, error) { return nil, errors.New("none") }}))
	require.NoError(t, err)
	err = noPod.Register(context.Background(), &ServiceInstance{Name: "cart"})
	require.ErrorIs(t, err, ErrNoPodIdentity)
	assert.Contains(t, err.Error(), "Downward API")
	assert.Zero(t, patches.Load())
}

func TestRegisterRetriesTransientErrors(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	f.client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		switch calls.Add(1) {
		case 1:
			return true, nil, apierrors.NewConflict(podsResource, "self", errors.New("changed"))
		case 2:
			return true, nil, apierrors.NewTooManyRequests("slow down", 0)
		case 3:
			return true, nil, apierrors.NewInternalError(errors.New("etcd hiccup"))
		}
		return false, nil, nil
	})
	require.NoError(t, f.reg.Register(context.Background(), &ServiceInstance{Name: "cart", Endpoints: []string{"grpc://:9000"}}))
	assert.Equal(t, int32(4), calls.Load())
	f.eventually(t, "cart", 1)
}

func TestRegisterErrorsNameTheFix(t *testing.T) {
	f := newFixture(t)
	var fail error
	f.client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, fail
	})
	in := &ServiceInstance{Name: "cart"}

	fail = apierrors.NewForbidden(podsResource, "self", errors.New("RBAC: access denied"))
	err := f.reg.Register(context.Background(), in)
	var perm *PermissionError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, "patch", perm.Verb)
	assert.Contains(t, err.Error(), `grant verb "patch" on resource "pods"`)
	assert.Contains(t, err.Error(), `namespace "shop"`)

	fail = apierrors.NewNotFound(podsResource, "self")
	err = f.reg.Register(context.Background(), in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "POD_NAME")
	require.NoError(t, f.reg.Deregister(context.Background(), in), "deregistering a deleted pod succeeds")

	fail = apierrors.NewServiceUnavailable("down")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = f.reg.Register(ctx, in)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "down", "the last error is reported")
}

func TestStartFailsFastWhenForbidden(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(podsResource, "", errors.New("cannot list pods at the cluster scope"))
	})
	r, err := New(client, WithNamespace(""), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = r.Start(ctx)
	var perm *PermissionError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, "list", perm.Verb)
	assert.Contains(t, err.Error(), "all namespaces")
	require.NoError(t, ctx.Err(), "Start did not wait for its context")
}

func TestStartHonoursContextWhileUnreachable(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	r, err := New(client, WithLogger(discardLogger()))
	require.NoError(t, err)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = r.Start(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "connection refused")
	_, err = r.GetService(context.Background(), "cart")
	require.ErrorIs(t, err, ErrNotStarted, "a failed Start leaves the registry unstarted")
}

func TestMalformedPodIsSkippedAndLoggedOnce(t *testing.T) {
	bad := registered("cart", `{"99999":"grpc"}`)
	bad.name = "cart-bad"
	good := registered("cart", `{"9000":"grpc"}`)
	good.name = "cart-good"
	f := newFixture(t, newPod(bad), newPod(good))
	f.eventually(t, "cart", 1)

	// Churn on the bad pod does not log again.
	pod := newPod(bad)
	for i := range 3 {
		pod.Labels["churn"] = strings.Repeat("x", i+1)
		f.update(t, pod)
	}
	require.Eventually(t, func() bool {
		got, _ := f.client.CoreV1().Pods(testNamespace).Get(context.Background(), "cart-bad", metav1.GetOptions{})
		return got.Labels["churn"] == "xxx"
	}, 5*time.Second, time.Millisecond)
	// An update to the good pod after the bad pod's updates proves the handler has seen them.
	goodPod := newPod(good)
	goodPod.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.2"}}
	f.update(t, goodPod)
	require.Eventually(t, func() bool {
		got, _ := f.reg.GetService(context.Background(), "cart")
		return len(got) == 1 && got[0].Endpoints[0] == "grpc://10.0.0.2:9000"
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, strings.Count(f.logs.String(), "pod=cart-bad"), f.logs.String())
	assert.Contains(t, f.logs.String(), "99999")
}

func TestNewForConfig(t *testing.T) {
	_, err := NewForConfig(nil)
	require.ErrorIs(t, err, ErrInvalidOption)
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	r, err := NewForConfig(cfg, WithPod(testNamespace, "self"))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Empty(t, cfg.ContentType, "the caller's config is not changed")
}
