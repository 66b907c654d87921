package kuberegistry

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestExplainPods(t *testing.T) {
	pod := func(name string, edit func(*podSpec)) corev1.Pod {
		s := registered("cart", `{"9000":"grpc"}`)
		s.name = name
		if edit != nil {
			edit(&s)
		}
		p := newPod(s)
		return *p
	}
	r, err := New(fake.NewClientset(), WithNamespace(testNamespace), WithLabelSelector("track!=canary"), WithLogger(discardLogger()))
	require.NoError(t, err)
	defer r.Close()
	elsewhere := pod("cart-x", nil)
	elsewhere.Namespace = "billing"
	verdicts := r.ExplainPods([]corev1.Pod{
		pod("cart-ready", nil),
		pod("cart-not-ready", func(s *podSpec) { s.notReady = true }),
		pod("cart-leaving", func(s *podSpec) { s.terminating = true }),
		pod("cart-pending", func(s *podSpec) { s.phase = corev1.PodPending }),
		pod("cart-broken", func(s *podSpec) { s.annotations[AnnotationsKeyProtocolMap] = `{"x":"grpc"}` }),
		pod("cart-canary", func(s *podSpec) { s.labels["track"] = "canary" }),
		*newPod(podSpec{name: "plain", labels: map[string]string{"app": "x"}}),
		elsewhere,
	})
	got := map[string]string{}
	for _, v := range verdicts {
		got[v.Name] = fmt.Sprintf("%v %s", v.Serving, v.State)
	}
	assert.Equal(t, map[string]string{
		"cart-ready":     "true ready",
		"cart-not-ready": "false not-ready",
		"cart-leaving":   "false serving-terminating",
		"cart-pending":   "false not-running",
		"cart-broken":    "false malformed",
		"cart-canary":    "false excluded",
		"plain":          "false unregistered",
		"cart-x":         "false out-of-scope",
	}, got)
	assert.Equal(t, "not served: other pods of the service are ready", verdicts[2].Reason)
	assert.Contains(t, verdicts[4].Reason, "kratos-service-protocols")

	// Without a ready pod, the terminating one is the fallback.
	alone := r.ExplainPods([]corev1.Pod{pod("cart-leaving", func(s *podSpec) { s.terminating = true })})
	assert.True(t, alone[0].Serving)
	assert.Equal(t, "served as the fallback: no pod of the service is ready", alone[0].Reason)
}

// ExplainPods says what GetService serves: the same pods, on a running registry.
func TestExplainPodsAgreesWithGetService(t *testing.T) {
	var pods []corev1.Pod
	for i := range 12 {
		s := registered(fmt.Sprintf("s%d", i%2), `{"9000":"grpc"}`)
		s.name, s.ips = fmt.Sprintf("p%d", i), []string{fmt.Sprintf("10.0.1.%d", i+1)}
		s.notReady, s.terminating = i%3 == 0, i%4 == 0
		pods = append(pods, *newPod(s))
	}
	f := newFixture(t)
	for i := range pods {
		f.create(t, &pods[i])
	}
	for _, service := range []string{"s0", "s1"} {
		want := []string{}
		for _, v := range f.reg.ExplainPods(pods) {
			if v.Service == service && v.Serving {
				want = append(want, v.Instance.Endpoints...)
			}
		}
		slices.Sort(want)
		require.Eventually(t, func() bool {
			got, _ := f.reg.GetService(context.Background(), service)
			eps := endpointsOf(got)
			slices.Sort(eps)
			return slices.Equal(eps, want)
		}, 5*time.Second, time.Millisecond, "service %s: ExplainPods says %v", service, want)
	}
}
