package kuberegistry

import (
	"encoding/binary"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// decodedRegistration is what a pod's registration says beyond its identity and its addresses: the
// instance's metadata and the ports it serves. The replicas of one version of a service say the
// same, so a registry decodes it once and their instances share it (see registrationTable).
type decodedRegistration struct {
	metadata map[string]string // enriched and final; shared by instances, so never changed
	ports    []portProtocol    // with their final query (isSecure added)
}

// A generation of a registration table holds at most maxRegistrations registrations and
// maxRegistrationBytes of keys, so that the table stays small whatever pods the cluster holds
// (annotations may reach 256 KiB). A fleet has about one registration per version of each
// service, of a few hundred bytes; past these bounds, sharing degrades, never correctness. A
// longer key is not remembered at all.
const (
	maxRegistrations     = 4096
	maxRegistrationBytes = 1 << 20
	maxRegistrationKey   = 64 << 10
)

// registrationTable remembers the registrations decoded lately, by everything they are made of (see
// appendRegistrationKey), so that a pod update that leaves its registration alone — a readiness
// flip, a status write — decodes no JSON, and replicas share one metadata map. It holds two
// generations: a lookup promotes a hit from the older one, and a full current generation
// replaces the older, so that its size is bounded and the registrations in use stay.
type registrationTable struct {
	mu                sync.Mutex // guards all below; the informers of several namespaces share the table
	current, previous map[string]*decodedRegistration
	currentBytes      int    // of current's keys
	key               []byte // the key being looked up, reused
}

func newRegistrationTable() *registrationTable {
	return &registrationTable{current: make(map[string]*decodedRegistration)}
}

// registrationOf returns the registration of a pod: a remembered one when the pod's registration
// is byte for byte one already decoded, else a new one.
func (t *translation) registrationOf(pod *corev1.Pod) (*decodedRegistration, error) {
	c := t.shared
	if c == nil {
		return t.newRegistration(pod)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key = t.appendRegistrationKey(c.key[:0], pod)
	if len(c.key) > maxRegistrationKey {
		c.key = nil // do not keep an outsized buffer either
		return t.newRegistration(pod)
	}
	if reg, ok := c.current[string(c.key)]; ok {
		return reg, nil
	}
	reg, ok := c.previous[string(c.key)]
	if !ok {
		var err error
		if reg, err = t.newRegistration(pod); err != nil {
			return nil, err // not remembered: a malformed pod is rare, and logged once anyway
		}
	}
	if len(c.current) >= maxRegistrations || c.currentBytes+len(c.key) > maxRegistrationBytes {
		c.previous, c.current, c.currentBytes = c.current, make(map[string]*decodedRegistration), 0
	}
	c.current[string(c.key)] = reg
	c.currentBytes += len(c.key)
	return reg, nil
}

// appendRegistrationKey appends everything newRegistration reads from a pod, each field length
// prefixed so that no two different pods give the same key. It holds no pod label or annotation
// beyond the registration's own: a translation that copies them all into metadata has no table
// (see withTable).
func (t *translation) appendRegistrationKey(key []byte, pod *corev1.Pod) []byte {
	metadata, hasMetadata := pod.Annotations[AnnotationsKeyMetadata]
	key = appendKeyField(key, hasMetadata, metadata)
	protocols, hasProtocols := pod.Annotations[AnnotationsKeyProtocolMap]
	key = appendKeyField(key, hasProtocols, protocols)
	if hasProtocols { // servedPorts reads the endpoint parameters only then
		params, ok := pod.Annotations[AnnotationsKeyEndpointParams]
		key = appendKeyField(key, ok, params)
	}
	if t.namespaceKey {
		key = appendKeyField(key, true, pod.Namespace)
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			key = binary.AppendUvarint(key, uint64(uint32(cp.ContainerPort)))
			key = appendKeyField(key, true, cp.Name)
		}
	}
	return key
}

// appendKeyField appends a field that may be absent: a presence byte, then the length and bytes.
func appendKeyField(key []byte, present bool, v string) []byte {
	if !present {
		return append(key, 0)
	}
	key = append(key, 1)
	key = binary.AppendUvarint(key, uint64(len(v)))
	return append(key, v...)
}

// withTable returns the translation with a registration table of its own, when sharing can
// pay: a translation that copies every pod label or annotation into metadata makes each pod's
// metadata unique (kratos-service-id, the pod's name…), so it decodes each pod alone.
func (t translation) withTable() translation {
	if t.labelsPrefix == nil && t.annotationsPrefix == nil {
		t.shared = newRegistrationTable()
	}
	return t
}
