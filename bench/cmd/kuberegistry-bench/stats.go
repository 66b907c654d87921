package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// logf reports progress on stderr; stdout carries only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s kuberegistry-bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// liveHeap returns the bytes of live heap objects: what is left after two full collections (the
// second frees what finalizers released in the first).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// heapDelta is after-before, or 0 when the heap shrank.
func heapDelta(before, after uint64) uint64 {
	if after < before {
		return 0
	}
	return after - before
}

// cpuTime is the user and system CPU time this process has used, all threads included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle collects garbage and then waits until the process is idle (under 4% of a core for a
// quarter of a second), so that work left from a setup, such as an informer replaying its cache
// to new handlers, is not billed to what is measured next.
func settle(ctx context.Context) error {
	const window = 250 * time.Millisecond
	runtime.GC()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		before := cpuTime()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(window):
		}
		if cpuTime()-before < window/25 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the process did not become idle within 3 minutes")
		}
	}
}

// callCost is the mean cost of one call of a function.
type callCost struct {
	ns     float64 // wall time
	allocs float64 // heap allocations
}

// measureCalls calls f(0), f(1), … in rounds of growing size until one round lasts at least
// minTime, and returns the mean cost per call of that round. f returns a value derived from its
// work so that the compiler cannot drop it.
func measureCalls(minTime time.Duration, f func(i int) int) callCost {
	sink := 0
	for n := 1; ; n *= 4 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := range n {
			sink += f(i)
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if elapsed >= minTime || n >= 1<<30 {
			runtime.KeepAlive(sink)
			return callCost{
				ns:     float64(elapsed.Nanoseconds()) / float64(n),
				allocs: float64(after.Mallocs-before.Mallocs) / float64(n),
			}
		}
	}
}

// median of durations; 0 for none.
func median(ds []time.Duration) time.Duration {
	return percentile(ds, 50)
}

// percentile returns the p-th percentile (nearest rank) of ds; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// medianUint64 is the median of byte counts; 0 for none.
func medianUint64(vs []uint64) uint64 {
	if len(vs) == 0 {
		return 0
	}
	sorted := slices.Clone(vs)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}
