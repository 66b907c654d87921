package grpc

import (
	"context"
	"net/url"
	"testing"

	"github.com/kuberegistry/kuberegistry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/resolver"
)

func TestNewBuilder(t *testing.T) {
	var typedNil *kuberegistry.Registry
	tests := []struct {
		name        string
		d           kuberegistry.Discovery
		opts        []Option
		wantErr     string
		wantScheme  string
		wantSchemes []string
	}{
		{name: "defaults", d: &fakeDiscovery{}, wantScheme: "kubernetes", wantSchemes: []string{"grpc", "grpcs"}},
		{name: "options", d: &fakeDiscovery{}, opts: []Option{WithScheme("K8s"), WithEndpointSchemes("grpcs", "GRPC", "grpcs")},
			wantScheme: "k8s", wantSchemes: []string{"grpcs", "grpc"}},
		{name: "nil discovery", d: nil, wantErr: "the Discovery is nil"},
		{name: "typed nil discovery", d: typedNil, wantErr: "the Discovery is a nil *kuberegistry.Registry"},
		{name: "bad scheme", d: &fakeDiscovery{}, opts: []Option{WithScheme("1k8s")}, wantErr: `WithScheme("1k8s")`},
		{name: "empty scheme", d: &fakeDiscovery{}, opts: []Option{WithScheme("")}, wantErr: `WithScheme("")`},
		{name: "no endpoint scheme", d: &fakeDiscovery{}, opts: []Option{WithEndpointSchemes()}, wantErr: "name at least one scheme"},
		{name: "bad endpoint scheme", d: &fakeDiscovery{}, opts: []Option{WithEndpointSchemes("grpc", "g rpc")}, wantErr: `"g rpc" is not a URL scheme`},
		{name: "nil option", d: &fakeDiscovery{}, opts: []Option{nil}, wantErr: "option 0 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBuilder(tt.d, tt.opts...)
			if tt.wantErr != "" {
				assert.ErrorIs(t, err, ErrInvalidOption)
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, b)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantScheme, b.Scheme())
			assert.Equal(t, tt.wantSchemes, b.endpointSchemes)
		})
	}
}

func TestNewBuilderDefaultsAreNotShared(t *testing.T) {
	a, err := NewBuilder(&fakeDiscovery{})
	require.NoError(t, err)
	_, err = NewBuilder(&fakeDiscovery{}, WithEndpointSchemes("grpcs"))
	require.NoError(t, err)
	assert.Equal(t, []string{"grpc", "grpcs"}, a.endpointSchemes)
}

func TestServiceName(t *testing.T) {
	tests := []struct {
		target  string
		want    string
		wantErr string
	}{
		{target: "kubernetes:///greeter", want: "greeter"},
		{target: "kubernetes://shop/greeter", want: "greeter.shop"},
		{target: "kubernetes:greeter", want: "greeter"},
		{target: "kubernetes:///greeter.v2", want: "greeter.v2"},
		{target: "kubernetes:///", wantErr: "names no service"},
		{target: "kubernetes://shop", wantErr: "names no service"},
		{target: "kubernetes://shop/", wantErr: "names no service"},
		{target: "kubernetes:///shop/greeter", wantErr: `the service "shop/greeter" holds a '/'`},
		{target: "kubernetes:///greeter?port=9000", wantErr: "takes no query"},
		{target: "kubernetes://Shop_1/greeter", wantErr: `namespace "Shop_1"`},
		{target: "kubernetes://shop:80/greeter", wantErr: `namespace "shop:80"`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			u, err := url.Parse(tt.target)
			require.NoError(t, err)
			got, err := serviceName(resolver.Target{URL: *u})
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBuildFailures(t *testing.T) {
	d := &fakeDiscovery{watchErr: kuberegistry.ErrNotStarted}
	b, err := NewBuilder(d)
	require.NoError(t, err)
	_, err = b.Build(target(t, "kubernetes:///greeter"), newFakeClientConn(), resolver.BuildOptions{})
	assert.ErrorIs(t, err, kuberegistry.ErrNotStarted, "a registry that is not started fails the build")
	assert.ErrorContains(t, err, `watching service "greeter"`)

	_, err = b.Build(target(t, "kubernetes:///"), newFakeClientConn(), resolver.BuildOptions{})
	assert.ErrorContains(t, err, "names no service")

	// The context given to Watch ends with the failed build.
	require.Len(t, d.contexts, 1)
	assert.ErrorIs(t, d.contexts[0].Err(), context.Canceled)
}

func target(t *testing.T, s string) resolver.Target {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return resolver.Target{URL: *u}
}
