package integration

import (
	"bytes"
	"encoding/json"
	"testing"
)

// examples/xds applies to the real API server as `kubectl apply -k examples/xds` renders it, with
// every kind a user needs, and its bootstrap ConfigMap says what the program prints for the same
// server URI.
func (e *xdsEnv) testManifests(t *testing.T) {
	objs := buildKustomization(t, "examples/xds")
	kinds := map[string]int{}
	var bootstrap string
	for _, obj := range objs {
		kinds[obj.GetKind()]++
		if obj.GetKind() == "ConfigMap" && obj.GetName() == "kuberegistry-xds-bootstrap" {
			data, _, _ := unstructuredString(obj.Object, "data", "bootstrap.json")
			bootstrap = data
		}
	}
	want := map[string]int{"ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "Deployment": 3, "Service": 1,
		"PodDisruptionBudget": 1, "ConfigMap": 1}
	for kind, n := range want {
		if kinds[kind] < n {
			t.Errorf("examples/xds renders %d %s, want at least %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	applyObjects(t, newNamespace(t), objs)

	printed := printBootstrap(t, e.bin, "dns:///kuberegistry-xds:18000")
	var got, wantJSON any
	if err := json.Unmarshal([]byte(bootstrap), &got); err != nil {
		t.Fatalf("the ConfigMap's bootstrap.json is not JSON: %v\n%s", err, bootstrap)
	}
	if err := json.Unmarshal(printed, &wantJSON); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(wantJSON)
	if !bytes.Equal(g, w) {
		t.Errorf("examples/xds/bootstrap.yaml holds\n%s\nbut kuberegistry-xds -print-bootstrap -server-uri dns:///kuberegistry-xds:18000 prints\n%s", g, w)
	}
}

// unstructuredString reads a string field of an object.
func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var v any = obj
	for _, f := range fields {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false, nil
		}
		v = m[f]
	}
	s, ok := v.(string)
	return s, ok, nil
}
