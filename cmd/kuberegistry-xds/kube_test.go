package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// writeKubeconfig writes a kubeconfig for server whose context has namespace ("" for none).
func writeKubeconfig(t *testing.T, server, namespace string) string {
	t.Helper()
	data := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ` + server + `
users:
- name: u
  user:
    token: secret
contexts:
- name: ctx
  context:
    cluster: c
    user: u
    namespace: "` + namespace + `"
current-context: ctx
`
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testEnvironment is a process outside any pod, with no kubeconfig, unless changed.
func testEnvironment(t *testing.T) environment {
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	return environment{
		getenv:    func(string) string { return "" },
		readFile:  func(string) ([]byte, error) { return nil, os.ErrNotExist },
		inCluster: func() (*rest.Config, error) { return nil, rest.ErrNotInCluster },
		loadingRule: func() *clientcmd.ClientConfigLoadingRules {
			return &clientcmd.ClientConfigLoadingRules{Precedence: []string{missing}}
		},
	}
}

func TestLoadKubeConfig(t *testing.T) {
	t.Run("the -kubeconfig flag wins over the pod", func(t *testing.T) {
		env := testEnvironment(t)
		env.inCluster = func() (*rest.Config, error) { return &rest.Config{Host: "https://in-cluster"}, nil }
		path := writeKubeconfig(t, "https://flag.example:6443", "shop")
		k, err := loadKubeConfig(path, env)
		if err != nil {
			t.Fatal(err)
		}
		if k.rest.Host != "https://flag.example:6443" || k.source != path || k.namespace != "shop" || k.rest.UserAgent != userAgent {
			t.Fatalf("%+v", k)
		}
	})
	t.Run("in a pod, its service account", func(t *testing.T) {
		env := testEnvironment(t)
		env.inCluster = func() (*rest.Config, error) { return &rest.Config{Host: "https://in-cluster"}, nil }
		env.loadingRule = func() *clientcmd.ClientConfigLoadingRules {
			return &clientcmd.ClientConfigLoadingRules{Precedence: []string{writeKubeconfig(t, "https://laptop", "")}}
		}
		k, err := loadKubeConfig("", env)
		if err != nil {
			t.Fatal(err)
		}
		if k.rest.Host != "https://in-cluster" || k.source != "in-cluster" || k.namespace != "" {
			t.Fatalf("%+v", k)
		}
	})
	t.Run("outside a pod, $KUBECONFIG", func(t *testing.T) {
		env := testEnvironment(t)
		path := writeKubeconfig(t, "https://laptop", "")
		env.loadingRule = func() *clientcmd.ClientConfigLoadingRules {
			return &clientcmd.ClientConfigLoadingRules{Precedence: []string{path}}
		}
		k, err := loadKubeConfig("", env)
		if err != nil {
			t.Fatal(err)
		}
		if k.rest.Host != "https://laptop" || k.source != path || k.namespace != "" {
			t.Fatalf("%+v", k)
		}
	})
	t.Run("nowhere", func(t *testing.T) {
		_, err := loadKubeConfig("", testEnvironment(t))
		if err == nil || !strings.Contains(err.Error(), "no Kubernetes configuration: not in a pod") ||
			!strings.Contains(err.Error(), "pass -kubeconfig or set $KUBECONFIG") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a pod without its token", func(t *testing.T) {
		env := testEnvironment(t)
		env.inCluster = func() (*rest.Config, error) { return nil, errors.New("open token: no such file") }
		_, err := loadKubeConfig("", env)
		if err == nil || !strings.Contains(err.Error(), "in-cluster configuration: open token") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a missing -kubeconfig", func(t *testing.T) {
		_, err := loadKubeConfig("/nonexistent/kubeconfig", testEnvironment(t))
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDiscoveryScope(t *testing.T) {
	inPod := func(t *testing.T) environment {
		env := testEnvironment(t)
		env.readFile = func(name string) ([]byte, error) {
			if name == serviceAccountNamespaceFile {
				return []byte("payments\n"), nil
			}
			return nil, os.ErrNotExist
		}
		return env
	}
	for _, tc := range []struct {
		name    string
		config  config
		env     func(*testing.T) environment
		kubeNS  string
		want    []string
		whyPart string
	}{
		{"all namespaces", config{allNamespaces: true}, inPod, "", []string{""}, "-all-namespaces"},
		{"listed", config{namespaces: []string{"a", "b"}}, inPod, "ctx", []string{"a", "b"}, "-namespaces"},
		{"downward API", config{}, func(t *testing.T) environment {
			env := inPod(t)
			env.getenv = func(k string) string { return map[string]string{"POD_NAMESPACE": "shop"}[k] }
			return env
		}, "", []string{"shop"}, "POD_NAMESPACE"},
		{"service account", config{}, inPod, "", []string{"payments"}, "service account"},
		{"kubeconfig context", config{}, testEnvironment, "ctx", []string{"ctx"}, "kubeconfig context"},
		{"default", config{}, testEnvironment, "", []string{"default"}, "not in a pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := discoveryScope(&tc.config, &kubeConfig{namespace: tc.kubeNS}, tc.env(t))
			if !slices.Equal(got, tc.want) || !strings.Contains(why, tc.whyPart) {
				t.Fatalf("got %q (%s), want %q (%s)", got, why, tc.want, tc.whyPart)
			}
		})
	}
}
