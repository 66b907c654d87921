package kuberegistry

import "log/slog"

// problemLog logs each malformed pod once per distinct problem, however often the pod changes,
// so that another team's broken annotation costs one log line, not one per event. Its callers
// serialize their calls (the registry's handler holds its mutex).
type problemLog struct {
	logger *slog.Logger
	seen   map[string]string // pod key → the problem last logged; bounded by the cached pods
}

func newProblemLog(logger *slog.Logger) *problemLog {
	return &problemLog{logger: logger, seen: make(map[string]string)}
}

// note records the problem of a pod, if any, and logs it when it is new.
func (p *problemLog) note(key string, e *podEntry, deleted bool) {
	if deleted || e.problem == "" {
		delete(p.seen, key)
		return
	}
	if p.seen[key] == e.problem {
		return
	}
	p.seen[key] = e.problem
	p.logger.Warn("kuberegistry: skipping a pod whose registration is malformed; the service's other pods are served",
		"namespace", e.Namespace, "pod", e.Name, "service", e.service, "reason", e.problem)
}
