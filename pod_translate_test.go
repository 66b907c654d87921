package kuberegistry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// kratosFixturePod is a pod created from the go-kratos Deployment example (shared/fixtures), labelled
// and annotated by hand, once running and ready with IP 10.0.0.5.
func kratosFixturePod() *corev1.Pod {
	return newPod(podSpec{
		name:    "nginx-7c5ddbdf54-abcde",
		service: "nginx",
		labels: map[string]string{
			"app":                   "nginx",
			LabelsKeyServiceID:      "56991810-c77f-4a95-8190-393efa9c1a61",
			LabelsKeyServiceVersion: "v3.5.0",
		},
		annotations: map[string]string{
			AnnotationsKeyProtocolMap: "{\"80\": \"http\"}\n",
			AnnotationsKeyMetadata:    "{\"region\": \"sh\", \"zone\": \"sh001\", \"cluster\": \"pd\"}\n",
		},
		ports: []corev1.ContainerPort{{ContainerPort: 80}},
		ips:   []string{"10.0.0.5"},
	})
}

func TestTranslatePodKratosDeployment(t *testing.T) {
	got := translatePod(kratosFixturePod())
	require.Empty(t, got.problem())
	assert.Equal(t, podReady, got.state)
	assert.Equal(t, &ServiceInstance{
		ID:        "56991810-c77f-4a95-8190-393efa9c1a61",
		Name:      "nginx",
		Version:   "v3.5.0",
		Metadata:  map[string]string{"region": "sh", "zone": "sh001", "cluster": "pd"},
		Endpoints: []string{"http://10.0.0.5:80"},
	}, got.instance)
}

