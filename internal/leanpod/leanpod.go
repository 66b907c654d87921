// Package leanpod decodes v1 Pods from protobuf with only the fields a service registry reads,
// skipping the rest unread. It needs nothing of kuberegistry: kuberegistry's lean client uses it.
package leanpod

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Pod is a pod decoded from protobuf with only what discovery reads: the metadata without
// owner references, finalizers and managed fields; the containers' ports; the status's phase,
// conditions and IPs. Most of a pod's bytes — environment, probes, resources, volumes, container
// statuses, managed fields — are skipped unread, so a registry (kuberegistry.NewForConfig) lists
// and watches pods at a fraction of the CPU and garbage of a full decode. Decoded from JSON (a
// server that does not speak protobuf), it is the whole pod.
type Pod struct{ corev1.Pod }

// PodList is a PodList of leanPods.
type PodList struct {
	metav1.TypeMeta
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pod `json:"items"`
}

func (p *Pod) DeepCopyObject() runtime.Object { return &Pod{*p.Pod.DeepCopy()} }

// Unmarshal decodes a protobuf v1.Pod, reading only what discovery needs.
func (p *Pod) Unmarshal(data []byte) error {
	p.Pod = corev1.Pod{}
	return decodePod(&p.Pod, data)
}

func (l *PodList) DeepCopyObject() runtime.Object {
	c := &PodList{TypeMeta: l.TypeMeta, Items: make([]Pod, len(l.Items))}
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	for i := range l.Items {
		l.Items[i].Pod.DeepCopyInto(&c.Items[i].Pod)
	}
	return c
}

func (l *PodList) Reset() { *l = PodList{} }

// Unmarshal decodes a protobuf v1.PodList, each pod as decodePod does.
func (l *PodList) Unmarshal(data []byte) error {
	l.ListMeta, l.Items = metav1.ListMeta{}, nil
	return eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return l.ListMeta.Unmarshal(v)
		case num == 2 && typ == protowire.BytesType:
			l.Items = append(l.Items, Pod{})
			return decodePod(&l.Items[len(l.Items)-1].Pod, v)
		}
		return nil
	})
}

// Field numbers of k8s.io/api/core/v1 and k8s.io/apimachinery/pkg/apis/meta/v1 generated.proto,
// which never change: Kubernetes keeps its protobuf wire format stable.
const (
	fieldPodMetadata, fieldPodSpec, fieldPodStatus = 1, 2, 3

	metaName, metaNamespace, metaUID, metaResourceVersion = 1, 3, 5, 6
	metaDeletionTimestamp, metaLabels, metaAnnotations    = 9, 11, 12

	specContainers  = 2
	containerPorts  = 6
	statusPhase     = 1
	statusCondition = 2
	statusPodIP     = 6
	statusPodIPs    = 12
)

// decodePod decodes what discovery reads of a protobuf v1.Pod into pod. Malformed bytes give
// an error, never a panic.
func decodePod(pod *corev1.Pod, data []byte) error {
	return eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldPodMetadata:
			return decodeMeta(&pod.ObjectMeta, v)
		case fieldPodSpec:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != specContainers || typ != protowire.BytesType {
					return nil
				}
				var c corev1.Container
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != containerPorts || typ != protowire.BytesType {
						return nil
					}
					c.Ports = append(c.Ports, corev1.ContainerPort{})
					return c.Ports[len(c.Ports)-1].Unmarshal(v)
				})
				pod.Spec.Containers = append(pod.Spec.Containers, c)
				return err
			})
		case fieldPodStatus:
			return decodeStatus(&pod.Status, v)
		}
		return nil
	})
}

func decodeMeta(m *metav1.ObjectMeta, data []byte) error {
	return eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case metaName:
			m.Name = string(v)
		case metaNamespace:
			m.Namespace = string(v)
		case metaUID:
			m.UID = types.UID(v)
		case metaResourceVersion:
			m.ResourceVersion = string(v)
		case metaDeletionTimestamp:
			m.DeletionTimestamp = &metav1.Time{}
			return m.DeletionTimestamp.Unmarshal(v)
		case metaLabels:
			if m.Labels == nil {
				m.Labels = make(map[string]string)
			}
			return decodeMapEntry(m.Labels, v)
		case metaAnnotations:
			if m.Annotations == nil {
				m.Annotations = make(map[string]string)
			}
			return decodeMapEntry(m.Annotations, v)
		}
		return nil
	})
}

func decodeStatus(s *corev1.PodStatus, data []byte) error {
	return eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case statusPhase:
			s.Phase = corev1.PodPhase(v)
		case statusCondition:
			s.Conditions = append(s.Conditions, corev1.PodCondition{})
			return s.Conditions[len(s.Conditions)-1].Unmarshal(v)
		case statusPodIP:
			s.PodIP = string(v)
		case statusPodIPs:
			s.PodIPs = append(s.PodIPs, corev1.PodIP{})
			return s.PodIPs[len(s.PodIPs)-1].Unmarshal(v)
		}
		return nil
	})
}

// decodeMapEntry decodes one entry of a map<string, string> field (key 1, value 2) into m.
func decodeMapEntry(m map[string]string, data []byte) error {
	var key, value string
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			key = string(v)
		case num == 2 && typ == protowire.BytesType:
			value = string(v)
		}
		return nil
	})
	m[key] = value
	return err
}

var errMalformedProtobuf = errors.New("malformed protobuf")

// eachField calls fn with every field of a protobuf message: its number, its wire type, and, for
// a length-delimited field, its bytes (nil for other types, which callers here skip).
func eachField(data []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformedProtobuf, protowire.ParseError(n))
		}
		data = data[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(data)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformedProtobuf, num, protowire.ParseError(n))
		}
		data = data[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// Scheme knows v1 Pods and PodLists as Pod and PodList, and the meta types the API
// server answers with (Status on errors, WatchEvent frames).
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Pod"), &Pod{})
	s.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("PodList"), &PodList{})
	metav1.AddToGroupVersion(s, corev1.SchemeGroupVersion)
	return s
}()
