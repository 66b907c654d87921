package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeChecker is a source whose Check returns what the test sets.
type fakeChecker struct {
	err      atomic.Pointer[error]
	maxStale atomic.Int64 // the last maxStale asked
}

func (f *fakeChecker) Check(maxStale time.Duration) error {
	f.maxStale.Store(int64(maxStale))
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fakeChecker) set(err error) { f.err.Store(&err) }

// get requests path from h and returns the status code and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestProbes(t *testing.T) {
	pods, services := &fakeChecker{}, &fakeChecker{}
	var synced atomic.Bool
	p := newProbes(time.Minute, []namedChecker{{"pods", pods}, {"services", services}}, synced.Load)
	h := newHTTPHandler(p, prometheus.NewRegistry())
	denied := &kuberegistry.PermissionError{Verb: "list", Resource: "pods", Namespace: "shop", Err: errors.New("forbidden")}

	steps := []struct {
		name     string
		change   func()
		code     int
		bodyPart string
	}{
		{"starting", func() {}, 503, "starting: waiting for the first list"},
		{"refused at start", func() { p.startFailed(fmt.Errorf("starting pods discovery: %w", denied)) }, 503,
			`starting: starting pods discovery: kuberegistry: not allowed to list pods in namespace "shop"`},
		{"sources synced, xDS not yet", func() { p.setPhase(phaseServing) }, 503, "the xDS server has not served"},
		{"serving", func() { synced.Store(true) }, 200, "ok"},
		{"a source stale", func() { services.set(fmt.Errorf("%w: listing failed", kuberegistry.ErrStale)) }, 503,
			"services discovery: kuberegistry: discovery is stale"},
		{"fresh again", func() { services.set(nil) }, 200, "ok"},
		{"permission revoked", func() { pods.set(fmt.Errorf("%w: %w", kuberegistry.ErrStale, denied)) }, 503,
			"grant verb \"list\" on resource \"pods\""},
		{"draining", func() { pods.set(nil); p.setPhase(phaseDraining) }, 503, "shutting down"},
	}
	for _, s := range steps {
		s.change()
		code, body := get(t, h, "/readyz")
		if code != s.code || !strings.Contains(body, s.bodyPart) {
			t.Errorf("%s: /readyz = %d %q, want %d and %q", s.name, code, body, s.code, s.bodyPart)
		}
		// Liveness never depends on the cluster.
		if code, body := get(t, h, "/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("%s: /healthz = %d %q", s.name, code, body)
		}
	}
	if got := time.Duration(pods.maxStale.Load()); got != time.Minute {
		t.Errorf("Check got maxStale %v, want -max-stale (1m)", got)
	}
	if code, _ := get(t, h, "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}