func TestTranslatePod(t *testing.T) {
	with := func(spec podSpec, edit func(*podSpec)) podSpec { edit(&spec); return spec }
	base := registered("cart", `{"9000":"grpc","8000":"http"}`)
	tests := []struct {
		name      string
		spec      podSpec
		state     podState
		endpoints []string // when the pod yields an instance
		problem   string   // a fragment of the logged reason, when malformed
	}{
		{name: "ready", spec: base, state: podReady,
			endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		{name: "not ready", spec: with(base, func(s *podSpec) { s.notReady = true }), state: podNotReady,
			endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		{name: "terminating, still ready", spec: with(base, func(s *podSpec) { s.terminating = true }), state: podServingTerminating,
			endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		{name: "terminating", spec: with(base, func(s *podSpec) { s.terminating = true; s.notReady = true }), state: podTerminating,
			endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000"}},
		{name: "secure by scheme, port and port name", spec: podSpec{service: "cart",
			annotations: map[string]string{AnnotationsKeyProtocolMap: `{"443":"http","8443":"grpc","9443":"grpcs","7000":"http","7001":"http"}`, AnnotationsKeyEndpointParams: `{"7001":"isSecure=false"}`},
			ports:       []corev1.ContainerPort{{Name: "tls-admin", ContainerPort: 7000}}}, state: podReady,
			endpoints: []string{"http://10.0.0.1:443?isSecure=true", "http://10.0.0.1:7000?isSecure=true", "http://10.0.0.1:7001?isSecure=false",
				"grpc://10.0.0.1:8443?isSecure=true", "grpcs://10.0.0.1:9443?isSecure=true"}},
		{name: "pending without IP", spec: with(base, func(s *podSpec) { s.phase = corev1.PodPending; s.notReady = true; s.ips = []string{} }), state: podUnusable},
		{name: "succeeded", spec: with(base, func(s *podSpec) { s.phase = corev1.PodSucceeded }), state: podUnusable},
		{name: "failed", spec: with(base, func(s *podSpec) { s.phase = corev1.PodFailed; s.notReady = true }), state: podUnusable},
		{name: "ready without IP", spec: with(base, func(s *podSpec) { s.ips = []string{} }), state: podUnusable, problem: "no IP"},
		{name: "invalid IP", spec: with(base, func(s *podSpec) { s.ips = []string{"10.0.0.300"} }), state: podUnusable, problem: "not an IP"},
		{name: "dual stack", spec: with(base, func(s *podSpec) { s.ips = []string{"10.0.0.1", "fd00::1"} }), state: podReady,
			endpoints: []string{"http://10.0.0.1:8000", "http://[fd00::1]:8000", "grpc://10.0.0.1:9000", "grpc://[fd00::1]:9000"}},
		{name: "IPv6 only", spec: with(base, func(s *podSpec) { s.ips = []string{"fd00::0:1"} }), state: podReady,
			endpoints: []string{"http://[fd00::1]:8000", "grpc://[fd00::1]:9000"}},
		{name: "scheme case folded", spec: registered("cart", `{"9000":"GRPC"}`), state: podReady,
			endpoints: []string{"grpc://10.0.0.1:9000"}},
		{name: "empty protocols", spec: registered("cart", `{}`), state: podReady, endpoints: []string{}},
		{name: "query params", spec: with(base, func(s *podSpec) {
			s.annotations = map[string]string{AnnotationsKeyProtocolMap: `{"9000":"grpc","8000":"http"}`, AnnotationsKeyEndpointParams: `{"9000":"isSecure=true","7":"x=1"}`}
		}), state: podReady, endpoints: []string{"http://10.0.0.1:8000", "grpc://10.0.0.1:9000?isSecure=true"}},
		{name: "named ports without annotation", spec: podSpec{service: "cart", ports: []corev1.ContainerPort{
			{Name: "grpc", ContainerPort: 9000}, {Name: "http-metrics", ContainerPort: 9090}, {Name: "grpc-web", ContainerPort: 8080},
			{ContainerPort: 7000}, {Name: "metrics", ContainerPort: 7001}, {Name: "HTTPS", ContainerPort: 443},
		}}, state: podReady, endpoints: []string{"https://10.0.0.1:443?isSecure=true", "grpc-web://10.0.0.1:8080", "grpc://10.0.0.1:9000", "http://10.0.0.1:9090"}},
		{name: "unnamed port only", spec: podSpec{service: "cart", ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}},
			state: podReady, endpoints: []string{}},
		{name: "metadata not JSON", spec: with(base, func(s *podSpec) { s.annotations = map[string]string{AnnotationsKeyMetadata: `{region: eu`} }),
			state: podUnusable, problem: AnnotationsKeyMetadata},
		{name: "metadata with a number", spec: with(base, func(s *podSpec) { s.annotations = map[string]string{AnnotationsKeyMetadata: `{"weight": 3}`} }),
			state: podUnusable, problem: "JSON object of strings"},
		{name: "metadata too large", spec: with(base, func(s *podSpec) {
			s.annotations = map[string]string{AnnotationsKeyMetadata: `{"x":"` + strings.Repeat("a", MaxMetadataSize) + `"}`}
		}), state: podUnusable, problem: "bytes"},
		{name: "protocols not an object", spec: registered("cart", `["grpc"]`), state: podUnusable, problem: AnnotationsKeyProtocolMap},
		{name: "port out of range", spec: registered("cart", `{"99999":"grpc"}`), state: podUnusable, problem: "99999"},
		{name: "port zero", spec: registered("cart", `{"0":"grpc"}`), state: podUnusable, problem: `"0"`},
		{name: "port not a number", spec: registered("cart", `{"grpc":"9000"}`), state: podUnusable, problem: "not a number"},
		{name: "scheme invalid", spec: registered("cart", `{"9000":"g rpc"}`), state: podUnusable, problem: "not a URL scheme"},
		{name: "params not a query", spec: with(base, func(s *podSpec) {
			s.annotations = map[string]string{AnnotationsKeyProtocolMap: `{"9000":"grpc"}`, AnnotationsKeyEndpointParams: `{"9000":"a=%zz"}`}
		}), state: podUnusable, problem: "not a URL query"},
		{name: "bad annotation on a pod that is not running", spec: with(registered("cart", `{`), func(s *podSpec) { s.phase = corev1.PodPending; s.ips = []string{} }),
			state: podUnusable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.name = "cart-1"
			got := translatePod(newPod(tt.spec))
			assert.Equal(t, "cart", got.service())
			assert.Equal(t, tt.state, got.state)
			if tt.problem != "" {
				assert.Contains(t, got.problem(), tt.problem)
				assert.Nil(t, got.instance)
				return
			}
			assert.Empty(t, got.problem())
			if tt.endpoints == nil {
				assert.Nil(t, got.instance)
				return
			}
			require.NotNil(t, got.instance)
			assert.Equal(t, tt.endpoints, got.instance.Endpoints)
		})
	}
}

func TestTranslatePodIdentity(t *testing.T) {
	t.Run("exact values from annotations win over labels", func(t *testing.T) {
		spec := registered("cart", `{"9000":"grpc"}`)
		spec.annotations[AnnotationsKeyServiceVersion] = "v1.2.3+build.7"
		spec.annotations[AnnotationsKeyServiceID] = strings.Repeat("i", 100)
		got := translatePod(newPod(spec)).instance
		require.NotNil(t, got)
		assert.Equal(t, "v1.2.3+build.7", got.Version)
		assert.Equal(t, strings.Repeat("i", 100), got.ID)
	})
	t.Run("pod name is the ID when none is registered", func(t *testing.T) {
		got := translatePod(newPod(podSpec{name: "cart-7", service: "cart"})).instance
		require.NotNil(t, got)
		assert.Equal(t, "cart-7", got.ID)
	})
	t.Run("null metadata, as go-kratos writes it", func(t *testing.T) {
		spec := registered("cart", `{"9000":"grpc"}`)
		spec.annotations[AnnotationsKeyMetadata] = "null"
		got := translatePod(newPod(spec))
		require.Empty(t, got.problem())
		assert.Nil(t, got.instance.Metadata)
	})
	t.Run("unregistered pod", func(t *testing.T) {
		got := translatePod(newPod(podSpec{name: "x"}))
		assert.Equal(t, podInstance{}, got)
	})
}
