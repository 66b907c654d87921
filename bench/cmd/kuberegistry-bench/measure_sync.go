package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/kuberegistry/kuberegistry"
	"github.com/kuberegistry/kuberegistry/bench/naive"
	"github.com/kuberegistry/kuberegistry/bench/workload"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Indexes of the three designs in every measurement.
const (
	baseline = iota // package naive
	ours            // kuberegistry
	limit           // the least any design must do
)

// syncResult is what a started registry costs over one fleet: the time its Start takes to sync,
// the live heap it then holds, and the cost of a GetService. Each holds baseline, ours and limit.
type syncResult struct {
	pods   int
	start  [3]time.Duration // median over the runs
	memory [3]float64       // bytes, median over the runs
	lookup [3]callCost
}

// measureSync starts the naive registry, ours, and the limit's bare List, one after another,
// runs times, over the fleet in namespace. The last run also times GetService for each design,
// each for at least lookupTime.
//
//   - Start: naive.Start with client-go's default (JSON) client and an informer over every pod,
//     until its informer has synced (polled every millisecond);
//     kuberegistry.NewForConfig (protobuf, label selector, transform) and Start; the limit is one
//     protobuf List of the registered pods with the same label selector, decoded.
//   - Memory: the live heap a started registry adds (client included), after two collections;
//     the limit is the bytes of the strings discovery returns, without any structure around them.
//   - GetService: the mean of calls cycling through the services; the limit is a lookup in a
//     map of prebuilt slices.
func measureSync(ctx context.Context, c *cluster, namespace string, s workload.Scenario, runs int, lookupTime time.Duration) (syncResult, error) {
	res := syncResult{pods: s.Pods}
	names := serviceNames(s.Services)
	var starts [3][]time.Duration
	var heaps [2][]uint64
	for run := range runs {
		last := run == runs-1
		took, held, lookup, found, err := syncNaive(ctx, c, namespace, names, last, lookupTime)
		if err != nil {
			return res, err
		}
		if last && found != s.Registered {
			return res, fmt.Errorf("the naive registry found %d instances, want %d", found, s.Registered)
		}
		starts[baseline], heaps[baseline] = append(starts[baseline], took), append(heaps[baseline], held)
		if last {
			res.lookup[baseline] = lookup
		}

		took, held, prebuilt, err := syncOurs(ctx, c, namespace, names, &res, last, lookupTime)
		if err != nil {
			return res, err
		}
		if found := countInstances(prebuilt); found != s.Registered {
			return res, fmt.Errorf("kuberegistry found %d instances, want %d", found, s.Registered)
		}
		starts[ours], heaps[ours] = append(starts[ours], took), append(heaps[ours], held)
		res.memory[limit] = float64(stringBytes(prebuilt))
		if last {
			res.lookup[limit] = measureCalls(lookupTime, func(i int) int {
				return len(prebuilt[names[i%len(names)]])
			})
		}

		took, err = listRegistered(ctx, c, namespace, s.Registered)
		if err != nil {
			return res, err
		}
		starts[limit] = append(starts[limit], took)
		logf("Start to synced, run %d/%d: naive %s, kuberegistry %s, bare List %s; heap naive %s, kuberegistry %s",
			run+1, runs, starts[baseline][run], starts[ours][run], took,
			formatMiB(float64(heaps[baseline][run])), formatMiB(float64(heaps[ours][run])))
	}
	for i := range starts {
		res.start[i] = median(starts[i])
	}
	res.memory[baseline] = float64(medianUint64(heaps[baseline]))
	res.memory[ours] = float64(medianUint64(heaps[ours]))
	return res, nil
}

