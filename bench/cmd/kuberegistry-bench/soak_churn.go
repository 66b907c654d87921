package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// churnWorkers is how many changes the churn makes at once. Registered pod j is only ever changed
// by worker j%churnWorkers, so that the changes of one pod keep their order.
const churnWorkers = 16

// lastFreshIndex bounds the pod indexes of replacements: workload.IP(i) is a valid address below
// 155·65,536; beyond, the indexes start again after the fleet's, whose pods are long gone.
const lastFreshIndex = 10_000_000

// churnSlot is one registered pod of the fleet across its replacements.
type churnSlot struct {
	index int  // pod index (workload.PodName, workload.IP) of the slot's current pod
	ready bool // the readiness last written
}

// churn changes a fleet's registered pods at a steady rate, as a busy cluster would: readiness
// flips, and pods replaced (deleted, then created again under a new name in the same service).
// Changes cycle through the services, and through each service's pods.
type churn struct {
	client       kubernetes.Interface
	namespace    string
	s            workload.Scenario
	replaceOneIn int // one change in replaceOneIn, drawn at random, is a replacement

	// slots are the registered pods, by index j (service j%Services). While the churn runs, slot
	// j belongs to worker j%churnWorkers alone; once run returns, to its caller.
	slots []churnSlot
	fresh int // the next replacement's pod index; the dispatcher's

	flips, replacements atomic.Int64 // changes done
}

func newChurn(client kubernetes.Interface, namespace string, s workload.Scenario, replaceOneIn int) *churn {
	c := &churn{client: client, namespace: namespace, s: s, replaceOneIn: replaceOneIn,
		slots: make([]churnSlot, s.Registered), fresh: s.Pods}
	for j := range c.slots {
		c.slots[j] = churnSlot{index: j, ready: true} // as createPods leaves them
	}
	return c
}

// done is the number of changes made so far.
func (c *churn) done() int64 { return c.flips.Load() + c.replacements.Load() }

// churnChange is one change: slot j flipped, or its pod replaced by pod fresh.
type churnChange struct {
	j       int
	replace bool
	fresh   int
}

// run makes rate changes a second until stop is closed, then waits for the changes already handed
// to its workers, and returns. A change stopped halfway would leave the fleet unknown: only ctx's
// end (the program's) or a failed change interrupts one. It returns the first change that failed,
// which also ends it.
func (c *churn) run(ctx context.Context, stop <-chan struct{}, rate float64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queues := make([]chan churnChange, churnWorkers)
	var wg sync.WaitGroup
	for w := range queues {
		queues[w] = make(chan churnChange, 16)
		wg.Go(func() {
			for ch := range queues[w] {
				if ctx.Err() != nil {
					continue // failed: drain
				}
				if err := c.apply(ctx, ch); err != nil {
					cancel(err)
				}
			}
		})
	}
	dispatch := func() {
		defer func() {
			for _, q := range queues {
				close(q)
			}
		}()
		rng := rand.New(rand.NewPCG(1, 2)) // the same changes in every run
		perService := c.s.Registered / c.s.Services
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for k := 0; ; k++ {
			// Change k is due at start + k/rate; when late, it goes at once and the pace
			// catches up.
			timer.Reset(time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))))
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-timer.C:
			}
			svc := k % c.s.Services
			ch := churnChange{j: svc + (k/c.s.Services)%perService*c.s.Services}
			if rng.IntN(c.replaceOneIn) == 0 {
				ch.replace, ch.fresh = true, c.fresh
				if c.fresh++; c.fresh >= lastFreshIndex {
					c.fresh = c.s.Pods
				}
			}
			select {
			case queues[ch.j%churnWorkers] <- ch:
			case <-ctx.Done():
				return
			}
		}
	}
	dispatch()
	wg.Wait()
	return context.Cause(ctx)
}

// apply makes one change.
func (c *churn) apply(ctx context.Context, ch churnChange) error {
	slot := &c.slots[ch.j]
	if !ch.replace {
		if err := c.setReady(ctx, slot.index, !slot.ready); err != nil {
			return err
		}
		slot.ready = !slot.ready
		c.flips.Add(1)
		return nil
	}
	if err := c.delete(ctx, slot.index); err != nil {
		return err
	}
	if err := createPod(ctx, c.client, c.replacement(ch.j, ch.fresh), ch.fresh); err != nil {
		return err
	}
	slot.index, slot.ready = ch.fresh, true
	c.replacements.Add(1)
	return nil
}

// setReady writes the status of pod i, ready or not, in one strategic merge patch of the status
// subresource, as a kubelet does: the conditions merge by type, the container statuses are
// replaced.
func (c *churn) setReady(ctx context.Context, i int, ready bool) error {
	var pod corev1.Pod
	workload.SetStatus(&pod, i, ready)
	patch, err := json.Marshal(map[string]any{"status": pod.Status})
	if err != nil {
		return err
	}
	err = retry.OnError(retry.DefaultBackoff, transient, func() error {
		_, err := c.client.CoreV1().Pods(c.namespace).Patch(ctx, workload.PodName(i), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the status of pod %s: %w", workload.PodName(i), err)
	}
	return nil
}

// delete deletes pod i at once (no kubelet would confirm a graceful stop).
func (c *churn) delete(ctx context.Context, i int) error {
	zero := int64(0)
	err := retry.OnError(retry.DefaultBackoff, transient, func() error {
		err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, workload.PodName(i), metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if apierrors.IsNotFound(err) { // a retried delete that had succeeded
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting pod %s: %w", workload.PodName(i), err)
	}
	return nil
}

// replacement is the pod that replaces slot j's: pod fresh of the workload, in slot j's service.
func (c *churn) replacement(j, fresh int) *corev1.Pod {
	svc := c.s.ServiceOf(j)
	pod := workload.Scenario{Pods: fresh + 1, Registered: fresh + 1, Services: c.s.Services}.Pod(c.namespace, fresh)
	pod.Labels[kuberegistry.LabelsKeyServiceName] = workload.Service(svc)
	pod.Labels["app.kubernetes.io/name"] = fmt.Sprintf("app-%03d", svc)
	return pod
}

// expected returns, by service index, the IPs of the ready pods of the fleet as the churn left
// it, sorted. Call it once run has returned.
func (c *churn) expected() [][]string {
	ips := make([][]string, c.s.Services)
	for j, slot := range c.slots {
		if slot.ready {
			svc := c.s.ServiceOf(j)
			ips[svc] = append(ips[svc], workload.IP(slot.index))
		}
	}
	for _, list := range ips {
		slices.Sort(list)
	}
	return ips
}
