package xds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/kuberegistry/kuberegistry"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// The ADS stream of a Discovery, in the incremental (delta) protocol: one goroutine owns the
// stream, sends the subscriptions as they change and an ACK (or a NACK) after each response,
// and opens a new stream with backoff when it breaks.

// backoff is the wait before a new stream after failures in a row.
type backoff struct{ base, max time.Duration }

// delay returns the wait after the given number of failures in a row: base doubled at each,
// at most max, with ±20% jitter so that clients do not reconnect all at once.
func (b backoff) delay(failures int) time.Duration {
	d := b.base
	for i := 0; i < failures && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// run keeps a stream open until Close.
func (d *Discovery) run() {
	failures := 0
	for {
		received, err := d.session()
		if d.ctx.Err() != nil {
			return
		}
		if received {
			failures = 0
		}
		wait := d.backoff.delay(failures)
		failures++
		d.log.Warn("xds: the stream to the tier broke; serving the last sets until it is back", "error", err, "retry", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			return
		}
	}
}

// session runs one stream until it breaks or the Discovery is closed; it reports whether the
// tier answered on it.
func (d *Discovery) session() (received bool, err error) {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	stream, err := d.client.DeltaAggregatedResources(ctx, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	responses := make(chan *discoverygrpc.DeltaDiscoveryResponse)
	recvErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case responses <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	s := &subscriptions{names: map[string]bool{}}
	if err := d.sendClusters(stream); err != nil {
		return false, err
	}
	if err := d.sendAssignments(stream, s); err != nil {
		return false, err
	}
	for {
		select {
		case <-ctx.Done():
			return received, nil
		case err := <-recvErr:
			return received, err
		case resp := <-responses:
			received = true
			if err := d.handle(stream, resp); err != nil {
				return received, err
			}
		case <-d.kick:
			if err := d.sendAssignments(stream, s); err != nil {
				return received, err
			}
		}
	}
}

type deltaStream = discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient

// subscriptions is what one stream has subscribed to, of the assignments.
type subscriptions struct {
	started  bool // a request for assignments was sent
	wildcard bool
	names    map[string]bool
}

// sendClusters subscribes to every Cluster, the first request of a stream: it carries the node,
// and the versions of the clusters already known, so that only changes come back.
func (d *Discovery) sendClusters(stream deltaStream) error {
	d.mu.Lock()
	known := make(map[string]string, len(d.clusters))
	for name, c := range d.clusters {
		known[name] = c.version
	}
	d.mu.Unlock()
	return stream.Send(&discoverygrpc.DeltaDiscoveryRequest{
		Node:                    d.node,
		TypeUrl:                 clusterType,
		ResourceNamesSubscribe:  []string{"*"},
		InitialResourceVersions: known,
	})
}

// sendAssignments brings the stream's subscriptions to assignments in line with what is asked
// for: the names of GetService and Watch, and every name while a ServicesWatcher runs. The first
// request of a stream carries the versions already held.
func (d *Discovery) sendAssignments(stream deltaStream, s *subscriptions) error {
	req := &discoverygrpc.DeltaDiscoveryRequest{TypeUrl: endpointType}
	d.mu.Lock()
	wildcard := d.wildcard > 0
	if wildcard != s.wildcard {
		if wildcard {
			req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, "*")
		} else {
			req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, "*")
		}
		s.wildcard = wildcard
	}
	for name, st := range d.services {
		if (st.pinned || len(st.watchers) > 0) && !s.names[name] {
			req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, name)
			s.names[name] = true
		}
	}
	for name := range s.names {
		if st := d.services[name]; st == nil || !st.pinned && len(st.watchers) == 0 {
			req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, name)
			delete(s.names, name)
		}
	}
	if !s.started {
		for name, st := range d.services {
			if st.received && st.version != "" && (wildcard || s.names[name]) {
				if req.InitialResourceVersions == nil {
					req.InitialResourceVersions = map[string]string{}
				}
				req.InitialResourceVersions[name] = st.version
			}
		}
	}
	d.mu.Unlock()
	if len(req.ResourceNamesSubscribe) == 0 && len(req.ResourceNamesUnsubscribe) == 0 {
		return nil
	}
	s.started = true
	return stream.Send(req)
}