// syncNaive starts the naive registry and returns how long it took to sync, the heap it holds,
// and, when lookups is set, the cost of its GetService and the instances it finds in all
// services (else -1).
func syncNaive(ctx context.Context, c *cluster, namespace string, names []string, lookups bool, lookupTime time.Duration) (took time.Duration, held uint64, lookup callCost, found int, err error) {
	before := liveHeap()
	client, err := c.jsonClient()
	if err != nil {
		return 0, 0, lookup, 0, err
	}
	reg := naive.New(client, namespace)
	defer reg.Close()
	synced, stopPoll := pollSynced(reg.Informer().HasSynced)
	defer stopPoll()
	start := time.Now()
	if err := reg.Start(ctx); err != nil {
		return 0, 0, lookup, 0, fmt.Errorf("starting the naive registry: %w", err)
	}
	took = (<-synced).Sub(start)
	held = heapDelta(before, liveHeap())
	if !lookups {
		return took, held, lookup, -1, nil
	}
	for _, name := range names {
		instances, err := reg.GetService(name)
		if err != nil {
			return 0, 0, lookup, 0, err
		}
		found += len(instances)
	}
	lookup = measureCalls(lookupTime, func(i int) int {
		instances, _ := reg.GetService(names[i%len(names)])
		return len(instances)
	})
	runtime.KeepAlive(reg)
	return took, held, lookup, found, nil
}

// pollSynced polls hasSynced every millisecond until it holds, and sends the time it first did on
// synced; stop ends the polling. naive.Start polls for the sync every 100ms
// (cache.WaitForCacheSync); this poll times the sync itself, so that no design is charged for
// its own poll.
func pollSynced(hasSynced func() bool) (synced <-chan time.Time, stop func()) {
	at := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if hasSynced() {
					at <- time.Now()
					return
				}
			}
		}
	}()
	return at, func() { close(done) }
}

// syncOurs starts a kuberegistry Registry and returns how long Start took, the heap it holds, and
// what GetService returns for every service (the prebuilt map of the limit). When lookups is set,
// it stores the cost of its GetService in res.
func syncOurs(ctx context.Context, c *cluster, namespace string, names []string, res *syncResult, lookups bool, lookupTime time.Duration) (took time.Duration, held uint64, prebuilt map[string][]*kuberegistry.ServiceInstance, err error) {
	before := liveHeap()
	reg, err := kuberegistry.NewForConfig(c.config, kuberegistry.WithNamespace(namespace))
	if err != nil {
		return 0, 0, nil, err
	}
	defer func() { _ = reg.Close() }()
	start := time.Now()
	if err := reg.Start(ctx); err != nil {
		return 0, 0, nil, fmt.Errorf("starting kuberegistry: %w", err)
	}
	took = time.Since(start)
	held = heapDelta(before, liveHeap())
	prebuilt = make(map[string][]*kuberegistry.ServiceInstance, len(names))
	for _, name := range names {
		instances, err := reg.GetService(ctx, name)
		if err != nil {
			return 0, 0, nil, err
		}
		prebuilt[name] = instances
	}
	if lookups {
		bg := context.Background()
		res.lookup[ours] = measureCalls(lookupTime, func(i int) int {
			instances, _ := reg.GetService(bg, names[i%len(names)])
			return len(instances)
		})
	}
	return took, held, prebuilt, nil
}

// listRegistered times the least a registry must do to learn the registered pods: one protobuf
// List with the label selector, decoded into Pods.
func listRegistered(ctx context.Context, c *cluster, namespace string, want int) (time.Duration, error) {
	client, err := c.protobufClient()
	if err != nil {
		return 0, err
	}
	runtime.GC()
	start := time.Now()
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: kuberegistry.LabelsKeyServiceName})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("listing the registered pods: %w", err)
	}
	if len(list.Items) != want {
		return 0, fmt.Errorf("listed %d registered pods, want %d", len(list.Items), want)
	}
	return took, nil
}

// stringBytes is the size of the strings discovery returns: IDs, names, versions, metadata keys
// and values, endpoints.
func stringBytes(services map[string][]*kuberegistry.ServiceInstance) int {
	n := 0
	for _, instances := range services {
		for _, in := range instances {
			n += len(in.ID) + len(in.Name) + len(in.Version)
			for k, v := range in.Metadata {
				n += len(k) + len(v)
			}
			for _, e := range in.Endpoints {
				n += len(e)
			}
		}
	}
	return n
}

func countInstances(services map[string][]*kuberegistry.ServiceInstance) int {
	n := 0
	for _, instances := range services {
		n += len(instances)
	}
	return n
}

// serviceNames are the scenario's service names, made once so that lookups measure only lookups.
func serviceNames(services int) []string {
	names := make([]string, services)
	for i := range names {
		names[i] = workload.Service(i)
	}
	return names
}
