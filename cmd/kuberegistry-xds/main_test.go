package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lockedBuffer is a bytes.Buffer that a logger writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForText waits until b holds want, or fails the test after d.
func waitForText(t *testing.T, b *lockedBuffer, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, no %q in:\n%s", d, want, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, &stdout, &stderr, testEnvironment(t)); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "kuberegistry-xds serves") || stderr.Len() != 0 {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestRunRejectsBadFlagsAtOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-pods=false"}, &stdout, &stderr, testEnvironment(t)); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if got := stderr.String(); !strings.HasPrefix(got, "kuberegistry-xds: -pods=false without -services serves nothing") {
		t.Fatalf("stderr: %s", got)
	}
}

func TestRunPrintsBootstrap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		credsType string
		ca        string
		node      string
	}{
		{"plaintext", nil, "insecure", "", "kuberegistry-xds-client"},
		{"TLS with the system's roots", []string{"-bootstrap-tls", "-node-id=greeter-client"}, "tls", "", "greeter-client"},
		{"TLS with a CA", []string{"-bootstrap-ca=/etc/xds/ca.pem"}, "tls", "/etc/xds/ca.pem", "kuberegistry-xds-client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-print-bootstrap", "-server-uri", "dns:///kuberegistry-xds.shop.svc:18000"}, tc.args...)
			if code := run(t.Context(), args, &stdout, &stderr, testEnvironment(t)); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var bootstrap struct {
				XDSServers []struct {
					ServerURI    string `json:"server_uri"`
					ChannelCreds []struct {
						Type   string            `json:"type"`
						Config map[string]string `json:"config"`
					} `json:"channel_creds"`
				} `json:"xds_servers"`
				Node struct {
					ID string `json:"id"`
				} `json:"node"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &bootstrap); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout.String())
			}
			if len(bootstrap.XDSServers) != 1 || bootstrap.XDSServers[0].ServerURI != "dns:///kuberegistry-xds.shop.svc:18000" ||
				len(bootstrap.XDSServers[0].ChannelCreds) != 1 || bootstrap.XDSServers[0].ChannelCreds[0].Type != tc.credsType ||
				bootstrap.XDSServers[0].ChannelCreds[0].Config["ca_certificate_file"] != tc.ca || bootstrap.Node.ID != tc.node {
				t.Fatalf("bootstrap:\n%s", stdout.String())
			}
			if !strings.HasSuffix(stdout.String(), "}\n") || stderr.Len() != 0 {
				t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

func TestRunWithoutKubernetes(t *testing.T) {
	var stdout, stderr lockedBuffer
	code := run(t.Context(), []string{"-log-format=text"}, &stdout, &stderr, testEnvironment(t))
	if code != 1 || !strings.Contains(stderr.String(), "no Kubernetes configuration: not in a pod") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

// An API server that refuses every request: the log carries the library's PermissionError, which
// names the grant to add, and the tier keeps trying until it stops.
func TestRunLogsARefusalAsPermissionError(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,` +
			`"message":"pods is forbidden: User \"system:serviceaccount:shop:kuberegistry-xds\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\""}`))
	}))
	defer api.Close()
	kubeconfig := writeKubeconfig(t, api.URL, "shop")

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-kubeconfig", kubeconfig, "-xds-listen=127.0.0.1:0", "-http-listen=127.0.0.1:0", "-log-format=text"},
			&stdout, &stderr, testEnvironment(t))
	}()
	waitForText(t, &stderr, `msg="RBAC refused discovery; retrying" source=pods`, 20*time.Second)
	waitForText(t, &stderr, `kuberegistry: not allowed to list pods in namespace \"shop\" (a Role and RoleBinding there): grant verb \"list\" on resource \"pods\" to this pod's service account`, time.Second)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if !strings.Contains(stderr.String(), `scope_from="the kubeconfig context's namespace"`) {
		t.Errorf("the log does not say where the scope came from:\n%s", stderr.String())
	}
}
