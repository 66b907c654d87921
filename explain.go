package kuberegistry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PodVerdict says whether discovery serves a pod, and why: what `kubectl registry pods` prints.
type PodVerdict struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Service is the service the pod registers (its kratos-service-app label); "" for none.
	Service string `json:"service,omitempty"`
	// Serving reports whether GetService returns the pod's instance.
	Serving bool `json:"serving"`
	// State is what keeps the pod from serving, or not: "ready", "not-ready", "terminating",
	// "serving-terminating", "not-running", "malformed", "unregistered", "excluded" (by the
	// registry's label selector) or "out-of-scope" (a namespace the registry does not discover).
	State string `json:"state"`
	// Reason explains State in words: the parse error of a malformed registration, "served as
	// the fallback: no pod of the service is ready", and so on.
	Reason string `json:"reason"`
	// Instance is what the pod is (or would be, if it served) discovered as; nil when the pod
	// has none.
	Instance *ServiceInstance `json:"instance,omitempty"`
}

// ExplainPods says, for each pod, whether this registry serves it and why, with the registry's
// own translation, label selector and readiness policy: the answer GetService gives, pod by pod.
// The readiness policy depends on a service's other pods (terminating pods are served only when
// no pod of the service is ready), so pass every pod of the services in question. It makes no
// request: the caller lists the pods.
func (r *Registry) ExplainPods(pods []corev1.Pod) []PodVerdict {
	verdicts := make([]PodVerdict, len(pods))
	entries := make([]*podEntry, len(pods)) // of the pods discovery considers, else nil
	usable := map[string]bool{}             // per service key: has a pod served in normal mode
	for i := range pods {
		pod := &pods[i]
		v := &verdicts[i]
		v.Namespace, v.Name, v.Service = pod.Namespace, pod.Name, pod.Labels[LabelsKeyServiceName]
		pi := r.translation.translate(pod, nil)
		v.Instance = pi.instance
		switch {
		case v.Service == "":
			v.State, v.Reason = "unregistered", "the pod has no "+LabelsKeyServiceName+" label"
			continue
		case !r.inScope(pod.Namespace):
			v.State, v.Reason = "out-of-scope", "the registry does not discover namespace "+pod.Namespace
			continue
		case !r.selector.Matches(labels.Set(pod.Labels)):
			v.State, v.Reason = "excluded", "the pod's labels do not match the registry's label selector "+r.selector.String()
			continue
		case pi.problem() != "":
			v.State, v.Reason = "malformed", pi.problem()
			continue
		}
		e := &podEntry{entryMeta: entryMeta{}, podInstance: pi}
		e.Namespace, e.Name = pod.Namespace, pod.Name
		v.State, v.Reason = stateWords(pi.state)
		if pi.instance != nil {
			entries[i] = e
			if r.usable(e) {
				usable[v.Service] = true
			}
		}
	}
	for i, e := range entries {
		if e == nil {
			continue
		}
		v := &verdicts[i]
		fallback := !usable[v.Service]
		v.Serving = r.served(e, fallback)
		switch {
		case v.Serving && fallback:
			v.Reason = "served as the fallback: no pod of the service is ready"
		case !v.Serving && e.state == podServingTerminating:
			v.Reason = "not served: other pods of the service are ready"
		}
	}
	return verdicts
}

// stateWords names a pod state for PodVerdict.
func stateWords(s podState) (state, reason string) {
	switch s {
	case podReady:
		return "ready", "running and Ready, with an IP"
	case podNotReady:
		return "not-ready", "running, but its Ready condition is not True"
	case podTerminating:
		return "terminating", "being deleted and no longer Ready"
	case podServingTerminating:
		return "serving-terminating", "being deleted and still Ready"
	default:
		return "not-running", "not Running, or without an IP"
	}
}
