package xds

import (
	"context"
	"slices"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/kuberegistry/kuberegistry"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// scriptedTier is an ADS server whose responses the test writes and whose requests it reads, to
// check the Discovery's side of the protocol: subscriptions, ACKs and NACKs.
type scriptedTier struct {
	discoverygrpc.UnimplementedAggregatedDiscoveryServiceServer
	requests  chan *discoverygrpc.DeltaDiscoveryRequest
	responses chan *discoverygrpc.DeltaDiscoveryResponse
}

func (s *scriptedTier) DeltaAggregatedResources(stream discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	errs := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errs <- err
				return
			}
			select {
			case s.requests <- req:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	for {
		select {
		case resp := <-s.responses:
			if err := stream.Send(resp); err != nil {
				return err
			}
		case err := <-errs:
			return err
		case <-stream.Context().Done():
			return nil
		}
	}
}

func startScriptedTier(t *testing.T) (*scriptedTier, string) {
	t.Helper()
	s := &scriptedTier{requests: make(chan *discoverygrpc.DeltaDiscoveryRequest, 16), responses: make(chan *discoverygrpc.DeltaDiscoveryResponse)}
	g := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s)
	ln := listen(t, "127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(ln)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
	})
	return s, ln.Addr().String()
}

// expect reads the next request and checks its type, nonce and whether it is a NACK.
func (s *scriptedTier) expect(t *testing.T, typeURL, nonce string, nack bool) *discoverygrpc.DeltaDiscoveryRequest {
	t.Helper()
	select {
	case req := <-s.requests:
		if req.GetTypeUrl() != typeURL || req.GetResponseNonce() != nonce || (req.GetErrorDetail() != nil) != nack {
			t.Fatalf("request %v; want type %s, nonce %q, NACK %v", req, typeURL, nonce, nack)
		}
		return req
	case <-time.After(10 * time.Second):
		t.Fatalf("no request of type %s, nonce %q", typeURL, nonce)
		return nil
	}
}

func (s *scriptedTier) send(t *testing.T, resp *discoverygrpc.DeltaDiscoveryResponse) {
	t.Helper()
	select {
	case s.responses <- resp:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is gone")
	}
}

func resource(t *testing.T, name, version string, m proto.Message) *discoverygrpc.Resource {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoverygrpc.Resource{Name: name, Version: version, Resource: a}
}

// A Discovery subscribes to every cluster with its node, to the names it is asked for, ACKs what
// it applies and NACKs, without applying it, a response it cannot read.
func TestDiscoveryAcksAndNacks(t *testing.T) {
	tier, addr := startScriptedTier(t)
	d := newDiscovery(t, addr)

	first := tier.expect(t, clusterType, "", false)
	if first.GetNode().GetId() != "test" || !slices.Equal(first.GetResourceNamesSubscribe(), []string{"*"}) {
		t.Fatalf("first request %v: want the node and a subscription to every cluster", first)
	}
	tier.send(t, &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: clusterType, Nonce: "1", Resources: []*discoverygrpc.Resource{
		resource(t, "cart", "c1", clusterFor("cart", false, true)),
	}})
	tier.expect(t, clusterType, "1", false)

	got := make(chan []*kuberegistry.ServiceInstance, 1)
	go func() {
		instances, err := d.GetService(context.Background(), "cart")
		if err != nil {
			t.Error(err)
		}
		got <- instances
	}()
	sub := tier.expect(t, endpointType, "", false)
	if !slices.Equal(sub.GetResourceNamesSubscribe(), []string{"cart"}) {
		t.Fatalf("subscription %v: want cart", sub)
	}
	set := []*kuberegistry.ServiceInstance{{ID: "cart-0", Name: "cart", Endpoints: []string{"grpc://10.0.0.1:9000"}}}
	tier.send(t, &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: endpointType, Nonce: "2", Resources: []*discoverygrpc.Resource{
		resource(t, "cart", "e1", assignmentFor("cart", set)),
	}})
	tier.expect(t, endpointType, "2", false)
	if instances := <-got; !slices.Equal(ids(instances), []string{"cart-0"}) {
		t.Fatalf("GetService = %v", ids(instances))
	}

	broken := assignmentFor("cart", set)
	broken.Endpoints[0].LbEndpoints[0].Metadata.FilterMetadata[InstanceMetadataKey].Fields["id"] = structpb.NewBoolValue(true)
	tier.send(t, &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: endpointType, Nonce: "3", Resources: []*discoverygrpc.Resource{
		resource(t, "cart", "e2", broken),
	}})
	nack := tier.expect(t, endpointType, "3", true)
	t.Logf("NACK: %s", nack.GetErrorDetail().GetMessage())
	if instances, _ := d.GetService(context.Background(), "cart"); !slices.Equal(ids(instances), []string{"cart-0"}) {
		t.Errorf("after a NACK, GetService = %v, want the last set", ids(instances))
	}

	tier.send(t, &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: endpointType, Nonce: "4", RemovedResources: []string{"cart"}})
	tier.expect(t, endpointType, "4", false)
	if instances, _ := d.GetService(context.Background(), "cart"); len(instances) != 0 {
		t.Errorf("after the assignment was removed, GetService = %v", ids(instances))
	}
}
