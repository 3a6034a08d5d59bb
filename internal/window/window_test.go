package window

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// t0 is the time every test starts from.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// at returns the time d after t0.
func at(d time.Duration) time.Time { return t0.Add(d) }

// point is a sample of a test, at a time after t0.
type point struct {
	at time.Duration
	v  float64
}

func newWindow(t *testing.T, over time.Duration, maxSamples int, points ...point) *Window {
	t.Helper()
	w, err := New(over, maxSamples)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		if !w.Add(at(p.at), p.v) {
			t.Fatalf("Add(%v, %v) refused", p.at, p.v)
		}
	}
	return w
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		over       time.Duration
		maxSamples int
		wantMax    int
		wantErr    bool
	}{
		{name: "default max_samples", over: time.Minute, wantMax: DefaultMaxSamples},
		{name: "max_samples", over: time.Minute, maxSamples: 5, wantMax: 5},
		{name: "largest max_samples", over: time.Minute, maxSamples: MaxSamplesLimit, wantMax: MaxSamplesLimit},
		{name: "zero over", over: 0, wantErr: true},
		{name: "negative over", over: -time.Second, wantErr: true},
		{name: "negative max_samples", over: time.Minute, maxSamples: -1, wantErr: true},
		{name: "max_samples beyond the limit", over: time.Minute, maxSamples: MaxSamplesLimit + 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.over, tt.maxSamples)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%v, %d): got no error, want one", tt.over, tt.maxSamples)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%v, %d): %v", tt.over, tt.maxSamples, err)
			}
			if w.MaxSamples() != tt.wantMax || w.Over() != tt.over || w.Len() != 0 {
				t.Errorf("got over %v, max_samples %d, len %d; want %v, %d, 0", w.Over(), w.MaxSamples(), w.Len(), tt.over, tt.wantMax)
			}
		})
	}
}

