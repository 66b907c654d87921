package kuberegistry

import (
	"os"
	"strings"
)

// serviceAccountNamespaceFile is where Kubernetes mounts the pod's namespace when the service
// account token is automounted.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// podIdentity names the pod this process runs in; Register patches it.
type podIdentity struct {
	namespace string
	name      string
}

func (p podIdentity) known() bool { return p.namespace != "" && p.name != "" }

func (p podIdentity) String() string { return p.namespace + "/" + p.name }

// environment is the part of the process environment the identity comes from, so that tests can
// stand in for a pod.
type environment struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
}

func processEnvironment() environment {
	return environment{getenv: os.Getenv, readFile: os.ReadFile}
}

// detectPod finds the current pod from, in order: the POD_NAME and POD_NAMESPACE variables that
// the Downward API sets, the service account's namespace file, and HOSTNAME, which Kubernetes sets
// to the pod name unless the pod sets spec.hostname or uses the host network.
func detectPod(env environment) podIdentity {
	name := strings.TrimSpace(env.getenv("POD_NAME"))
	namespace := strings.TrimSpace(env.getenv("POD_NAMESPACE"))
	if namespace == "" {
		if b, err := env.readFile(serviceAccountNamespaceFile); err == nil {
			namespace = strings.TrimSpace(string(b))
		}
	}
	if name == "" && namespace != "" {
		// Only trust HOSTNAME inside a pod: on a laptop it names the laptop.
		name = strings.TrimSpace(env.getenv("HOSTNAME"))
	}
	return podIdentity{namespace: namespace, name: name}
}
