package kuberegistry

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kuberegistry/kuberegistry/internal/leanpod"

	corev1 "k8s.io/api/core/v1"
)

// podState is how far a pod is from taking traffic.
type podState uint8

const (
	podUnusable           podState = iota // pending, finished, or without an IP
	podNotReady                           // running with an IP, Ready is not True
	podTerminating                        // being deleted and no longer Ready
	podServingTerminating                 // being deleted, still Ready: serving out its grace period
	podReady                              // running, Ready, with an IP: an instance
)

// translation says how pods become instances beyond the fixed rules: the metadata added from the
// pod itself and the ports whose endpoints are secure. The zero value adds nothing.
type translation struct {
	namespaceKey      bool               // add MetadataKeyNamespace
	labelsPrefix      *string            // add the pod's labels under this prefix; nil: do not
	annotationsPrefix *string            // add the pod's annotations under this prefix; nil: do not
	portsPrefix       *string            // add the named container ports under this prefix; nil: do not
	securePorts       []int32            // ports whose endpoints are secure
	shared            *registrationTable // registrations decoded lately; nil: decode every pod alone
}

// defaultSecurePorts are the ports whose endpoints are marked secure unless WithSecurePorts says
// otherwise.
var defaultSecurePorts = []int32{443, 8443}

// defaultTranslation is what New uses without options.
var defaultTranslation = translation{securePorts: defaultSecurePorts}

// podInstance is what discovery makes of one pod. It is computed from the pod alone, touching
// no cluster and no globals, so that every rule can be tested from pod literals.
// A registry holds one per registered pod, so it is kept small (see entryMeta).
type podInstance struct {
	instance *ServiceInstance // nil when the pod is unusable or its registration is malformed
	trouble  *podTrouble      // the service and problem of a registered pod without an instance
	hash     uint64           // instanceHash(instance), made once per instance

	// What instance was made of, so that an update that changes neither keeps it (see instanceOf).
	registration *decodedRegistration
	addresses    string // the pod's IPs, joined by commas

	state podState // whether it takes traffic
}

// podTrouble is what a registered pod without an instance keeps instead.
type podTrouble struct {
	service string // the service-name label
	problem string // why the registration is malformed, for the log; "" when it is not
}

// service returns the pod's service-name label; "" for a pod that is not registered.
func (pi *podInstance) service() string {
	switch {
	case pi.instance != nil:
		return pi.instance.Name
	case pi.trouble != nil:
		return pi.trouble.service
	}
	return ""
}

// problem returns why the pod's registration is malformed; "" when it is not.
func (pi *podInstance) problem() string {
	if pi.trouble != nil {
		return pi.trouble.problem
	}
	return ""
}

// translate turns a pod into an instance. Malformed data costs only this pod: it comes back as a
// problem, never as a panic. prev is what an earlier version of the same pod gave, or nil: when
// the pod's identity, addresses and registration are unchanged, its instance is kept, so that
// a readiness flip or a status write makes no new instance and compares equal by pointer.
func (t *translation) translate(pod *corev1.Pod, prev *podInstance) podInstance {
	return t.translateInterned(pod, prev, nil)
}

// translateInterned is translate with the strings that repeat across pods taken from in.
func (t *translation) translateInterned(pod *corev1.Pod, prev *podInstance, in *interner) (pi podInstance) {
	service := in.intern(pod.Labels[LabelsKeyServiceName])
	defer func() {
		// Defence in depth: a decoder bug must cost one pod, not the process.
		if v := recover(); v != nil {
			pi = podInstance{trouble: &podTrouble{service: service, problem: fmt.Sprintf("internal error reading the pod: %v", v)}}
		}
	}()
	if service == "" {
		return pi
	}
	ips, err := podIPs(pod)
	pi.state = podStateOf(pod, len(ips) > 0)
	if err != nil || (len(ips) == 0 && pod.Status.Phase == corev1.PodRunning && podIsReady(pod)) {
		if err == nil {
			err = fmt.Errorf("the pod is Running and Ready but has no IP in status.podIPs")
		}
		pi.state, pi.trouble = podUnusable, &podTrouble{service: service, problem: err.Error()}
		return pi
	}
	if pi.state == podUnusable {
		pi.trouble = &podTrouble{service: service}
		return pi
	}
	reg, err := t.registrationOf(pod)
	if err != nil {
		pi.state, pi.trouble = podUnusable, &podTrouble{service: service, problem: err.Error()}
		return pi
	}
	pi.registration, pi.addresses = reg, strings.Join(ips, ",")
	pi.instance = t.instanceOf(pod, service, pi, ips, prev, in)
	if prev != nil && prev.instance == pi.instance {
		pi.hash = prev.hash
	} else {
		pi.hash = instanceHash(pi.instance)
	}
	return pi
}

