package kuberegistry

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// tableTranslation is the default translation with a registration table, as New makes it.
func tableTranslation() translation { return defaultTranslation.withTable() }

func replica(name, ip string) podSpec {
	spec := registered("cart", `{"8000":"http","9000":"grpc"}`)
	spec.name = name
	spec.labels[LabelsKeyServiceID] = name
	spec.annotations[AnnotationsKeyMetadata] = `{"region":"eu","team":"checkout"}`
	spec.ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}, {Name: "grpc", ContainerPort: 9000}}
	spec.ips = []string{ip}
	return spec
}

func TestReplicasShareOneRegistration(t *testing.T) {
	tr := tableTranslation()
	a := tr.translate(newPod(replica("cart-1", "10.0.0.1")), nil)
	b := tr.translate(newPod(replica("cart-2", "10.0.0.2")), nil)
	if a.instance == nil || b.instance == nil {
		t.Fatalf("no instance: %q %q", a.problem(), b.problem())
	}
	if a.registration != b.registration {
		t.Fatal("two replicas with the same registration decoded it twice")
	}
	if reflect.ValueOf(a.instance.Metadata).UnsafePointer() != reflect.ValueOf(b.instance.Metadata).UnsafePointer() {
		t.Error("two replicas with the same registration hold two metadata maps")
	}
	want := map[string]string{"region": "eu", "team": "checkout"}
	if !reflect.DeepEqual(b.instance.Metadata, want) {
		t.Errorf("metadata = %v, want %v", b.instance.Metadata, want)
	}
	if got := b.instance.Endpoints; !reflect.DeepEqual(got, []string{"http://10.0.0.2:8000", "grpc://10.0.0.2:9000"}) {
		t.Errorf("endpoints = %v", got)
	}
}

// An update that leaves the registration alone keeps the instance itself, so that republishing
// the service compares it by pointer; any change to what the instance is made of makes a new one.
func TestUpdateKeepsUnchangedInstance(t *testing.T) {
	tr := tableTranslation()
	first := tr.translate(newPod(replica("cart-1", "10.0.0.1")), nil)

	notReady := replica("cart-1", "10.0.0.1")
	notReady.notReady = true
	flipped := tr.translate(newPod(notReady), &first)
	if flipped.state != podNotReady || flipped.instance != first.instance {
		t.Fatalf("a readiness flip made a new instance (state %v)", flipped.state)
	}

	changes := map[string]func(*podSpec){
		"metadata":   func(s *podSpec) { s.annotations[AnnotationsKeyMetadata] = `{"region":"us"}` },
		"protocols":  func(s *podSpec) { s.annotations[AnnotationsKeyProtocolMap] = `{"8000":"http"}` },
		"params":     func(s *podSpec) { s.annotations[AnnotationsKeyEndpointParams] = `{"8000":"a=b"}` },
		"ip":         func(s *podSpec) { s.ips = []string{"10.0.0.9"} },
		"second ip":  func(s *podSpec) { s.ips = append(s.ips, "fd00::1") },
		"id":         func(s *podSpec) { s.labels[LabelsKeyServiceID] = "other" },
		"version":    func(s *podSpec) { s.labels[LabelsKeyServiceVersion] = "v2" },
		"port name":  func(s *podSpec) { s.ports[0].Name = "https" },
		"port":       func(s *podSpec) { s.ports[1].ContainerPort = 9443 },
		"no ports":   func(s *podSpec) { s.ports = nil },
		"id annot.":  func(s *podSpec) { s.annotations[AnnotationsKeyServiceID] = "cart 1" },
		"ver annot.": func(s *podSpec) { s.annotations[AnnotationsKeyServiceVersion] = "v1 beta" },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			spec := replica("cart-1", "10.0.0.1")
			change(&spec)
			got := tr.translate(newPod(spec), &first)
			want := translatePod(newPod(spec)) // decoded alone, without table or earlier version
			if got.instance == first.instance {
				t.Fatal("the instance was kept across a change to what it is made of")
			}
			if !got.instance.equal(want.instance) {
				t.Errorf("instance = %+v, want %+v", got.instance, want.instance)
			}
		})
	}
}

