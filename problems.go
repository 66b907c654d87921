package kuberegistry

import "log/slog"

// problemLog logs each malformed object — a pod's registration, an EndpointSlice's endpoints —
// once per distinct problem, however often the object changes, so that another team's broken
// annotation costs one log line, not one per event. Its callers serialize their calls (each
// source's handler holds its mutex).
type problemLog struct {
	logger  *slog.Logger
	kind    string            // the log's key for the object's name: "pod", "endpointslice"
	message string            // what is skipped, and what is served instead
	seen    map[string]string // object key → the problem last logged; bounded by the cache
}

func newProblemLog(logger *slog.Logger, kind, message string) *problemLog {
	return &problemLog{logger: logger, kind: kind, message: message, seen: make(map[string]string)}
}

// newPodProblemLog logs malformed pod registrations.
func newPodProblemLog(logger *slog.Logger) *problemLog {
	return newProblemLog(logger, "pod",
		"kuberegistry: skipping a pod whose registration is malformed; the service's other pods are served")
}

// newSliceProblemLog logs what an EndpointSlice holds that cannot be served.
func newSliceProblemLog(logger *slog.Logger) *problemLog {
	return newProblemLog(logger, "endpointslice",
		"kuberegistry: skipping what is unusable in an EndpointSlice; the service's other endpoints are served")
}

// note records the problem of the object namespace/name (key), "" for none, and logs it when it
// is new. A deleted object is forgotten.
func (p *problemLog) note(key, namespace, name, service, problem string, deleted bool) {
	if deleted || problem == "" {
		delete(p.seen, key)
		return
	}
	if p.seen[key] == problem {
		return
	}
	p.seen[key] = problem
	p.logger.Warn(p.message, "namespace", namespace, p.kind, name, "service", service, "reason", problem)
}
