package leanpod

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
)

// fullPod is a pod with every kind of field a real one carries, most of which discovery skips.
func fullPod() *corev1.Pod {
	deleted := metav1.NewTime(time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC))
	grace := int64(30)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "cart-7d9f-x2", GenerateName: "cart-7d9f-", Namespace: "shop", UID: "0b1c-uid",
			ResourceVersion: "4711", Generation: 3, CreationTimestamp: deleted,
			DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: &grace,
			Labels: map[string]string{"kratos-service-app": "cart", "kratos-service-id": "cart-7d9f-x2", "kratos-service-version": "v1.2", "app": "cart"},
			Annotations: map[string]string{
				"kratos-service-metadata":  `{"region":"eu"}`,
				"kratos-service-protocols": `{"8000":"http","9443":"grpc"}`,
				"kubectl.kubernetes.io/x":  "",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7d9f", UID: "rs"}},
			Finalizers:      []string{"example.com/keep"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{}}`)}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{
					Name: "app", Image: "registry.example/cart:1.2",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8000, Protocol: corev1.ProtocolTCP}, {Name: "grpcs", ContainerPort: 9443}},
					Env:   []corev1.EnvVar{{Name: "A", Value: "b"}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"),
					}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8000)}}},
				},
				{Name: "sidecar", Image: "proxy", Ports: []corev1.ContainerPort{{ContainerPort: 15001}}},
			},
			Volumes:     []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
			NodeName:    "node-1",
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: deleted},
			},
			PodIP:             "10.1.2.3",
			PodIPs:            []corev1.PodIP{{IP: "10.1.2.3"}, {IP: "fd00::3"}},
			HostIP:            "192.168.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2, Image: "registry.example/cart:1.2"}},
		},
	}
}

// discoveryView is what discovery reads of a pod: the lean decoder must give exactly this.
func discoveryView(p *corev1.Pod) *corev1.Pod {
	v := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		DeletionTimestamp: p.DeletionTimestamp, Labels: p.Labels, Annotations: p.Annotations,
	}}
	for _, c := range p.Spec.Containers {
		v.Spec.Containers = append(v.Spec.Containers, corev1.Container{Ports: c.Ports})
	}
	v.Status = corev1.PodStatus{Phase: p.Status.Phase, Conditions: p.Status.Conditions, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs}
	return v
}

// The lean decoder keeps exactly the discovery view of a pod.
func TestPodReadsWhatDiscoveryReads(t *testing.T) {
	full := fullPod()
	data, err := full.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var lean Pod
	if err := lean.Unmarshal(data); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if want := discoveryView(full); !equality.Semantic.DeepEqual(&lean.Pod, want) {
		t.Errorf("lean pod:\n%+v\nwant:\n%+v", lean.Pod, *want)
	}
}

// The API server's protobuf envelope, decoded through the lean client's scheme, gives leanPods
// and leanPodLists.
func TestSchemeDecodesEnvelopes(t *testing.T) {
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, ListMeta: metav1.ListMeta{ResourceVersion: "99"}, Items: []corev1.Pod{*fullPod(), *fullPod()}}
	list.Items[1].Name = "cart-2"
	data, err := runtime.Encode(pb, list)
	if err != nil {
		t.Fatal(err)
	}
	lean := protobuf.NewSerializer(Scheme, Scheme)
	obj, _, err := lean.Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	got, ok := obj.(*PodList)
	if !ok {
		t.Fatalf("decoded a %T, want *PodList", obj)
	}
	if got.ResourceVersion != "99" || len(got.Items) != 2 || got.Items[1].Name != "cart-2" ||
		!equality.Semantic.DeepEqual(&got.Items[0].Pod, discoveryView(fullPod())) {
		t.Errorf("decoded list: rv %q, %d items", got.ResourceVersion, len(got.Items))
	}
	if c, ok := got.DeepCopyObject().(*PodList); !ok || !reflect.DeepEqual(c, got) {
		t.Error("DeepCopyObject of a PodList differs from it")
	}
}

func TestPodRejectsMalformedBytes(t *testing.T) {
	data, _ := fullPod().Marshal()
	for _, cut := range []int{1, 2, 7, len(data) / 2, len(data) - 1} {
		var lean Pod
		if err := lean.Unmarshal(data[:cut]); err == nil {
			t.Errorf("a pod cut to %d of %d bytes decoded without error", cut, len(data))
		}
	}
}

// FuzzPod: any bytes decode or fail, never panic; and a pod encoded by the generated code decodes
// to the discovery view of what the full decoder makes of it.
func FuzzPod(f *testing.F) {
	data, _ := fullPod().Marshal()
	f.Add(data, "cart", `{"8000":"http"}`, "10.0.0.1")
	f.Add([]byte{0x0a, 0x80}, "", "", "")
	f.Fuzz(func(t *testing.T, raw []byte, service, protocols, ip string) {
		var lean Pod
		_ = lean.Unmarshal(raw) // must not panic

		pod := fullPod()
		pod.Labels["kratos-service-app"] = service
		pod.Annotations["kratos-service-protocols"] = protocols
		pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		encoded, err := pod.Marshal()
		if err != nil {
			t.Skip()
		}
		var decoded corev1.Pod
		if err := decoded.Unmarshal(encoded); err != nil {
			t.Skip() // not a pod the API server could send
		}
		if err := lean.Unmarshal(encoded); err != nil {
			t.Fatalf("lean decoding failed where the full one did not: %v", err)
		}
		if want := discoveryView(&decoded); !equality.Semantic.DeepEqual(&lean.Pod, want) {
			t.Fatalf("lean pod:\n%+v\nwant:\n%+v", lean.Pod, *want)
		}
	})
}