// handle applies a response and acknowledges it: an ACK, or a NACK naming what was wrong, in
// which case nothing of the response is applied.
func (d *Discovery) handle(stream deltaStream, resp *discoverygrpc.DeltaDiscoveryResponse) error {
	var err error
	switch resp.GetTypeUrl() {
	case clusterType:
		err = d.applyClusters(resp)
	case endpointType:
		err = d.applyAssignments(resp)
	default:
		err = fmt.Errorf("unexpected resource type %q: only clusters and assignments were asked for", resp.GetTypeUrl())
	}
	ack := &discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	if err != nil {
		d.log.Warn("xds: rejecting a response of the tier", "type", resp.GetTypeUrl(), "nonce", resp.GetNonce(), "error", err)
		ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
	}
	return stream.Send(ack)
}

// applyClusters takes the names the tier serves.
func (d *Discovery) applyClusters(resp *discoverygrpc.DeltaDiscoveryResponse) error {
	updates := make(map[string]clusterState, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		if t := r.GetResource().GetTypeUrl(); t != clusterType {
			return fmt.Errorf("resource %q is a %q, not a cluster", r.GetName(), t)
		}
		c := &clusterv3.Cluster{}
		if err := proto.Unmarshal(r.GetResource().GetValue(), c); err != nil {
			return fmt.Errorf("cluster %q: %w", r.GetName(), err)
		}
		name := r.GetName()
		if name == "" {
			name = c.GetName()
		}
		alias, serving := clusterFlags(c)
		updates[name] = clusterState{version: r.GetVersion(), alias: alias, serving: serving}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	catalogChanged := false
	for name, c := range updates {
		old, ok := d.clusters[name]
		catalogChanged = catalogChanged || !ok || old.alias != c.alias
		d.clusters[name] = c
	}
	for _, name := range resp.GetRemovedResources() {
		if _, ok := d.clusters[name]; ok {
			delete(d.clusters, name)
			catalogChanged = true
		}
	}
	d.clustersKnown = true
	if catalogChanged {
		d.catalogChangedLocked()
	}
	d.broadcastLocked()
	return nil
}

// applyAssignments takes the assignments of subscribed names, and wakes the watchers of those
// whose instances changed.
func (d *Discovery) applyAssignments(resp *discoverygrpc.DeltaDiscoveryResponse) error {
	type assignment struct {
		version   string
		instances []*kuberegistry.ServiceInstance
	}
	updates := make(map[string]assignment, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		if t := r.GetResource().GetTypeUrl(); t != endpointType {
			return fmt.Errorf("resource %q is a %q, not an assignment", r.GetName(), t)
		}
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := proto.Unmarshal(r.GetResource().GetValue(), cla); err != nil {
			return fmt.Errorf("assignment %q: %w", r.GetName(), err)
		}
		instances, err := instancesFrom(cla)
		if err != nil {
			return err
		}
		name := r.GetName()
		if name == "" {
			name = cla.GetClusterName()
		}
		updates[name] = assignment{version: r.GetVersion(), instances: instances}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, a := range updates {
		st := d.services[name]
		if st == nil {
			if d.wildcard == 0 {
				continue // unsubscribed meanwhile
			}
			st = &serviceState{}
			d.services[name] = st
		}
		d.setLocked(name, st, a.instances, a.version)
	}
	for _, name := range resp.GetRemovedResources() {
		if st := d.services[name]; st != nil {
			d.setLocked(name, st, nil, "")
		}
	}
	d.broadcastLocked()
	return nil
}

// setLocked publishes a name's new assignment, waking its watchers only if its instances
// changed.
func (d *Discovery) setLocked(name string, st *serviceState, instances []*kuberegistry.ServiceInstance, version string) {
	st.version, st.received = version, true
	if sameInstances(st.instances, instances) {
		return
	}
	st.instances = instances
	st.gen++
	for w := range st.watchers {
		w.notify()
	}
	if !d.clusters[name].alias {
		d.catalogChangedLocked()
	}
}

func (d *Discovery) catalogChangedLocked() {
	d.catalogGen++
	for l := range d.listeners {
		l.notify()
	}
}
