// Package workload makes the pods of the benchmark scenario: realistic pod specs (two containers,
// environment variables, probes, resources, volumes) as a real cluster holds them, some registered
// as service instances and most not.
package workload

import (
	"fmt"

	"github.com/kuberegistry/kuberegistry"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Scenario sizes a fleet: Pods pods in all, Registered of them instances of Services services.
type Scenario struct {
	Pods       int
	Registered int
	Services   int
}

// Default is the scenario of the performance targets.
var Default = Scenario{Pods: 10000, Registered: 5000, Services: 500}

// Service names service i.
func Service(i int) string { return fmt.Sprintf("svc-%03d", i) }

// PodName names pod i.
func PodName(i int) string { return fmt.Sprintf("pod-%05d", i) }

// IP is the address of pod i.
func IP(i int) string { return fmt.Sprintf("10.%d.%d.%d", 100+i/65536, i/256%256, i%256) }

// ServiceOf returns the service pod i belongs to, or -1 when it is not registered.
func (s Scenario) ServiceOf(i int) int {
	if i >= s.Registered {
		return -1
	}
	return i % s.Services
}

// Pod builds pod i of the scenario, running and ready.
func (s Scenario) Pod(namespace string, i int) *corev1.Pod {
	labels := map[string]string{
		"app.kubernetes.io/name":      fmt.Sprintf("app-%03d", i%s.Services),
		"app.kubernetes.io/part-of":   "shop",
		"app.kubernetes.io/version":   "1.42.0",
		"pod-template-hash":           "7c5ddbdf54",
		"app.kubernetes.io/component": "backend",
	}
	annotations := map[string]string{
		"kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z",
		"prometheus.io/scrape":              "true",
		"prometheus.io/port":                "9090",
	}
	if svc := s.ServiceOf(i); svc >= 0 {
		labels[kuberegistry.LabelsKeyServiceName] = Service(svc)
		labels[kuberegistry.LabelsKeyServiceID] = fmt.Sprintf("%08x-c77f-4a95-8190-393efa9c1a61", i)
		labels[kuberegistry.LabelsKeyServiceVersion] = "v1.42.0"
		annotations[kuberegistry.AnnotationsKeyProtocolMap] = `{"8000":"http","9000":"grpc"}`
		annotations[kuberegistry.AnnotationsKeyMetadata] = `{"region":"eu-west-1","zone":"eu-west-1a","cluster":"prod-1","team":"checkout"}`
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        PodName(i),
			Labels:      labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("app-%03d-7c5ddbdf54", i%s.Services),
				UID: "5f4dcc3b-5aa7-65d6-1d83-27de882cf99a", Controller: new(true), BlockOwnerDeletion: new(true),
			}},
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{appContainer(), sidecarContainer()},
			Volumes:                       []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: new(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "default",
			AutomountServiceAccountToken:  new(false),
			SchedulerName:                 "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
			},
		},
	}
	SetStatus(pod, i, true)
	return pod
}

// SetStatus writes what a kubelet reports for a running pod i, ready or not.
func SetStatus(pod *corev1.Pod, i int, ready bool) {
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		HostIP: "192.168.1.10",
		PodIP:  IP(i),
		PodIPs: []corev1.PodIP{{IP: IP(i)}},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		StartTime: &now,
		QOSClass:  corev1.PodQOSBurstable,
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", Ready: ready, Image: "registry.example.com/shop/app:1.42.0", ImageID: "registry.example.com/shop/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ContainerID: "containerd://4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce", Started: new(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}},
			{Name: "proxy", Ready: ready, Image: "registry.example.com/mesh/proxy:1.20.1", ImageID: "registry.example.com/mesh/proxy@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", ContainerID: "containerd://fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", Started: new(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}},
		},
	}
}

func appContainer() corev1.Container {
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    10,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: 3,
		}
	}
	return corev1.Container{
		Name:  "app",
		Image: "registry.example.com/shop/app:1.42.0",
		Args:  []string{"--config=/etc/app/config.yaml", "--log-level=info"},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8000, Protocol: corev1.ProtocolTCP},
			{Name: "grpc", ContainerPort: 9000, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
			{Name: "GOMAXPROCS", Value: "2"},
			{Name: "DATABASE_URL", Value: "postgres://shop@db.shop.svc.cluster.local:5432/shop?sslmode=require"},
			{Name: "CACHE_ADDR", Value: "redis.shop.svc.cluster.local:6379"},
			{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability.svc.cluster.local:4317"},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		VolumeMounts:             []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app", ReadOnly: true}},
		LivenessProbe:            probe("/healthz"),
		ReadinessProbe:           probe("/readyz"),
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
	}
}

func sidecarContainer() corev1.Container {
	return corev1.Container{
		Name:  "proxy",
		Image: "registry.example.com/mesh/proxy:1.20.1",
		Args:  []string{"proxy", "sidecar", "--concurrency=2"},
		Ports: []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "PROXY_CONFIG", Value: `{"discoveryAddress":"istiod.istio-system.svc:15012","tracing":{"zipkin":{"address":"zipkin.istio-system:9411"}}}`},
			{Name: "ISTIO_META_WORKLOAD_NAME", Value: "app"},
			{Name: "ISTIO_META_MESH_ID", Value: "cluster.local"},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
	}
}
