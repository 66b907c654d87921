package kuberegistry

import (
	"cmp"
	"errors"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The API server words an admission denial in one of two ways (k8s.io/apiserver's validating
// policy dispatcher and its webhook errors); the status code alone cannot tell it from RBAC's 403
// or a validation error's 422, and each needs a different fix.
var (
	policyDenial  = regexp.MustCompile(`(?s)ValidatingAdmissionPolicy '([^']*)'(?: with binding '([^']*)')? denied request: (.*)$`)
	webhookDenial = regexp.MustCompile(`(?s)admission webhook "([^"]*)" denied the request(?:: (.*)| without explanation)$`)
)

// admissionDenial returns a *PolicyError when err is the API server's report that an admission
// policy or webhook refused action, and nil otherwise.
func admissionDenial(err error, action string) *PolicyError {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return nil
	}
	message := status.Status().Message
	if m := policyDenial.FindStringSubmatch(message); m != nil {
		return &PolicyError{Kind: "ValidatingAdmissionPolicy", Policy: m[1], Binding: m[2], Message: m[3], Action: action, Err: err}
	}
	if m := webhookDenial.FindStringSubmatch(message); m != nil {
		return &PolicyError{Kind: "admission webhook", Policy: m[1], Message: cmp.Or(m[2], "(no explanation given)"), Action: action, Err: err}
	}
	return nil
}