// Two pods that differ in anything the registration is made of never share one, however their
// fields are cut: the key is length prefixed, and tells an absent annotation from an empty one.
func TestRegistrationKeyIsUnambiguous(t *testing.T) {
	tr := tableTranslation()
	base := func() podSpec {
		spec := replica("cart-1", "10.0.0.1")
		delete(spec.annotations, AnnotationsKeyMetadata)
		return spec
	}
	variants := []func(*podSpec){
		func(*podSpec) {},
		func(s *podSpec) { s.annotations[AnnotationsKeyMetadata] = `{}` },
		func(s *podSpec) { s.annotations[AnnotationsKeyEndpointParams] = `{}` },
		func(s *podSpec) { s.ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}} },
		func(s *podSpec) {
			s.ports = []corev1.ContainerPort{{Name: "ht", ContainerPort: 8000}, {Name: "tp", ContainerPort: 9000}}
		},
		func(s *podSpec) { s.ports = append(s.ports, corev1.ContainerPort{ContainerPort: 7000}) },
	}
	keys := map[string]int{}
	for i, v := range variants {
		spec := base()
		v(&spec)
		key := string(tr.appendRegistrationKey(nil, newPod(spec)))
		if j, dup := keys[key]; dup {
			t.Errorf("variants %d and %d have the same key %q", j, i, key)
		}
		keys[key] = i
	}
}

func TestRegistrationTableIsBounded(t *testing.T) {
	tr := tableTranslation()
	for i := range 3*maxRegistrations + 10 {
		spec := replica("cart-1", "10.0.0.1")
		spec.annotations[AnnotationsKeyMetadata] = fmt.Sprintf(`{"n":"%d"}`, i)
		if pi := tr.translate(newPod(spec), nil); pi.instance == nil {
			t.Fatal(pi.problem())
		}
	}
	if n := len(tr.shared.current) + len(tr.shared.previous); n > 2*maxRegistrations {
		t.Errorf("the table holds %d registrations, more than 2×%d", n, maxRegistrations)
	}
	// Large registrations fill a generation by bytes first.
	big := strings.Repeat("x", 30<<10)
	for i := range 200 {
		spec := replica("cart-1", "10.0.0.1")
		spec.annotations[AnnotationsKeyMetadata] = fmt.Sprintf(`{"n":"%d","pad":"%s"}`, i, big)
		if pi := tr.translate(newPod(spec), nil); pi.instance == nil {
			t.Fatal(pi.problem())
		}
	}
	bytes := 0
	for _, m := range []map[string]*decodedRegistration{tr.shared.current, tr.shared.previous} {
		for k := range m {
			bytes += len(k)
		}
	}
	if bytes > 2*maxRegistrationBytes {
		t.Errorf("the table holds %d bytes of keys, more than 2×%d", bytes, maxRegistrationBytes)
	}
	// A key longer than maxRegistrationKey is decoded alone, and its buffer not kept.
	huge := replica("cart-1", "10.0.0.1")
	huge.ports[0].Name = strings.Repeat("p", maxRegistrationKey)
	a, b := tr.translate(newPod(huge), nil), tr.translate(newPod(huge), nil)
	if a.instance == nil || a.registration == b.registration || cap(tr.shared.key) > maxRegistrationKey {
		t.Errorf("an outsized registration was remembered (shared %v, buffer %d bytes)", a.registration == b.registration, cap(tr.shared.key))
	}
	// What fell out of the table is decoded again, the same.
	spec := replica("cart-1", "10.0.0.1")
	spec.annotations[AnnotationsKeyMetadata] = `{"n":"0"}`
	if got := tr.translate(newPod(spec), nil).instance.Metadata["n"]; got != "0" {
		t.Errorf("metadata n = %q after eviction, want 0", got)
	}
}

// Copying every pod label or annotation into metadata makes each pod's registration its own:
// such a translation keeps no table.
func TestNoTableWhenMetadataIsPerPod(t *testing.T) {
	prefix := "label."
	tr := defaultTranslation
	tr.labelsPrefix = &prefix
	if tr.withTable().shared != nil {
		t.Error("a translation that copies pod labels has a registration table")
	}
}
