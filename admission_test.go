package kuberegistry

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// policyDenied builds the error the API server returns when a ValidatingAdmissionPolicy denies a
// request, as k8s.io/apiserver's dispatcher words it: a Forbidden status whose reason and code
// are the validation's (Invalid and 422 unless the policy says otherwise).
func policyDenied(policy, binding, message string, reason metav1.StatusReason, code int32) error {
	err := apierrors.NewForbidden(podsResource, "other",
		errors.New("ValidatingAdmissionPolicy '"+policy+"' with binding '"+binding+"' denied request: "+message))
	err.ErrStatus.Reason, err.ErrStatus.Code = reason, code
	return err
}

func TestAdmissionDenial(t *testing.T) {
	tests := []struct {
		name                  string
		err                   error
		kind, policy, binding string
		message               string
	}{
		{
			name: "policy, reason Forbidden", kind: "ValidatingAdmissionPolicy",
			err:    policyDenied("kuberegistry-registrar", "kuberegistry-registrar", "may change only its own pod", metav1.StatusReasonForbidden, http.StatusForbidden),
			policy: "kuberegistry-registrar", binding: "kuberegistry-registrar", message: "may change only its own pod",
		},
		{
			name: "policy, default reason Invalid", kind: "ValidatingAdmissionPolicy",
			err:    policyDenied("p", "b", "line one\nline two", metav1.StatusReasonInvalid, http.StatusUnprocessableEntity),
			policy: "p", binding: "b", message: "line one\nline two",
		},
		{
			name: "policy without binding", kind: "ValidatingAdmissionPolicy",
			err:    apierrors.NewForbidden(podsResource, "x", errors.New("ValidatingAdmissionPolicy 'p' denied request: no")),
			policy: "p", message: "no",
		},
		{
			name: "webhook", kind: "admission webhook",
			err:    apierrors.NewForbidden(podsResource, "x", errors.New(`admission webhook "pods.example.com" denied the request: labels are frozen`)),
			policy: "pods.example.com", message: "labels are frozen",
		},
		{
			name: "webhook without a message", kind: "admission webhook",
			err:    apierrors.NewForbidden(podsResource, "x", errors.New(`admission webhook "pods.example.com" denied the request without explanation`)),
			policy: "pods.example.com", message: "(no explanation given)",
		},
		{name: "RBAC", err: apierrors.NewForbidden(podsResource, "x", errors.New(`User "u" cannot patch resource "pods"`))},
		{name: "invalid object", err: apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil)},
		{name: "no status", err: errors.New("ValidatingAdmissionPolicy 'p' denied request: not from a server")},
		{name: "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := admissionDenial(tt.err, "patch pod shop/self")
			if tt.policy == "" {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, tt.kind, got.Kind)
			assert.Equal(t, tt.policy, got.Policy)
			assert.Equal(t, tt.binding, got.Binding)
			assert.Equal(t, tt.message, got.Message)
			assert.ErrorIs(t, got, tt.err)
		})
	}
}

// A registration the cluster's admission policy refuses fails at once, with no retry, and says
// which policy refused and why; neither the RBAC advice nor the "too large" guess is given.
func TestRegisterReportsAdmissionPolicy(t *testing.T) {
	for _, code := range []int32{http.StatusForbidden, http.StatusUnprocessableEntity} {
		f := newFixture(t)
		var calls atomic.Int32
		reason := metav1.StatusReasonForbidden
		if code == http.StatusUnprocessableEntity {
			reason = metav1.StatusReasonInvalid
		}
		f.client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			calls.Add(1)
			return true, nil, policyDenied("kuberegistry-registrar", "kuberegistry-registrar",
				"registrar system:serviceaccount:shop:hello may register only the services hello (its ConfigMap lists them), not payments",
				reason, code)
		})
		err := f.reg.Register(context.Background(), &ServiceInstance{Name: "payments"})
		var denied *PolicyError
		require.ErrorAs(t, err, &denied)
		assert.Equal(t, int32(1), calls.Load(), "a denial is not retried")
		assert.Equal(t, "kuberegistry-registrar", denied.Policy)
		assert.Equal(t, "patch pod shop/self", denied.Action)
		assert.Equal(t, `kuberegistry: ValidatingAdmissionPolicy "kuberegistry-registrar" (binding "kuberegistry-registrar") `+
			`refused to patch pod shop/self: registrar system:serviceaccount:shop:hello may register only the services hello `+
			`(its ConfigMap lists them), not payments`, err.Error())
		var perm *PermissionError
		assert.False(t, errors.As(err, &perm), "not an RBAC problem")

		err = f.reg.Deregister(context.Background(), nil)
		require.ErrorAs(t, err, &denied, "Deregister reports it the same way")
	}
}
