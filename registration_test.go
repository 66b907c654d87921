package kuberegistry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestEncodeRegistrationRejects(t *testing.T) {
	valid := func() *ServiceInstance {
		return &ServiceInstance{ID: "1", Name: "cart", Version: "v1", Endpoints: []string{"grpc://10.0.0.1:9000"}}
	}
	with := func(edit func(*ServiceInstance)) *ServiceInstance { s := valid(); edit(s); return s }
	tests := []struct {
		name     string
		instance *ServiceInstance
		want     string
	}{
		{"nil", nil, "instance is nil"},
		{"empty name", with(func(s *ServiceInstance) { s.Name = "" }), "it is empty"},
		{"name with a slash", with(func(s *ServiceInstance) { s.Name = "shop/cart" }), `"shop/cart"`},
		{"name too long", with(func(s *ServiceInstance) { s.Name = strings.Repeat("a", 64) }), "label value"},
		{"endpoint without scheme", with(func(s *ServiceInstance) { s.Endpoints = []string{"10.0.0.1:9000"} }), "scheme://host:port"},
		{"endpoint without port", with(func(s *ServiceInstance) { s.Endpoints = []string{"grpc://10.0.0.1"} }), "no port"},
		{"endpoint port out of range", with(func(s *ServiceInstance) { s.Endpoints = []string{"grpc://10.0.0.1:70000"} }), "1 to 65535"},
		{"endpoint with a path", with(func(s *ServiceInstance) { s.Endpoints = []string{"http://10.0.0.1:80/api"} }), "path"},
		{"endpoint unparsable", with(func(s *ServiceInstance) { s.Endpoints = []string{"http://[::1"} }), "want scheme://host:port"},
		{"one port, two schemes", with(func(s *ServiceInstance) { s.Endpoints = []string{"grpc://:9000", "http://:9000"} }), "port 9000"},
		{"metadata too large", with(func(s *ServiceInstance) { s.Metadata = map[string]string{"x": strings.Repeat("a", MaxMetadataSize)} }), "MaxMetadataSize"},
		{"version too long", with(func(s *ServiceInstance) { s.Version = strings.Repeat("v", maxIdentitySize+1) }), "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeRegistration(tt.instance)
			require.ErrorIs(t, err, ErrInvalidInstance)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestRegistrationRoundTrip writes a registration onto a pod the way the API server applies the
// patch, and checks discovery reads back exactly what was registered.
func TestRegistrationRoundTrip(t *testing.T) {
	tests := []*ServiceInstance{
		{ID: "1", Name: "cart", Version: "v1", Metadata: map[string]string{"zone": "a"}, Endpoints: []string{"grpc://10.0.0.1:9000", "http://10.0.0.1:8000"}},
		{ID: strings.Repeat("i", 100), Name: "cart", Version: "v1.2.3+build.7", Endpoints: []string{"grpcs://[fd00::1]:9443?isSecure=true"}},
		{ID: "ünïcode/id", Name: "cart", Version: "++", Endpoints: []string{"http://0.0.0.0:8000?isSecure=true&weight=3", "http://10.0.0.1:8000?isSecure=true&weight=3"}},
		{ID: "", Name: "cart", Version: "", Endpoints: nil},
	}
	for _, in := range tests {
		t.Run(in.ID+in.Version, func(t *testing.T) {
			reg, err := encodeRegistration(in)
			require.NoError(t, err)
			for k, v := range reg.labels {
				assert.Empty(t, validation.IsValidLabelValue(v), "label %s=%q", k, v)
			}
			spec := podSpec{name: "cart-0", labels: reg.labels, annotations: map[string]string{}}
			for k, v := range reg.annotations {
				if v != nil {
					spec.annotations[k] = *v
				}
			}
			got := translatePod(newPod(spec))
			require.Empty(t, got.problem())
			require.NotNil(t, got.instance)
			want := in.Clone()
			if want.ID == "" {
				want.ID = "cart-0"
			}
			ports, err := registeredPorts(in.Endpoints)
			require.NoError(t, err)
			want.Endpoints = []string{}
			for _, p := range ports {
				want.Endpoints = append(want.Endpoints, endpointURL(p.scheme, "10.0.0.1", p.port, p.query))
			}
			assert.Equal(t, want, got.instance)
		})
	}
}

func TestLabelSafe(t *testing.T) {
	for _, v := range []string{"v1.2.3", "", "a", strings.Repeat("x", 63)} {
		got, exact := labelSafe(v)
		assert.True(t, exact, v)
		assert.Equal(t, v, got)
	}
	seen := map[string]string{}
	for _, v := range []string{"v1.2.3+build.7", "v1.2.3+build.8", strings.Repeat("x", 64), strings.Repeat("x", 65), "+", "-a-", "ünï", " "} {
		got, exact := labelSafe(v)
		assert.False(t, exact, v)
		assert.Empty(t, validation.IsValidLabelValue(got), "labelSafe(%q) = %q", v, got)
		again, _ := labelSafe(v)
		assert.Equal(t, got, again, "deterministic")
		prev, dup := seen[got]
		assert.False(t, dup, "%q and %q both give %q", v, prev, got)
		seen[got] = v
	}
}

func TestProtocolFromPortName(t *testing.T) {
	tests := map[string]string{
		"grpc": "grpc", "grpc-web": "grpc-web", "grpc-web-ui": "grpc-web", "grpc-internal": "grpc", "http": "http",
		"http-metrics": "http", "https": "https", "HTTP2": "http2", "tls-x": "tls", "metrics": "", "": "", "grpcx": "", "httpx-y": "",
	}
	for name, want := range tests {
		got, ok := protocolFromPortName(name)
		assert.Equal(t, want, got, name)
		assert.Equal(t, want != "", ok, name)
	}
}
