package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// finding is one check of doctor: what was checked, its result, and what to do.
type finding struct {
	Check  string `json:"check"`
	Result string `json:"result"` // "ok", "missing", "unknown" or "skipped"
	Detail string `json:"detail,omitempty"`
}

// permissionChecks are what discovery and registration need, with the manifest that grants each.
var permissionChecks = []struct {
	verb, group, resource, what, fix string
}{
	{"list", "", "pods", "pod discovery", "bind examples/deploy/role-discovery.yaml"},
	{"watch", "", "pods", "pod discovery", "bind examples/deploy/role-discovery.yaml"},
	{"patch", "", "pods", "registration", "bind examples/deploy/role-registrar.yaml"},
	{"list", "discovery.k8s.io", "endpointslices", "Service discovery", "grant list and watch on endpointslices (see the README)"},
	{"watch", "discovery.k8s.io", "endpointslices", "Service discovery", "grant list and watch on endpointslices (see the README)"},
}

// errFindings is what doctor returns when a check needs attention, so that it exits non-zero.
var errFindings = errors.New("some checks need attention (see above)")

func doctorCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check what discovery and registration need, for the current identity and namespace",
		Long: "doctor checks, for the current identity: the server version; with SelfSubjectAccessReviews,\n" +
			"each permission discovery and registration need in the namespace; whether the admission\n" +
			"policy of examples/deploy is installed; and, inside a pod, the Downward API variables.\n" +
			"Each finding says how to fix it. It exits non-zero when a check is missing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			client, ns, err := o.client()
			if err != nil {
				return err
			}
			findings := diagnose(cmd.Context(), client, ns, os.Getenv)
			t := &table{headers: []string{"CHECK", "RESULT", "DETAIL"}}
			missing := false
			for _, f := range findings {
				t.add(f.Check, f.Result, f.Detail)
				missing = missing || f.Result == "missing"
			}
			if err := o.emit(findings, t); err != nil {
				return err
			}
			if missing {
				return errFindings
			}
			return nil
		},
	}
}

// diagnose runs doctor's checks; getenv reads the environment (inside a pod: the Downward API).
func diagnose(ctx context.Context, client kubernetes.Interface, ns string, getenv func(string) string) []finding {
	var findings []finding
	if v, err := client.Discovery().ServerVersion(); err != nil {
		findings = append(findings, finding{"server version", "missing", "cannot reach the API server: " + err.Error()})
	} else {
		detail := v.GitVersion
		if minor, err := strconv.Atoi(strings.TrimSuffix(v.Minor, "+")); err == nil && v.Major == "1" && minor < 30 {
			detail += ": the admission policy needs 1.30 or later"
		}
		findings = append(findings, finding{"server version", "ok", detail})
	}
	scope := "namespace " + ns
	if ns == "" {
		scope = "all namespaces"
	}
	for _, p := range permissionChecks {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: p.verb, Group: p.group, Resource: p.resource,
			}},
		}, metav1.CreateOptions{})
		check := fmt.Sprintf("%s %s in %s", p.verb, p.resource, scope)
		switch {
		case err != nil:
			findings = append(findings, finding{check, "unknown", err.Error()})
		case review.Status.Allowed:
			findings = append(findings, finding{check, "ok", "for " + p.what})
		default:
			findings = append(findings, finding{check, "missing", "needed for " + p.what + ": " + p.fix})
		}
	}
	_, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "kuberegistry-registrar", metav1.GetOptions{})
	switch {
	case err == nil:
		findings = append(findings, finding{"admission policy", "ok", "kuberegistry-registrar is installed"})
	case apierrors.IsNotFound(err):
		findings = append(findings, finding{"admission policy", "missing",
			"registrars can relabel any pod of their namespace: apply examples/deploy/admission-policy.yaml (a cluster administrator)"})
	default:
		findings = append(findings, finding{"admission policy", "unknown", "cannot read ValidatingAdmissionPolicies: " + err.Error()})
	}
	if getenv("KUBERNETES_SERVICE_HOST") == "" {
		findings = append(findings, finding{"pod identity", "skipped", "not running in a pod"})
	} else if getenv("POD_NAME") == "" || getenv("POD_NAMESPACE") == "" {
		findings = append(findings, finding{"pod identity", "missing",
			"set POD_NAME and POD_NAMESPACE with the Downward API (fieldRef metadata.name, metadata.namespace)"})
	} else {
		findings = append(findings, finding{"pod identity", "ok", getenv("POD_NAMESPACE") + "/" + getenv("POD_NAME")})
	}
	return findings
}
