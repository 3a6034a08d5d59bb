package main

import (
	"math"
	"math/bits"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a bucket is at most 1/128 (0.8 %) of its values wide.
const subBits = 7

// histBuckets covers every uint64: 2^subBits exact buckets, then 2^subBits
// buckets for each of the 57 remaining powers of two.
const histBuckets = (64 - subBits + 1) << subBits

// histogram is a log-linear (HDR-like) histogram of non-negative integers,
// here latencies in nanoseconds. Its memory is fixed (58 KiB); values below
// 256 are exact and larger ones are kept to within 0.8 %. The exact
// minimum and maximum are kept too. The zero value is empty and ready.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    uint64
	max    uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [2^subBits, 2^(subBits+1))
	return (e+1)<<subBits + int(v>>e) - 1<<subBits
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2<<subBits {
		return uint64(i), uint64(i)
	}
	e := uint(i>>subBits) - 1
	m := uint64(i&(1<<subBits-1)) + 1<<subBits
	return m << e, (m+1)<<e - 1
}

// record adds one value; negative values count as 0.
func (h *histogram) record(v int64) {
	u := uint64(0)
	if v > 0 {
		u = uint64(v)
	}
	h.counts[bucketOf(u)]++
	if h.n == 0 || u < h.min {
		h.min = u
	}
	if u > h.max {
		h.max = u
	}
	h.n++
}

// count returns the number of values recorded.
func (h *histogram) count() uint64 { return h.n }

// percentile returns the value at percentile p (0 < p ≤ 100): the middle
// of the bucket holding the ceil(p/100·n)-th smallest value, clamped to
// the exact minimum and maximum. It returns 0 when empty.
func (h *histogram) percentile(p float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return max(h.min, min(v, h.max))
		}
	}
	return h.max
}

// tracker accounts for the measured messages, whose sequence numbers are
// 0..n-1: which arrived (a bitmap), how often, and their latencies. Only
// the first arrival of a sequence number is timed. It is used by one
// goroutine at a time.
type tracker struct {
	n         int64
	seen      []uint64 // bit seq is set once seq arrived
	unique    int64
	dups      int64
	outOfSeq  int64 // sequence numbers outside 0..n-1
	lat       histogram
	firstRecv int64 // unix ns of the first measured arrival, 0 before
	lastRecv  int64 // unix ns of the last first-arrival
}

// newTracker returns a tracker for n measured messages.
func newTracker(n int64) *tracker {
	return &tracker{n: n, seen: make([]uint64, (n+63)/64)}
}

// record notes the arrival at now (unix ns) of message seq sent at sentAt
// (unix ns). It reports whether this was the first arrival of seq.
func (t *tracker) record(seq, sentAt, now int64) bool {
	if seq < 0 || seq >= t.n {
		t.outOfSeq++
		return false
	}
	w, bit := seq>>6, uint64(1)<<(seq&63)
	if t.seen[w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= bit
	t.unique++
	t.lat.record(now - sentAt)
	if t.firstRecv == 0 {
		t.firstRecv = now
	}
	t.lastRecv = now
	return true
}

// lost returns how many of the sent messages never arrived. Messages are
// sent in sequence order, so those are the sent ones not seen.
func (t *tracker) lost(sent int64) int64 {
	return max(0, sent-t.unique)
}
