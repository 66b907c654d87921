package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kuberegistry/kuberegistry"
)

// statusLogInterval is how often logStatus reads the sources' Status: cheap (a few locks), and
// often enough that a revoked permission reaches the log well before -max-stale fails /readyz.
const statusLogInterval = 5 * time.Second

// informerKey names one informer of one source.
type informerKey struct{ source, namespace, resource string }

// statusLog turns the sources' Status into log lines, once per change: an informer that starts
// failing, a different failure, and its recovery. The library logs each failure as the API server
// worded it; Status words an RBAC refusal as a *kuberegistry.PermissionError, which names the
// grant to add, and that is what an operator reading the log needs.
type statusLog struct {
	logger *slog.Logger
	last   map[informerKey]string // the failure last logged per informer; absent: healthy
}

func newStatusLog(logger *slog.Logger) *statusLog {
	return &statusLog{logger: logger, last: map[informerKey]string{}}
}

// run logs changes every interval until ctx ends.
func (l *statusLog) run(ctx context.Context, sources []namedSource, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, s := range sources {
				l.observe(s.name, s.Status())
			}
		}
	}
}

// observe logs what changed in one source's status since the last call.
func (l *statusLog) observe(source string, st kuberegistry.Status) {
	for _, in := range st.Informers {
		key := informerKey{source, in.Namespace, in.Resource}
		logged, failing := l.last[key]
		switch {
		case in.LastError != nil && (!failing || logged != in.LastError.Error()):
			l.last[key] = in.LastError.Error()
			attrs := []any{"source", source, "namespace", in.Namespace, "resource", in.Resource,
				"failing_since", in.FailingSince.Format(time.RFC3339), "error", in.LastError.Error()}
			var denied *kuberegistry.PermissionError
			if errors.As(in.LastError, &denied) {
				l.logger.Error("RBAC refused listing or watching; serving the last known instances", attrs...)
			} else {
				l.logger.Warn("listing or watching fails; serving the last known instances", attrs...)
			}
		case in.LastError == nil && failing:
			delete(l.last, key)
			l.logger.Info("listing and watching again", "source", source, "namespace", in.Namespace, "resource", in.Resource)
		}
	}
}