// podStateOf classifies a pod by phase, deletion and readiness.
func podStateOf(pod *corev1.Pod, hasIP bool) podState {
	switch {
	case pod.Status.Phase != corev1.PodRunning || !hasIP:
		return podUnusable
	case pod.DeletionTimestamp != nil && podIsReady(pod):
		return podServingTerminating
	case pod.DeletionTimestamp != nil:
		return podTerminating
	case !podIsReady(pod):
		return podNotReady
	default:
		return podReady
	}
}

func podIsReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podIPs returns the pod's addresses, primary first: status.podIPs, else the older status.podIP.
// An address already in canonical form, as the API server writes them, is kept without a copy.
func podIPs(pod *corev1.Pod) ([]string, error) {
	n := len(pod.Status.PodIPs)
	if n == 0 && pod.Status.PodIP != "" {
		n = 1
	}
	if n == 0 {
		return nil, nil
	}
	ips := make([]string, 0, n)
	for k := range n {
		s := pod.Status.PodIP
		if len(pod.Status.PodIPs) > 0 {
			s = pod.Status.PodIPs[k].IP
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("status.podIPs holds %q, which is not an IP address", s)
		}
		var buf [64]byte
		if canonical := a.AppendTo(buf[:0]); string(canonical) != s {
			s = string(canonical)
		}
		if !slices.Contains(ips, s) {
			ips = append(ips, s)
		}
	}
	return ips, nil
}

// instanceOf makes the instance of a running pod with at least one IP, or keeps prev's when it
// would be the same.
func (t *translation) instanceOf(pod *corev1.Pod, name string, pi podInstance, ips []string, prev *podInstance, in *interner) *ServiceInstance {
	reg := pi.registration
	id, version := pod.Labels[LabelsKeyServiceID], pod.Labels[LabelsKeyServiceVersion]
	if v, ok := pod.Annotations[AnnotationsKeyServiceID]; ok {
		id = v
	}
	if v, ok := pod.Annotations[AnnotationsKeyServiceVersion]; ok {
		version = v
	}
	if id == "" {
		id = pod.Name
	}
	if prev != nil && prev.instance != nil && prev.registration == reg && prev.addresses == pi.addresses &&
		prev.instance.ID == id && prev.instance.Name == name && prev.instance.Version == version {
		return prev.instance
	}
	// Replicas share their service's name and version: one copy of each, not one per pod.
	inst := &ServiceInstance{ID: id, Name: name, Version: in.intern(version), Metadata: reg.metadata}
	inst.Endpoints = make([]string, 0, len(reg.ports)*len(ips))
	for _, p := range reg.ports {
		for _, ip := range ips {
			inst.Endpoints = append(inst.Endpoints, endpointURL(p.scheme, ip, p.port, p.query))
		}
	}
	return inst
}

// newRegistration decodes what a pod's registration says beyond its identity and addresses.
func (t *translation) newRegistration(pod *corev1.Pod) (*decodedRegistration, error) {
	reg := &decodedRegistration{}
	if s, ok := pod.Annotations[AnnotationsKeyMetadata]; ok {
		m, err := decodeMetadata(s)
		if err != nil {
			return nil, err
		}
		reg.metadata = m
	}
	ports, err := servedPorts(pod)
	if err != nil {
		return nil, err
	}
	t.enrich(reg, pod)
	for i := range ports {
		ports[i].query = t.secureQuery(pod, ports[i])
	}
	reg.ports = ports
	return reg, nil
}

