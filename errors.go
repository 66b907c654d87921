package kuberegistry

import (
	"context"
	"errors"
	"fmt"
)

var (
	// ErrNotStarted is returned by GetService and Watch before Start has returned successfully.
	ErrNotStarted = errors.New("kuberegistry: not started: call Start before GetService or Watch")
	// ErrAlreadyStarted is returned by a second call to Start.
	ErrAlreadyStarted = errors.New("kuberegistry: registry already started: call Start once")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("kuberegistry: closed: build a new one to discover again")
	// ErrInvalidInstance wraps every problem found in a ServiceInstance given to Register.
	ErrInvalidInstance = errors.New("kuberegistry: invalid service instance")
	// ErrInvalidName is returned for a service name that cannot be a Kubernetes label value.
	ErrInvalidName = errors.New("kuberegistry: invalid service name")
	// ErrInvalidOption is returned by New for a bad option or client.
	ErrInvalidOption = errors.New("kuberegistry: invalid option")
	// ErrStale is wrapped by the error Check returns when discovery has not been in sync with the
	// API server for longer than it allows; the error also wraps the last failure (a
	// *PermissionError when RBAC refused). Discovery keeps serving the last known instances.
	ErrStale = errors.New("kuberegistry: discovery is stale")
	// ErrNoPodIdentity is returned by Register and Deregister when the registry cannot tell which
	// pod it runs in.
	ErrNoPodIdentity = errors.New("kuberegistry: cannot tell which pod this process runs in: " +
		"set the POD_NAME and POD_NAMESPACE environment variables with the Downward API " +
		"(fieldRef metadata.name and metadata.namespace) or pass WithPod")
)

// PermissionError reports that the Kubernetes API server refused a request for lack of RBAC
// permission, and names the rule that would allow it.
type PermissionError struct {
	Verb      string // the verb that was refused, e.g. "patch"
	Resource  string // the resource, e.g. "pods"
	Namespace string // the namespace, "" for all namespaces
	Err       error  // the API server's answer
}

func (e *PermissionError) Error() string {
	scope := fmt.Sprintf("in namespace %q (a Role and RoleBinding there)", e.Namespace)
	if e.Namespace == "" {
		scope = "in all namespaces (a ClusterRole and ClusterRoleBinding)"
	}
	return fmt.Sprintf("kuberegistry: not allowed to %s %s %s: grant verb %q on resource %q to this pod's service account: %v",
		e.Verb, e.Resource, scope, e.Verb, e.Resource, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// PolicyError reports that an admission control of the cluster refused a request that RBAC
// allowed: a ValidatingAdmissionPolicy, such as the one in examples/deploy that lets a registrar
// change only its own pod's registry keys, or a validating admission webhook. It is never
// retried: the same request would be refused again.
type PolicyError struct {
	Kind    string // "ValidatingAdmissionPolicy" or "admission webhook"
	Policy  string // the policy's or the webhook's name
	Binding string // the ValidatingAdmissionPolicyBinding, when the API server names it
	Message string // the policy's own message
	Action  string // what was refused, e.g. "patch pod shop/cart-0"
	Err     error  // the API server's answer
}

func (e *PolicyError) Error() string {
	by := fmt.Sprintf("%s %q", e.Kind, e.Policy)
	if e.Binding != "" {
		by += fmt.Sprintf(" (binding %q)", e.Binding)
	}
	return fmt.Sprintf("kuberegistry: %s refused to %s: %s", by, e.Action, e.Message)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// stoppedError is what Next returns once a watcher ends. It always matches context.Canceled, so
// that callers written for go-kratos, which exit their loop on context.Canceled, exit; it also
// matches the cause, such as ErrClosed or context.DeadlineExceeded.
type stoppedError struct{ cause error }

func (e *stoppedError) Error() string { return "kuberegistry: watcher stopped: " + e.cause.Error() }

func (e *stoppedError) Is(target error) bool { return target == context.Canceled }

func (e *stoppedError) Unwrap() error { return e.cause }
