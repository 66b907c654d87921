package xds

import (
	"context"
	"fmt"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// callbacks are the hooks go-control-plane calls on every stream: they hold new streams until
// the catalogs are served, serve the listeners clients ask for (see Server.serveAsked), count
// for Stats and log what a client rejects. They run on the
// streams' goroutines and only add to atomic counters on the way of a response.
type callbacks struct{ s *Server }

func (c callbacks) OnStreamOpen(ctx context.Context, _ int64, _ string) error {
	c.s.streams.Add(1)
	return c.s.waitSynced(ctx)
}

func (c callbacks) OnStreamClosed(int64, *corev3.Node) { c.s.streams.Add(-1) }

func (c callbacks) OnDeltaStreamOpen(ctx context.Context, _ int64, _ string) error {
	c.s.streams.Add(1)
	return c.s.waitSynced(ctx)
}

func (c callbacks) OnDeltaStreamClosed(int64, *corev3.Node) { c.s.streams.Add(-1) }

func (c callbacks) OnStreamRequest(stream int64, r *discoverygrpc.DiscoveryRequest) error {
	c.s.requests.Add(1)
	if r.GetTypeUrl() == listenerType {
		c.s.serveAsked(r.GetResourceNames())
	}
	if r.GetErrorDetail() != nil {
		c.nack(stream, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail().GetMessage())
	}
	return nil
}

func (c callbacks) OnStreamResponse(context.Context, int64, *discoverygrpc.DiscoveryRequest, *discoverygrpc.DiscoveryResponse) {
	c.s.pushes.Add(1)
}

func (c callbacks) OnStreamDeltaRequest(stream int64, r *discoverygrpc.DeltaDiscoveryRequest) error {
	c.s.requests.Add(1)
	if r.GetTypeUrl() == listenerType {
		c.s.serveAsked(r.GetResourceNamesSubscribe())
	}
	if r.GetErrorDetail() != nil {
		c.nack(stream, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail().GetMessage())
	}
	return nil
}

func (c callbacks) OnStreamDeltaResponse(int64, *discoverygrpc.DeltaDiscoveryRequest, *discoverygrpc.DeltaDiscoveryResponse) {
	c.s.pushes.Add(1)
}

// The REST (fetch) API is not registered; these complete the interface.
func (c callbacks) OnFetchRequest(context.Context, *discoverygrpc.DiscoveryRequest) error { return nil }

func (c callbacks) OnFetchResponse(*discoverygrpc.DiscoveryRequest, *discoverygrpc.DiscoveryResponse) {
}

// nack logs a rejected response. The server does not resend it: the client keeps what it had
// until the resource changes again.
func (c callbacks) nack(stream int64, node *corev3.Node, typeURL, nonce, reason string) {
	c.s.nacks.Add(1)
	c.s.log.Warn("xds: a client rejected a response", "stream", stream, "node", node.GetId(),
		"type", typeURL, "nonce", nonce, "reason", reason)
}

// controlPlaneLogger hands go-control-plane's logs to slog. Its caches log at Info for every
// watch they open, once per response and client: that is Debug here.
type controlPlaneLogger struct{ l *slog.Logger }

func (l controlPlaneLogger) logf(level slog.Level, format string, args []any) {
	if l.l.Enabled(context.Background(), level) {
		l.l.Log(context.Background(), level, "xds: go-control-plane: "+fmt.Sprintf(format, args...))
	}
}

func (l controlPlaneLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args) }
func (l controlPlaneLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l controlPlaneLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args) }
func (l controlPlaneLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }
