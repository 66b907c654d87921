package xds

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// ServerOption configures a Server made by NewServer.
type ServerOption interface {
	applyServer(*serverOptions)
}

type serverOptionFunc func(*serverOptions)

func (f serverOptionFunc) applyServer(o *serverOptions) { f(o) }

type serverOptions struct {
	logger *slog.Logger
	errs   []error
}

// WithLogger sets where the Server logs: its first sync, a client that rejects a resource (a
// NACK), two catalogs serving the same name; go-control-plane's own logs go there at Debug.
// Default: slog.Default(), as for the library's sources.
func WithLogger(logger *slog.Logger) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		if logger == nil {
			o.errs = append(o.errs, fmt.Errorf("WithLogger(nil): pass a *slog.Logger, or leave the option out to log nothing"))
			return
		}
		o.logger = logger
	})
}

// DiscoveryOption configures a Discovery made by NewDiscovery.
type DiscoveryOption interface {
	applyDiscovery(*discoveryOptions)
}

type discoveryOptionFunc func(*discoveryOptions)

func (f discoveryOptionFunc) applyDiscovery(o *discoveryOptions) { f(o) }

type discoveryOptions struct {
	nodeID      string
	logger      *slog.Logger
	backoffBase time.Duration
	backoffMax  time.Duration
	errs        []error
}

// Default reconnection backoff of a Discovery: the first retry after about backoffBase, each
// next one twice as late, at most backoffMax.
const (
	defaultBackoffBase = 250 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
)

// WithNodeID sets the xDS node id a Discovery sends. The tier serves every node the same: the id
// only names the client in the tier's logs. Default: the hostname (the pod's name in a pod).
func WithNodeID(id string) DiscoveryOption {
	return discoveryOptionFunc(func(o *discoveryOptions) {
		if id == "" {
			o.errs = append(o.errs, fmt.Errorf("WithNodeID(\"\"): give a non-empty id, or leave the option out to send the hostname"))
			return
		}
		o.nodeID = id
	})
}

// WithDiscoveryLogger sets where a Discovery logs: a broken stream and its reconnection, a
// resource it rejects. Default: slog.Default().
func WithDiscoveryLogger(logger *slog.Logger) DiscoveryOption {
	return discoveryOptionFunc(func(o *discoveryOptions) {
		if logger == nil {
			o.errs = append(o.errs, fmt.Errorf("WithDiscoveryLogger(nil): pass a *slog.Logger, or leave the option out to log nothing"))
			return
		}
		o.logger = logger
	})
}

// WithReconnectBackoff sets how long a Discovery waits before opening a new stream after one
// broke: about base the first time (with ±20% jitter), twice as long at each failure in a row,
// never more than max. A stream that received a response resets the wait to base.
// Default: 250ms and 10s.
func WithReconnectBackoff(base, max time.Duration) DiscoveryOption {
	return discoveryOptionFunc(func(o *discoveryOptions) {
		if base <= 0 || max < base {
			o.errs = append(o.errs, fmt.Errorf("WithReconnectBackoff(%v, %v): base must be positive and max at least base", base, max))
			return
		}
		o.backoffBase, o.backoffMax = base, max
	})
}

// defaultNodeID is the hostname, which is the pod's name in a pod.
func defaultNodeID() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "kuberegistry-xds-client"
}
