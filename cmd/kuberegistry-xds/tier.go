package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kuberegistry/kuberegistry/contrib/xds"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// httpShutdownTimeout bounds how long the HTTP server waits for a probe or a scrape in flight.
const httpShutdownTimeout = 2 * time.Second

// tier is one replica of the xDS tier: its discovery sources, the xDS server over them, the gRPC
// server that carries it, and the HTTP server of probes and metrics. Replicas share nothing:
// each follows the API server on its own, and clients may reach any of them.
type tier struct {
	cfg     *config
	logger  *slog.Logger
	sources []namedSource
	xds     *xds.Server
	grpc    *grpc.Server
	probes  *probes
	http    *http.Server
	xdsLn   net.Listener
	httpLn  net.Listener
}

// newTier builds the servers over sources and opens both listeners, so that a port in use fails
// before any request to the cluster. It makes no request; run starts the sources.
func newTier(c *config, sources []namedSource, logger *slog.Logger) (*tier, error) {
	server, err := xds.NewServer(catalogs(sources), xds.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("xDS server: %w", err)
	}
	var opts []grpc.ServerOption
	if c.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{*c.tls},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	g := grpc.NewServer(opts...)
	server.Register(g)

	checkers := make([]namedChecker, len(sources))
	for i, s := range sources {
		checkers[i] = namedChecker{s.name, s.source}
	}
	p := newProbes(c.maxStale, checkers, server.Synced)
	metrics, err := newMetrics(sources, server)
	if err != nil {
		return nil, err
	}

	xdsLn, err := net.Listen("tcp", c.xdsListen)
	if err != nil {
		return nil, fmt.Errorf("-xds-listen %s: %w", c.xdsListen, err)
	}
	httpLn, err := net.Listen("tcp", c.httpListen)
	if err != nil {
		_ = xdsLn.Close()
		return nil, fmt.Errorf("-http-listen %s: %w", c.httpListen, err)
	}
	return &tier{
		cfg: c, logger: logger, sources: sources, xds: server, grpc: g, probes: p,
		http:  &http.Server{Handler: newHTTPHandler(p, metrics), ReadHeaderTimeout: 10 * time.Second},
		xdsLn: xdsLn, httpLn: httpLn,
	}, nil
}

// run serves until ctx ends, then shuts down gracefully; it returns once every goroutine it
// started has ended and the sources are closed. The HTTP server answers at once (liveness, and
// readiness saying why it is not ready); xDS is served once every source is synced, so that no
// client ever receives the empty state of a tier that has not listed yet.
func (t *tier) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer closeSources(t.sources)

	httpDone := make(chan error, 1)
	wg.Go(func() { httpDone <- t.http.Serve(t.httpLn) })
	defer t.stopHTTP()

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	wg.Go(func() { newStatusLog(t.logger).run(bgCtx, t.sources, statusLogInterval) })

	if err := startSources(ctx, t.sources, t.logger, t.probes.startFailed); err != nil {
		t.logger.Info("stopped before discovery synced", "reason", context.Cause(ctx))
		t.grpc.Stop()
		_ = t.xdsLn.Close() // never served: Stop does not know it
		return nil
	}

	runDone := make(chan error, 1)
	wg.Go(func() { runDone <- t.xds.Run(bgCtx) })
	serveDone := make(chan error, 1)
	wg.Go(func() { serveDone <- t.grpc.Serve(t.xdsLn) })
	t.probes.setPhase(phaseServing)
	t.logger.Info("serving xDS", "address", t.xdsLn.Addr().String(), "tls", t.cfg.tls != nil,
		"http", t.httpLn.Addr().String())

	var failure error
	select {
	case <-ctx.Done():
		t.logger.Info("shutting down", "reason", context.Cause(ctx), "timeout", t.cfg.shutdownTimeout)
	case err := <-runDone:
		failure = fmt.Errorf("the xDS server stopped: %w", err)
		runDone <- err // read again below
	case err := <-serveDone:
		failure = fmt.Errorf("serving gRPC on %s: %w", t.cfg.xdsListen, err)
		serveDone <- err
	case err := <-httpDone:
		failure = fmt.Errorf("serving HTTP on %s: %w", t.cfg.httpListen, err)
		httpDone <- err
	}
	if failure != nil {
		t.logger.Error("shutting down", "error", failure.Error())
	}
	t.probes.setPhase(phaseDraining)
	t.stopGRPC(stopBackground)
	<-runDone
	<-serveDone
	return failure
}

// stopGRPC stops accepting connections and ends the open xDS streams, within -shutdown-timeout.
// GracefulStop closes the listener and lets the streams end; stopping the xDS server's Run (stop)
// ends them from the server side, so that each client moves to another replica at once. Streams
// still open at the bound are closed.
func (t *tier) stopGRPC(stop context.CancelFunc) {
	stopped := make(chan struct{})
	go func() {
		t.grpc.GracefulStop()
		close(stopped)
	}()
	stop()
	timer := time.NewTimer(t.cfg.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
		t.logger.Info("xDS streams ended")
	case <-timer.C:
		t.logger.Warn("xDS streams still open at -shutdown-timeout: closing them", "timeout", t.cfg.shutdownTimeout)
		t.grpc.Stop()
		<-stopped
	}
}

// stopHTTP ends the HTTP server, letting a probe or scrape in flight finish.
func (t *tier) stopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := t.http.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.logger.Warn("stopping the HTTP server", "error", err.Error())
	}
	_ = t.http.Close()
}
