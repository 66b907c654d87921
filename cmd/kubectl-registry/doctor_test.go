package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestDiagnose(t *testing.T) {
	client := fake.NewClientset()
	// Allowed: only list and watch of pods, as the discovery Role grants.
	client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := review.Spec.ResourceAttributes
		review.Status.Allowed = attrs.Resource == "pods" && attrs.Verb != "patch"
		return true, review, nil
	})
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "POD_NAME": "cart-0"}
	got := map[string]string{}
	for _, f := range diagnose(context.Background(), client, "shop", func(k string) string { return env[k] }) {
		got[f.Check] = f.Result
	}
	assert.Equal(t, map[string]string{
		"server version":                         "ok",
		"list pods in namespace shop":            "ok",
		"watch pods in namespace shop":           "ok",
		"patch pods in namespace shop":           "missing",
		"list endpointslices in namespace shop":  "missing",
		"watch endpointslices in namespace shop": "missing",
		"admission policy":                       "missing",
		"pod identity":                           "missing", // POD_NAMESPACE is not set
	}, got)
}

func TestTablePrintsWideColumnsOnlyWhenAsked(t *testing.T) {
	tb := &table{headers: []string{"NAME", "STATE"}, wide: []string{"ENDPOINTS"}}
	tb.add("cart-0", "ready", "grpc://10.0.0.1:9000")
	var narrow, wide bytes.Buffer
	require.NoError(t, tb.print(&narrow, false))
	require.NoError(t, tb.print(&wide, true))
	assert.Equal(t, "NAME     STATE\ncart-0   ready\n", narrow.String())
	assert.Equal(t, "NAME     STATE   ENDPOINTS\ncart-0   ready   grpc://10.0.0.1:9000\n", wide.String())
}

func TestUnknownOutputFormatIsAnError(t *testing.T) {
	assert.ErrorContains(t, (&options{output: "xml"}).validate(), `unknown output format "xml": use wide, json or yaml`)
}
