package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

func TestBuckets(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1 << 20, 123_456_789, math.MaxUint32, math.MaxUint64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		values = append(values, rng.Uint64()>>rng.IntN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, histBuckets-1)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if lo >= 256 && float64(hi-lo+1)/float64(lo) > 1.0/128 {
			t.Errorf("bucket %d = [%d, %d] wider than 1/128 of its values", i, lo, hi)
		}
	}
	// Buckets tile the number line: each starts right after the previous.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestHistogramExactSmallValues(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100; v++ {
		h.record(v)
	}
	h.record(-5) // a negative latency (clock step) counts as 0
	tests := []struct {
		p    float64
		want uint64
	}{{50, 50}, {90, 90}, {99, 99}, {100, 100}, {0.5, 0}}
	for _, tt := range tests {
		if got := h.percentile(tt.p); got != tt.want {
			t.Errorf("p%v = %d, want %d", tt.p, got, tt.want)
		}
	}
	if h.count() != 101 || h.max != 100 || h.min != 0 {
		t.Errorf("count %d max %d min %d, want 101 100 0", h.count(), h.max, h.min)
	}
	var empty histogram
	if got := empty.percentile(99); got != 0 {
		t.Errorf("empty p99 = %d, want 0", got)
	}
}

func TestHistogramPercentilesMatchSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h histogram
	vals := make([]int64, 200_000)
	for i := range vals {
		// latencies around 200 µs with a long tail to 100 ms
		v := int64(math.Exp(rng.NormFloat64()*1.2+12.2)) + 30_000
		vals[i] = v
		h.record(v)
	}
	slices.Sort(vals)
	for _, p := range []float64{50, 90, 99, 99.9, 100} {
		rank := int(math.Ceil(p / 100 * float64(len(vals))))
		exact := float64(vals[rank-1])
		got := float64(h.percentile(p))
		if math.Abs(got-exact)/exact > 0.01 {
			t.Errorf("p%v = %.0f, exact %.0f: off by more than 1%%", p, got, exact)
		}
	}
	if h.max != uint64(vals[len(vals)-1]) {
		t.Errorf("max = %d, want %d", h.max, vals[len(vals)-1])
	}
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name      string
		n, sent   int64
		arrivals  []int64
		unique    int64
		dups      int64
		lost      int64
		outOfSeq  int64
		firstSeen []bool
	}{
		{name: "all once", n: 5, sent: 5, arrivals: []int64{0, 1, 2, 3, 4}, unique: 5},
		{name: "reordered", n: 4, sent: 4, arrivals: []int64{3, 1, 0, 2}, unique: 4},
		{name: "lost", n: 5, sent: 5, arrivals: []int64{0, 2, 4}, unique: 3, lost: 2},
		{name: "duplicates", n: 3, sent: 3, arrivals: []int64{0, 1, 1, 2, 1, 0}, unique: 3, dups: 3},
		{name: "lost and duplicated", n: 4, sent: 4, arrivals: []int64{1, 1, 3}, unique: 2, dups: 1, lost: 2},
		{name: "out of range", n: 2, sent: 2, arrivals: []int64{-1, 0, 1, 2, 64}, unique: 2, outOfSeq: 3},
		{name: "stopped early", n: 10, sent: 3, arrivals: []int64{0, 1, 2}, unique: 3},
		{name: "word boundaries", n: 130, sent: 130, arrivals: []int64{63, 64, 127, 128, 129, 64}, unique: 5, dups: 1, lost: 125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.n)
			for i, seq := range tt.arrivals {
				tr.record(seq, 1_000, int64(2_000+i))
			}
			if tr.unique != tt.unique || tr.dups != tt.dups || tr.lost(tt.sent) != tt.lost || tr.outOfSeq != tt.outOfSeq {
				t.Errorf("unique %d dups %d lost %d out-of-seq %d; want %d %d %d %d",
					tr.unique, tr.dups, tr.lost(tt.sent), tr.outOfSeq, tt.unique, tt.dups, tt.lost, tt.outOfSeq)
			}
			if tr.lat.count() != uint64(tt.unique) {
				t.Errorf("latencies recorded = %d, want one per distinct message (%d)", tr.lat.count(), tt.unique)
			}
		})
	}
}

func TestTrackerLatencyAndTimes(t *testing.T) {
	tr := newTracker(3)
	if !tr.record(0, 100, 600) || !tr.record(1, 200, 1200) || tr.record(1, 200, 5000) || !tr.record(2, 300, 2300) {
		t.Fatal("record: wrong first-arrival reports")
	}
	if tr.firstRecv != 600 || tr.lastRecv != 2300 {
		t.Errorf("first %d last %d, want 600 2300 (a duplicate does not move them)", tr.firstRecv, tr.lastRecv)
	}
	if got := tr.lat.percentile(50); got < 1000 || got > 1010 {
		t.Errorf("p50 = %d, want 1000 within 1%%", got)
	}
	if tr.lat.max != 2000 {
		t.Errorf("max = %d, want 2000 (the duplicate is not timed)", tr.lat.max)
	}
}

func TestReceiver(t *testing.T) {
	codec := newPayloadCodec("31", 7)
	other := newPayloadCodec("31", 8)
	r := newReceiver(codec, 3)
	now := int64(1_000_000)
	deliver := func(p []byte) { r.onPublish(&mqttwire.Publish{Payload: p}) }
	deliver(codec.appendPayload(nil, 3, now)) // warm-up (seq ≥ count)
	deliver(other.appendPayload(nil, 0, now)) // another run
	deliver([]byte(`{"value":31}`))           // not the tool's
	deliver(codec.appendPayload(nil, 0, now)) // measured
	deliver(codec.appendPayload(nil, 0, now)) // duplicate
	deliver(codec.appendPayload(nil, 1, now)) // measured
	deliver(codec.appendPayload(nil, 2, now)) // measured: all in
	select {
	case <-r.allIn:
	default:
		t.Fatal("allIn not closed after every measured message arrived")
	}
	if r.warmupSeen.Load() != 1 || r.foreign != 2 || r.measured.Load() != 3 || r.tr.dups != 1 {
		t.Errorf("warm-up %d foreign %d measured %d dups %d; want 1 2 3 1",
			r.warmupSeen.Load(), r.foreign, r.measured.Load(), r.tr.dups)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.ReportAllocs()
	v := int64(0)
	for b.Loop() {
		v = (v + 7919) % 10_000_000
		h.record(v)
	}
}
