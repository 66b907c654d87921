package main

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// phase is where the tier is in its life, as /readyz reports it.
type phase int

const (
	phaseStarting phase = iota // sources starting: nothing to serve yet
	phaseServing               // sources synced, xDS served
	phaseDraining              // SIGTERM received: let clients move to another replica
)

// checker is what readiness asks of a source: kuberegistry's Check(maxStale).
type checker interface {
	Check(maxStale time.Duration) error
}

// probes answers /healthz and /readyz. It is safe for concurrent use.
type probes struct {
	maxStale time.Duration
	sources  []namedChecker
	synced   func() bool // the xDS server's Synced; nil until it exists

	mu       sync.Mutex // guards phase and startErr
	phase    phase
	startErr error // the last failure to start a source, while starting
}

// namedChecker is a source as readiness sees it.
type namedChecker struct {
	name string
	checker
}

func newProbes(maxStale time.Duration, sources []namedChecker, synced func() bool) *probes {
	return &probes{maxStale: maxStale, sources: sources, synced: synced}
}

// startFailed records why a source has not started yet, for /readyz.
func (p *probes) startFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startErr = err
}

// setPhase moves the tier to another phase.
func (p *probes) setPhase(ph phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = ph
	if ph != phaseStarting {
		p.startErr = nil
	}
}

// ready is nil when the tier should get clients: every source synced and fresh, and the xDS
// server serving their first state. Otherwise it says why not.
func (p *probes) ready() error {
	p.mu.Lock()
	ph, startErr := p.phase, p.startErr
	p.mu.Unlock()
	switch ph {
	case phaseDraining:
		return errors.New("shutting down: clients move to another replica")
	case phaseStarting:
		if startErr != nil {
			return fmt.Errorf("starting: %w", startErr)
		}
		return errors.New("starting: waiting for the first list of every source")
	}
	if p.synced != nil && !p.synced() {
		return errors.New("the xDS server has not served the first state of every source yet")
	}
	for _, s := range p.sources {
		if err := s.Check(p.maxStale); err != nil {
			return fmt.Errorf("%s discovery: %w", s.name, err)
		}
	}
	return nil
}

// healthz is the liveness probe: the process answers. It does not look at the API server: a tier
// cut off from it keeps serving the last known instances, and restarting it would lose them.
func (p *probes) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz is the readiness probe: 200 and "ok" when ready, else 503 and the reason.
func (p *probes) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := p.ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ok")
}
