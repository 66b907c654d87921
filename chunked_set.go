package kuberegistry

import (
	"iter"
	"slices"
	"strings"
)

// chunkedSet is a set of pod entries sorted by cmp, kept as a list of sorted chunks of at most
// max entries, so that a change costs O(log n) comparisons and moves at most a chunk's worth of
// pointers, not half the set, and the set holds one pointer per entry (a Go map would hold about
// ten times that). A service keeps two: its pods by name, and the pods it serves by instance.
type chunkedSet struct {
	cmp    func(a, b *podEntry) int // the order; entries that compare equal are one member
	max    int                      // the most entries a chunk holds (maxChunk, but in tests)
	chunks []*setChunk              // in order; none is empty
	size   int                      // the number of entries in all chunks
}

// setChunk is a run of the sorted set. Its slice grows as entries join, up to max+1 where it
// splits: a service of 10 pods holds 10 pointers, not max.
type setChunk struct {
	entries []*podEntry
}

// maxChunk bounds a chunk: large enough that the list of chunks stays short (40 for 10,000
// pods), small enough that moving within one is cheap.
const maxChunk = 256

// chunkFor returns the index of the chunk where e belongs: the last whose first entry sorts at or
// before e, or 0.
func (l *chunkedSet) chunkFor(e *podEntry) int {
	i, found := slices.BinarySearchFunc(l.chunks, e, func(c *setChunk, e *podEntry) int {
		return l.cmp(c.entries[0], e)
	})
	if found || i == 0 {
		return i
	}
	return i - 1
}

// find returns the member equal to e, or nil.
func (l *chunkedSet) find(e *podEntry) *podEntry {
	if len(l.chunks) == 0 {
		return nil
	}
	c := l.chunks[l.chunkFor(e)]
	if i, found := slices.BinarySearchFunc(c.entries, e, l.cmp); found {
		return c.entries[i]
	}
	return nil
}

// insert adds e, in place of the member equal to it, which it returns (nil for none).
func (l *chunkedSet) insert(e *podEntry) (replaced *podEntry) {
	if len(l.chunks) == 0 {
		l.chunks = []*setChunk{{entries: []*podEntry{e}}}
		l.size = 1
		return nil
	}
	ci := l.chunkFor(e)
	c := l.chunks[ci]
	i, found := slices.BinarySearchFunc(c.entries, e, l.cmp)
	if found {
		replaced, c.entries[i] = c.entries[i], e
		return replaced
	}
	c.entries = slices.Insert(c.entries, i, e)
	l.size++
	if len(c.entries) > l.max { // split in halves
		half := len(c.entries) / 2
		next := &setChunk{entries: slices.Clone(c.entries[half:])}
		clear(c.entries[half:])
		c.entries = c.entries[:half]
		l.chunks = slices.Insert(l.chunks, ci+1, next)
	}
	return nil
}

// remove drops the member equal to e and returns it (nil for none).
func (l *chunkedSet) remove(e *podEntry) (removed *podEntry) {
	if len(l.chunks) == 0 {
		return nil
	}
	ci := l.chunkFor(e)
	c := l.chunks[ci]
	i, found := slices.BinarySearchFunc(c.entries, e, l.cmp)
	if !found {
		return nil
	}
	removed = c.entries[i]
	c.entries = slices.Delete(c.entries, i, i+1)
	l.size--
	switch {
	case len(c.entries) == 0:
		l.chunks = slices.Delete(l.chunks, ci, ci+1)
	case len(c.entries) < l.max/4 && ci+1 < len(l.chunks) && len(c.entries)+len(l.chunks[ci+1].entries) <= l.max:
		l.merge(ci) // with the next: so that many deletions never leave a list of near-empty chunks
	case len(c.entries) < l.max/4 && ci > 0 && len(c.entries)+len(l.chunks[ci-1].entries) <= l.max:
		l.merge(ci - 1)
	}
	return removed
}

// merge appends chunk ci+1 to chunk ci and drops it.
func (l *chunkedSet) merge(ci int) {
	c, next := l.chunks[ci], l.chunks[ci+1]
	c.entries = append(c.entries, next.entries...)
	l.chunks = slices.Delete(l.chunks, ci+1, ci+2)
}

// reset replaces the set with entries, sorted and distinct.
func (l *chunkedSet) reset(entries []*podEntry) {
	clear(l.chunks)
	l.chunks, l.size = l.chunks[:0], len(entries)
	for len(entries) > 0 {
		n := max(1, min(len(entries), l.max/2)) // half of max: as many again join before a split
		l.chunks = append(l.chunks, &setChunk{entries: slices.Clone(entries[:n])})
		entries = entries[n:]
	}
}

// each yields the members in order.
func (l *chunkedSet) each() iter.Seq[*podEntry] {
	return func(yield func(*podEntry) bool) {
		for _, c := range l.chunks {
			for _, e := range c.entries {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// empty reports whether the set has no member.
func (l *chunkedSet) empty() bool { return l.size == 0 }

// comparePodKeys orders pods by namespace and name: a service's pods by name.
func comparePodKeys(a, b *podEntry) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}