// servedPorts lists the ports a pod serves, with their scheme and query: from the protocols
// annotation when there is one, else from container ports named after a protocol. An unnamed
// port, or one whose name is no protocol, serves no endpoint: its scheme is unknown.
func servedPorts(pod *corev1.Pod) ([]portProtocol, error) {
	s, ok := pod.Annotations[AnnotationsKeyProtocolMap]
	if !ok {
		return namedPorts(pod), nil
	}
	ports, err := decodeProtocols(s)
	if err != nil {
		return nil, err
	}
	if s, ok := pod.Annotations[AnnotationsKeyEndpointParams]; ok {
		params, err := decodeEndpointParams(s)
		if err != nil {
			return nil, err
		}
		for _, q := range params {
			// A query for a port that serves nothing is ignored.
			if i := slices.IndexFunc(ports, func(p portProtocol) bool { return p.port == q.port }); i >= 0 {
				ports[i].query = q.value
			}
		}
	}
	return ports, nil
}

// namedPorts infers the served ports from the names of the containers' ports.
func namedPorts(pod *corev1.Pod) []portProtocol {
	var ports []portProtocol
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			scheme, ok := protocolFromPortName(cp.Name)
			if !ok || cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
				continue
			}
			if !slices.ContainsFunc(ports, func(p portProtocol) bool { return p.port == cp.ContainerPort }) {
				ports = append(ports, portProtocol{port: cp.ContainerPort, scheme: scheme})
			}
		}
	}
	slices.SortFunc(ports, func(a, b portProtocol) int { return int(a.port) - int(b.port) })
	return ports
}

// enrich adds what the translation asks for from the pod itself to the registration's metadata,
// never overwriting a key the service registered.
func (t *translation) enrich(reg *decodedRegistration, pod *corev1.Pod) {
	add := func(k, v string) {
		if _, taken := reg.metadata[k]; taken {
			return
		}
		if reg.metadata == nil {
			reg.metadata = make(map[string]string)
		}
		reg.metadata[k] = v
	}
	if t.namespaceKey {
		add(MetadataKeyNamespace, pod.Namespace)
	}
	if t.labelsPrefix != nil {
		for k, v := range pod.Labels {
			add(*t.labelsPrefix+k, v)
		}
	}
	if t.annotationsPrefix != nil {
		for k, v := range pod.Annotations {
			add(*t.annotationsPrefix+k, v)
		}
	}
	if t.portsPrefix != nil {
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name != "" {
					add(*t.portsPrefix+cp.Name, strconv.Itoa(int(cp.ContainerPort)))
				}
			}
		}
	}
}

// secureQuery returns the port's query, with isSecure=true added when the port is secure: its
// scheme or container port name says so (https, grpcs, wss, tls…), or it is one of the secure
// ports. A query registered with isSecure already set is left as it is.
func (t *translation) secureQuery(pod *corev1.Pod, p portProtocol) string {
	if strings.Contains(p.query, "isSecure=") {
		return p.query
	}
	secure := isSecureScheme(p.scheme) || slices.Contains(t.securePorts, p.port)
	if !secure {
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.ContainerPort == p.port && isSecurePortName(cp.Name) {
					secure = true
				}
			}
		}
	}
	switch {
	case !secure:
		return p.query
	case p.query == "":
		return "isSecure=true"
	default:
		return p.query + "&isSecure=true"
	}
}

// toPodEntry is the informer's transform: each pod is translated once, as it arrives, and the
// informer never holds the full object. It is idempotent, as transforms must be. c is the
// informer's cache, whose entry for the pod, if any, lends the new entry its instance when the
// pod's registration is unchanged, and whose interner the repeated strings; nil for none.
func (t *translation) toPodEntry(obj any, c podCache) (any, error) {
	var pod *corev1.Pod
	switch o := obj.(type) {
	case *corev1.Pod:
		pod = o
	case *leanpod.Pod:
		pod = &o.Pod
	default:
		return obj, nil // already an entry, or a tombstone of one
	}
	uid := uidHash(pod.UID)
	var prev *podInstance
	var in *interner
	if c != nil {
		if e := c.cached(pod.Namespace, pod.Name); e != nil && e.uid == uid {
			prev = &e.podInstance
		}
		in = c.interner()
	}
	return &podEntry{
		entryMeta: entryMeta{
			Namespace: in.intern(pod.Namespace),
			Name:      pod.Name,
			uid:       uid,
		},
		podInstance: t.translateInterned(pod, prev, in),
	}, nil
}

// podCache is what the translation asks of an informer's cache (see toPodEntry).
type podCache interface {
	cached(namespace, name string) *podEntry
	interner() *interner
}
