package naive

import (
	"testing"

	"github.com/kuberegistry/kuberegistry/bench/workload"
)

// The baseline must find what kuberegistry finds, or comparing with it means nothing.
func TestDecodeMatchesTheScenario(t *testing.T) {
	s := workload.Scenario{Pods: 4, Registered: 2, Services: 1}
	in, ok := decode(s.Pod("ns", 1))
	if !ok || len(in.Endpoints) != 2 || in.Metadata["team"] != "checkout" {
		t.Fatalf("decode = %+v, %v", in, ok)
	}
}
