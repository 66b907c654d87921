package main

import (
	"context"
	"fmt"
	"time"
)

// latencyResult holds, for baseline, ours and limit, the time from the status write of a pod to
// the consumer's receipt of the change, one sample per update.
type latencyResult [3][]time.Duration

// measureLatency measures the wall time from just before the UpdateStatus request that flips a
// pod's readiness, written from this process, to the moment kuberegistry's watcher returns the
// new set from Next, and to the moment the limit — a bare informer handler, protobuf, same
// selector — receives the change. Both run at the same time, so that they see the same changes
// under the same conditions. The watched services each have perService watchers (see cpuRun):
// a change has arrived once the last of them has it.
func measureLatency(ctx context.Context, c *cluster, namespace string, state *fleetState, watched, perService, updates int) (oursLatency, limitLatency []time.Duration, err error) {
	logf("change to Next latency: starting kuberegistry with %d watchers and the bare handler", watched*max(perService, 1))
	names := serviceNames(state.s.Services)[:watched]
	oursR, err := openOurs(ctx, c, namespace, names, perService)
	if err != nil {
		return nil, nil, err
	}
	defer oursR.close()
	bare, err := openBare(ctx, c, namespace, state.s.Registered, names, perService)
	if err != nil {
		return nil, nil, err
	}
	defer bare.close()
	samples, err := latencies(ctx, c, namespace, state, updatePlan(state.s, watched, warmUpdates+updates), oursR, bare)
	if err != nil {
		return nil, nil, err
	}
	logf("change to Next latency: median kuberegistry %s, bare handler %s", median(samples[0]), median(samples[1]))
	return samples[0], samples[1], nil
}

// measureLatencyOf measures the same for one started design, such as the naive registry,
// whose watchers are open on the watched services.
func measureLatencyOf(ctx context.Context, c *cluster, namespace string, state *fleetState, watched, updates int, r receiver) ([]time.Duration, error) {
	samples, err := latencies(ctx, c, namespace, state, updatePlan(state.s, watched, warmUpdates+updates), r)
	if err != nil {
		return nil, err
	}
	logf("change to delivery latency: median %s", median(samples[0]))
	return samples[0], nil
}

// latencies flips the pods of plan one at a time from this process and returns, for each
// receiver, the delay from the write to the receipt of each change but the first warmUpdates.
func latencies(ctx context.Context, c *cluster, namespace string, state *fleetState, plan []int, receivers ...receiver) ([][]time.Duration, error) {
	client, err := c.protobufClient()
	if err != nil {
		return nil, err
	}
	writer := newFlipper(client, namespace)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	samples := make([][]time.Duration, len(receivers))
	for j, i := range plan {
		ready, svc, want := state.flip(i)
		sent, err := writer.flip(ctx, i, ready)
		if err != nil {
			return nil, err
		}
		for k, r := range receivers {
			at, err := r.await(ctx, i, svc, want)
			if err != nil {
				return nil, fmt.Errorf("pod update not delivered: %w", err)
			}
			if j >= warmUpdates {
				samples[k] = append(samples[k], at.Sub(sent))
			}
		}
	}
	return samples, nil
}
