package kuberegistry

import (
	"testing"

	"github.com/kuberegistry/kuberegistry/internal/leanpod"
	corev1 "k8s.io/api/core/v1"
)

// A pod decoded lean translates exactly as the same pod decoded whole: the fields the lean decoder
// skips are none that discovery reads (internal/leanpod's tests check the decoder field by field).
func TestLeanPodTranslatesLikeAFullPod(t *testing.T) {
	spec := registered("cart", `{"8000":"http","9000":"grpc"}`)
	spec.name, spec.ips = "cart-0", []string{"10.0.0.1", "fd00::1"}
	spec.annotations[AnnotationsKeyMetadata] = `{"zone":"a"}`
	full := newPod(spec)
	full.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SECRET", Value: "skipped"}}
	data, err := full.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var lean leanpod.Pod
	if err := lean.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	got, want := translatePod(&lean.Pod), translatePod(full)
	if got.problem() != want.problem() || got.state != want.state || !got.instance.equal(want.instance) {
		t.Errorf("translated lean: %+v %v %q, full: %+v %v %q", got.instance, got.state, got.problem(), want.instance, want.state, want.problem())
	}
}

// FuzzLeanPod: a pod encoded by the generated code translates the same through the lean decoder
// as through the full one, whatever its registration.
func FuzzLeanPod(f *testing.F) {
	f.Add("cart", `{"8000":"http"}`, `{"zone":"a"}`, "10.0.0.1")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, service, protocols, metadata, ip string) {
		spec := registered(service, protocols)
		spec.name, spec.ips = "cart-0", []string{ip}
		spec.annotations[AnnotationsKeyMetadata] = metadata
		encoded, err := newPod(spec).Marshal()
		if err != nil {
			t.Skip()
		}
		var decoded corev1.Pod
		if err := decoded.Unmarshal(encoded); err != nil {
			t.Skip() // not a pod the API server could send
		}
		var lean leanpod.Pod
		if err := lean.Unmarshal(encoded); err != nil {
			t.Fatalf("lean decoding failed where the full one did not: %v", err)
		}
		got, want := translatePod(&lean.Pod), translatePod(&decoded)
		if got.problem() != want.problem() || got.state != want.state || (got.instance == nil) != (want.instance == nil) ||
			(got.instance != nil && !got.instance.equal(want.instance)) {
			t.Fatalf("lean: %+v %q, full: %+v %q", got.instance, got.problem(), want.instance, want.problem())
		}
	})
}