func TestStatistics(t *testing.T) {
	tests := []struct {
		name   string
		points []point
		want   Summary
	}{
		{name: "empty", want: Summary{}},
		{
			name:   "one sample",
			points: []point{{0, 21.5}},
			want:   Summary{Count: 1, Sum: 21.5, Avg: 21.5, Min: 21.5, Max: 21.5, First: 21.5, Last: 21.5},
		},
		{
			name:   "rising",
			points: []point{{0, 10}, {time.Minute, 20}, {2 * time.Minute, 16}},
			want: Summary{Count: 3, Sum: 46, Avg: 46.0 / 3, Min: 10, Max: 20, First: 10, Last: 16,
				Delta: 6, Rate: 0.05, Span: 2 * time.Minute},
		},
		{
			name:   "falling through zero",
			points: []point{{0, 4}, {time.Second, -1}, {2 * time.Second, 3}, {4 * time.Second, -4}},
			want: Summary{Count: 4, Sum: 2, Avg: 0.5, Min: -4, Max: 4, First: 4, Last: -4,
				Delta: -8, Rate: -2, Span: 4 * time.Second},
		},
		{
			name:   "repeated values",
			points: []point{{0, 7}, {time.Second, 7}, {2 * time.Second, 7}},
			want: Summary{Count: 3, Sum: 21, Avg: 7, Min: 7, Max: 7, First: 7, Last: 7,
				Span: 2 * time.Second},
		},
		{
			name:   "samples at one instant have no rate",
			points: []point{{time.Second, 1}, {time.Second, 5}},
			want:   Summary{Count: 2, Sum: 6, Avg: 3, Min: 1, Max: 5, First: 1, Last: 5, Delta: 4},
		},
		{
			name:   "a sample before the last is taken at the last time",
			points: []point{{0, 1}, {10 * time.Second, 2}, {5 * time.Second, 4}},
			want: Summary{Count: 3, Sum: 7, Avg: 7.0 / 3, Min: 1, Max: 4, First: 1, Last: 4,
				Delta: 3, Rate: 0.3, Span: 10 * time.Second},
		},
		{
			name:   "sub-second span",
			points: []point{{0, 0}, {250 * time.Millisecond, 1}},
			want: Summary{Count: 2, Sum: 1, Avg: 0.5, Min: 0, Max: 1, First: 0, Last: 1,
				Delta: 1, Rate: 4, Span: 250 * time.Millisecond},
		},
		{
			name:   "the minimum leaves, the next one takes over",
			points: []point{{0, 1}, {time.Second, 3}, {2 * time.Second, 2}, {3 * time.Second, 5}, {4 * time.Second, 4}},
			want: Summary{Count: 3, Sum: 11, Avg: 11.0 / 3, Min: 2, Max: 5, First: 2, Last: 4,
				Delta: 2, Rate: 1, Span: 2 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxSamples := 0
			if tt.name == "the minimum leaves, the next one takes over" {
				maxSamples = 3
			}
			w := newWindow(t, time.Hour, maxSamples, tt.points...)
			if got := w.Summary(); got != tt.want {
				t.Errorf("Summary:\n got %+v\nwant %+v", got, tt.want)
			}
			if got, want := w.Read(at(time.Hour)), tt.want.Stats(); got != want {
				t.Errorf("Read:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestStatsNilWhenEmpty(t *testing.T) {
	w := newWindow(t, time.Minute, 0)
	got := w.Read(t0)
	want := Stats{Count: 0, Sum: nil, Avg: nil, Min: nil, Max: nil, First: nil, Last: nil, Delta: nil, Rate: 0, Span: 0}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	w.Add(t0, 0)
	got = w.Read(t0)
	want = Stats{Count: 1, Sum: 0.0, Avg: 0.0, Min: 0.0, Max: 0.0, First: 0.0, Last: 0.0, Delta: 0.0}
	if got != want {
		t.Errorf("one zero sample: got %+v, want %+v", got, want)
	}
}

func TestExpire(t *testing.T) {
	// Samples at 0, 1m and 2m in a window of 5m.
	points := []point{{0, 1}, {time.Minute, 2}, {2 * time.Minute, 3}}
	tests := []struct {
		name      string
		now       time.Duration
		wantFirst float64
		wantCount int
	}{
		{name: "before the last sample", now: time.Minute, wantCount: 3, wantFirst: 1},
		{name: "all within", now: 4 * time.Minute, wantCount: 3, wantFirst: 1},
		{name: "oldest exactly at now − over is kept", now: 5 * time.Minute, wantCount: 3, wantFirst: 1},
		{name: "oldest a nanosecond older than now − over is dropped", now: 5*time.Minute + 1, wantCount: 2, wantFirst: 2},
		{name: "last sample exactly at now − over is kept", now: 7 * time.Minute, wantCount: 1, wantFirst: 3},
		{name: "all expired", now: 7*time.Minute + 1, wantCount: 0},
		{name: "long after", now: 1000 * time.Hour, wantCount: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(t, 5*time.Minute, 0, points...)
			st := w.Read(at(tt.now))
			if st.Count != tt.wantCount || w.Len() != tt.wantCount {
				t.Fatalf("count: got %d (Len %d), want %d", st.Count, w.Len(), tt.wantCount)
			}
			if tt.wantCount == 0 {
				if st != (Stats{}) {
					t.Errorf("all expired: got %+v, want a zero Stats", st)
				}
			} else if st.First != tt.wantFirst || st.Last != 3.0 {
				t.Errorf("first, last: got %v, %v; want %v, 3", st.First, st.Last, tt.wantFirst)
			}
		})
	}
}

func TestExpireThenAdd(t *testing.T) {
	w := newWindow(t, time.Minute, 0, point{0, 100}, point{time.Second, -100})
	if st := w.Read(at(time.Hour)); st.Count != 0 {
		t.Fatalf("count after expiry: got %d, want 0", st.Count)
	}
	w.Add(at(time.Hour), 5)
	want := Summary{Count: 1, Sum: 5, Avg: 5, Min: 5, Max: 5, First: 5, Last: 5}
	if got := w.Summary(); got != want {
		t.Errorf("after expiry and one add:\n got %+v\nwant %+v", got, want)
	}
}

func TestAddExpires(t *testing.T) {
	w := newWindow(t, time.Minute, 0, point{0, 1}, point{30 * time.Second, 2})
	tests := []struct {
		at        time.Duration
		wantCount int
		wantFirst float64
	}{
		{at: time.Minute, wantCount: 3, wantFirst: 1},       // the sample at 0 is exactly at the boundary
		{at: time.Minute + 1, wantCount: 3, wantFirst: 2},   // now it is older
		{at: 2*time.Minute + 1, wantCount: 2, wantFirst: 4}, // the sample at 1m+1ns is exactly at the boundary
		{at: 3*time.Minute + 2, wantCount: 1, wantFirst: 6}, // every sample before is older
	}
	for i, tt := range tests {
		w.Add(at(tt.at), float64(i+3))
		if got := w.Summary(); got.Count != tt.wantCount || got.First != tt.wantFirst {
			t.Errorf("add at %v: got count %d, first %v; want %d, %v", tt.at, got.Count, got.First, tt.wantCount, tt.wantFirst)
		}
	}
}

func TestMaxSamples(t *testing.T) {
	tests := []struct {
		name       string
		maxSamples int
		values     []float64
		want       Summary
	}{
		{
			name: "one", maxSamples: 1, values: []float64{3, 1, 2},
			want: Summary{Count: 1, Sum: 2, Avg: 2, Min: 2, Max: 2, First: 2, Last: 2},
		},
		{
			name: "the oldest goes, with the min and max it held", maxSamples: 3, values: []float64{-9, 9, 1, 2, 3},
			want: Summary{Count: 3, Sum: 6, Avg: 2, Min: 1, Max: 3, First: 1, Last: 3, Delta: 2, Rate: 1, Span: 2 * time.Second},
		},
		{
			name: "many times round the ring", maxSamples: 5, values: slices.Repeat([]float64{1, 2, 3, 4, 5, 6, 7}, 100),
			// the last five of …, 3, 4, 5, 6, 7
			want: Summary{Count: 5, Sum: 25, Avg: 5, Min: 3, Max: 7, First: 3, Last: 7, Delta: 4, Rate: 1, Span: 4 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(t, time.Hour, tt.maxSamples)
			for i, v := range tt.values {
				w.Add(at(time.Duration(i)*time.Second), v)
			}
			if got := w.Summary(); got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if err := w.checkInvariants(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAddRefusesNonNumbers(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			w := newWindow(t, time.Minute, 0, point{0, 1}, point{time.Second, 2})
			before := w.Samples(nil)
			if w.Add(at(time.Hour), v) {
				t.Errorf("Add(%v): got true, want false", v)
			}
			if got := w.Samples(nil); !slices.Equal(got, before) {
				t.Errorf("samples after a refused Add: got %v, want %v (a refused sample expires nothing)", got, before)
			}
		})
	}
}

func TestHugeValues(t *testing.T) {
	m := math.MaxFloat64
	w := newWindow(t, time.Hour, 2)
	steps := []struct {
		v                 float64
		wantSum, wantAvg  float64
		wantDelta         float64
		wantMin, wantMaxV float64
	}{
		{v: m, wantSum: m, wantAvg: m, wantDelta: 0, wantMin: m, wantMaxV: m},
		{v: m, wantSum: math.Inf(1), wantAvg: m, wantDelta: 0, wantMin: m, wantMaxV: m}, // 2·MaxFloat64 overflows
		{v: -m, wantSum: 0, wantAvg: 0, wantDelta: math.Inf(-1), wantMin: -m, wantMaxV: m},
		{v: 1, wantSum: 1 - m, wantAvg: (1 - m) / 2, wantDelta: m, wantMin: -m, wantMaxV: 1},
		{v: 2, wantSum: 3, wantAvg: 1.5, wantDelta: 1, wantMin: 1, wantMaxV: 2}, // back to normal
	}
	for i, s := range steps {
		w.Add(at(time.Duration(i)*time.Second), s.v)
		got := w.Summary()
		if got.Sum != s.wantSum || got.Avg != s.wantAvg || got.Delta != s.wantDelta || got.Min != s.wantMin || got.Max != s.wantMaxV {
			t.Errorf("step %d: got sum %v avg %v delta %v min %v max %v; want %v %v %v %v %v", i,
				got.Sum, got.Avg, got.Delta, got.Min, got.Max, s.wantSum, s.wantAvg, s.wantDelta, s.wantMin, s.wantMaxV)
		}
	}
}

// TestSumDoesNotDrift adds values that a plain running sum loses: a 1 added
// to 10¹⁷ rounds away, and once 10¹⁷ leaves the window the running sum is
// wrong by the ones it lost, while the window holds only ones.
func TestSumDoesNotDrift(t *testing.T) {
	const maxSamples = 2
	w := newWindow(t, time.Hour, maxSamples)
	r := newRef(time.Hour, maxSamples)
	var naive float64
	var naiveSamples []float64
	values := []float64{1e17, 1, 1, 1}
	for i := range 10_000 {
		v := values[i%len(values)]
		ts := t0.Add(time.Duration(i) * time.Second).UnixNano()
		w.AddUnixNano(ts, v)
		r.add(ts, v)
		naive += v
		naiveSamples = append(naiveSamples, v)
		if len(naiveSamples) > maxSamples {
			naive -= naiveSamples[0]
			naiveSamples = naiveSamples[1:]
		}
		exact, tol := sumTolerance(r)
		if got := w.Summary().Sum; !within(got, exact, tol) {
			t.Fatalf("after %d samples: sum %v, want %v ± %v", i+1, got, exact.Text('g', 20), tol.Text('g', 3))
		}
	}
	if got := w.Summary().Sum; got != 2 {
		t.Errorf("sum of the last two samples (1, 1): got %v, want 2", got)
	}
	if naive == 2 {
		t.Errorf("the plain running sum is right: the test no longer shows drift")
	}
	t.Logf("window [1 1]: sum %v; a plain running sum says %v", w.Summary().Sum, naive)
}

// TestSumBound checks the documented error bound on values of every
// magnitude, in a window large enough to recompute its sums many times.
func TestSumBound(t *testing.T) {
	const maxSamples = 200
	w := newWindow(t, time.Hour, maxSamples)
	r := newRef(time.Hour, maxSamples)
	var x uint64 = 88172645463325252
	for i := range 20_000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v := math.Ldexp(float64(int64(x>>11))/(1<<52), int(x%120)-60)
		if i%1000 > 800 {
			v = math.Float64frombits(x) // any float64: subnormal, huge, or refused
		}
		ts := t0.Add(time.Duration(i) * time.Second).UnixNano()
		if w.AddUnixNano(ts, v) != r.add(ts, v) {
			t.Fatalf("Add(%v) disagrees with the reference", v)
		}
		if i%37 == 0 {
			if err := compare(w, r); err != nil {
				t.Fatalf("after %d samples: %v", i+1, err)
			}
		}
	}
}

func TestRestore(t *testing.T) {
	w := newWindow(t, 10*time.Minute, 50)
	for i := range 120 {
		w.Add(at(time.Duration(i)*time.Second), float64(i%17)*0.1-0.5)
	}
	w.Expire(at(130 * time.Second))

	// Through JSON, as the engine saves it.
	b, err := json.Marshal(w.Samples(nil))
	if err != nil {
		t.Fatal(err)
	}
	var saved []Sample
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	restored := newWindow(t, 10*time.Minute, 50)
	if err := restored.Restore(saved); err != nil {
		t.Fatal(err)
	}
	if got, want := restored.Samples(nil), w.Samples(nil); !slices.Equal(got, want) {
		t.Fatalf("samples: got %v, want %v", got, want)
	}
	if got, want := restored.Summary(), w.Summary(); got != want {
		t.Fatalf("restored:\n got %+v\nwant %+v", got, want)
	}
	// Both go on alike.
	for i := range 100 {
		ts := at(time.Duration(200+i*7) * time.Second)
		w.Add(ts, float64(i))
		restored.Add(ts, float64(i))
		if got, want := restored.Summary(), w.Summary(); got != want {
			t.Fatalf("after %d more samples:\n got %+v\nwant %+v", i+1, got, want)
		}
	}
}

func TestRestoreKeepsTheNewest(t *testing.T) {
	w := newWindow(t, time.Hour, 3)
	err := w.Restore([]Sample{{T: 1, V: 1}, {T: 2, V: 2}, {T: 3, V: 3}, {T: 4, V: 4}, {T: 5, V: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Samples(nil), []Sample{{T: 3, V: 3}, {T: 4, V: 4}, {T: 5, V: 5}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := w.checkInvariants(); err != nil {
		t.Error(err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
	}{
		{name: "NaN", samples: []Sample{{T: 1, V: 1}, {T: 2, V: math.NaN()}}},
		{name: "Inf", samples: []Sample{{T: 1, V: math.Inf(-1)}}},
		{name: "out of order", samples: []Sample{{T: 1, V: 1}, {T: 3, V: 2}, {T: 2, V: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(t, time.Hour, 0, point{0, 42})
			before := w.Samples(nil)
			if err := w.Restore(tt.samples); err == nil {
				t.Fatal("got no error, want one")
			}
			if got := w.Samples(nil); !slices.Equal(got, before) {
				t.Errorf("after a refused restore: got %v, want %v", got, before)
			}
		})
	}
}

func TestRestoreEmpty(t *testing.T) {
	w := newWindow(t, time.Hour, 0, point{0, 42})
	if err := w.Restore(nil); err != nil {
		t.Fatal(err)
	}
	if w.Len() != 0 || w.Summary() != (Summary{}) {
		t.Errorf("got %d samples, %+v; want an empty window", w.Len(), w.Summary())
	}
	if got, want := w.Bytes(), int(unsafe.Sizeof(Window{})); got != want {
		t.Errorf("bytes: got %d, want %d", got, want)
	}
}

// TestMemory checks the buffer policy: doubling up to max_samples, and
// shrinking back once a burst expires.
func TestMemory(t *testing.T) {
	fixed := int(unsafe.Sizeof(Window{}))
	w := newWindow(t, time.Minute, 10_000)
	if got := w.Bytes(); got != fixed {
		t.Errorf("unused window: got %d bytes, want %d", got, fixed)
	}
	// A burst: 25,000 samples in 25 seconds, every value a new minimum so
	// that the min deque holds every sample.
	for i := range 25_000 {
		w.Add(at(time.Duration(i)*time.Millisecond), float64(-i))
	}
	full := w.Bytes()
	if w.Len() != 10_000 || len(w.buf) != 10_000 {
		t.Fatalf("after the burst: got %d samples in a buffer of %d, want 10000 in 10000", w.Len(), len(w.buf))
	}
	perSample := float64(full-fixed) / 10_000
	t.Logf("fixed %d bytes; full window of 10,000 samples %d bytes, %.1f bytes per sample (worst case, min deque full)", fixed, full, perSample)
	if perSample > 24 {
		t.Errorf("%.1f bytes per sample, want at most 24", perSample)
	}

	// The burst expires; a sample a second keeps the window at 60.
	for i := range 600 {
		w.Add(at(30*time.Second+time.Duration(i)*time.Second), float64(i%10))
	}
	if got := w.Len(); got != 61 {
		t.Fatalf("got %d samples, want 61", got)
	}
	if got, limit := w.Bytes(), fixed+4*61*24; got > limit {
		t.Errorf("after the burst expired: %d bytes held, want at most %d", got, limit)
	}
	t.Logf("61 samples after the burst: %d bytes", w.Bytes())

	// Everything expires.
	w.Expire(at(time.Hour))
	if got, limit := w.Bytes(), fixed+minCap*(16+4+4); got > limit {
		t.Errorf("empty: %d bytes held, want at most %d", got, limit)
	}
}

func TestNoAllocations(t *testing.T) {
	w := newWindow(t, time.Hour, 1000)
	ts := t0.UnixNano()
	var x uint64 = 1
	add := func() {
		x = x*6364136223846793005 + 1442695040888963407
		ts += int64(time.Millisecond)
		w.AddUnixNano(ts, float64(x>>40))
	}
	for range 5000 {
		add()
	}
	if n := testing.AllocsPerRun(10_000, add); n != 0 {
		t.Errorf("Add at steady state: %v allocations, want 0", n)
	}
	var s Summary
	if n := testing.AllocsPerRun(1000, func() { s = w.Summary() }); n != 0 {
		t.Errorf("Summary: %v allocations, want 0", n)
	}
	_ = s
}

func TestHugeSampleLeaves(t *testing.T) {
	for _, huge := range []float64{1e300, -1e200, 1e140, math.MaxFloat64} {
		t.Run(fmt.Sprint(huge), func(t *testing.T) {
			// The huge sample expires long before the sums are recomputed.
			w := newWindow(t, 5*time.Second, 0)
			for i, v := range []float64{huge, 0.1, 0.2, 0.3} {
				w.Add(at(time.Duration(i)*time.Second), v)
			}
			w.Add(at(5*time.Second+1), 0.4)
			if got, want := w.Summary().Sum, 1.0; w.Len() != 4 || math.Abs(got-want) > 2*u*want {
				t.Errorf("sum after %v left: got %v, want %v", huge, got, want)
			}
		})
	}
}

func TestExtremeTimes(t *testing.T) {
	w := newWindow(t, time.Duration(math.MaxInt64), 0)
	if err := w.Restore([]Sample{{T: math.MinInt64, V: 1}, {T: math.MaxInt64, V: 2}}); err != nil {
		t.Fatal(err)
	}
	w.ExpireUnixNano(math.MinInt64)
	got := w.Summary()
	if got.Count != 2 || got.Span != time.Duration(math.MaxInt64) || got.Rate != 1/time.Duration(math.MaxInt64).Seconds() {
		t.Errorf("got count %d, span %v, rate %v; want 2, the longest Duration, and 1 per that", got.Count, got.Span, got.Rate)
	}
	// now − over is 0: the sample at the earliest time is older.
	w.ExpireUnixNano(math.MaxInt64)
	if got := w.Len(); got != 1 {
		t.Errorf("after expiring at the latest time: got %d samples, want 1", got)
	}
}
