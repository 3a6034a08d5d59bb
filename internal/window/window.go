// Package window keeps a sliding time window of numeric samples and its
// statistics, for the `windows:` of a rule (docs/rules.md): count, sum, avg,
// min, max, first, last, delta, rate and span, each in O(1) amortised time
// per sample and per read.
//
// # Time
//
// Samples must arrive in time order. A sample whose time is before the last
// sample's is taken at the last sample's time: the engine stamps messages as
// it receives them, so this only absorbs a clock stepping back, and it keeps
// the window ordered. Times are unix nanoseconds, so they must lie between
// the years 1678 and 2262.
//
// Expire(now) drops the samples older than now − over: a sample at exactly
// now − over is kept, one a nanosecond older is dropped. Add expires at the
// new sample's time before adding it. Beyond max_samples the oldest sample is
// dropped.
//
// # Values
//
// NaN and ±Inf are not samples: Add refuses them. Sums and differences of
// finite samples may still exceed the float64 range: sum, delta and rate are
// then ±Inf, which is the exact result rounded; the window itself stays
// correct, and the statistics are finite again once those samples expire.
//
// # The sum
//
// The sum is kept with compensated (Neumaier) addition, with error-free
// transformations for each add and remove, and recomputed from the samples
// whenever as many samples have left as the buffer holds (O(1) amortised).
// With u = 2⁻⁵³, N = max_samples and M the largest |sample| added since the
// last recomputation (at most N removals ago), the reported sum S' of the
// exact sum S satisfies
//
//	|S' − S| ≤ u·|S| + 16·N³·u²·M
//
// that is the exact sum rounded, give or take 2·10⁻¹⁹·M at the default N of
// 10,000. Samples of magnitude 2⁵⁰⁰ (about 3·10¹⁵⁰) or more are summed apart,
// scaled, so that no sum overflows in between: while any is in the window
// the bound is 2u·Σ|sample| + 16·N³·u²·M; once the last leaves, they no longer
// count in M. The average is the sum divided by the count (one more
// rounding) and never leaves [min, max].
//
// # Memory
//
// A window holds its samples (16 bytes each) in a ring buffer, and the
// candidates for min and max in two monotonic deques of 4-byte indexes, each
// no larger than the sample buffer: 16 bytes per sample on noisy data, 20 on
// data that only rises or only falls, 24 at worst. The Window itself takes
// 184 bytes on 64-bit platforms, and a window that never held a sample holds
// no buffers. Buffers start at 8 entries and double when full, up to
// max_samples; when removals leave the samples at most a quarter of their
// buffer, it shrinks to twice their number (at least 8 entries), and the
// deques with it, so a burst does not pin memory once it expires. Bytes
// reports the total.
//
// A Window is not safe for concurrent use.
package window

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// DefaultMaxSamples is the max_samples of a window that does not set it.
const DefaultMaxSamples = 10_000

// MaxSamplesLimit is the largest max_samples a window accepts.
const MaxSamplesLimit = 1 << 24

// minCap is the capacity a sample buffer starts with and never shrinks below.
const minCap = 8

// minDequeCap is the capacity a min or max deque starts with.
const minDequeCap = 4

// Sample is one value of a window and its time, as Samples exports and
// Restore imports them (the engine saves them with the rule's state).
type Sample struct {
	T int64   `json:"t"` // unix nanoseconds
	V float64 `json:"v"`
}

// Window is a sliding time window of samples. The zero value is not usable:
// create one with New.
type Window struct {
	over int64 // nanoseconds, > 0
	max  int

	buf  []Sample // ring buffer; len(buf) is its capacity
	head int      // index in buf of the oldest sample
	n    int      // number of samples
	seq  uint32   // sequence number of the oldest sample; samples are numbered consecutively

	// Sequence numbers of the samples that are, or may become, the minimum
	// (values strictly increasing from front to back) and the maximum
	// (strictly decreasing).
	minq, maxq deque

	lo, hi  accumulator // sums of the samples below and above bigValue, the latter scaled by 1/bigScale
	nbig    int32       // number of samples in hi
	removed int32       // samples removed since the sums were last recomputed
}

// New returns an empty window of the given length. maxSamples 0 means
// DefaultMaxSamples.
func New(over time.Duration, maxSamples int) (*Window, error) {
	if over <= 0 {
		return nil, fmt.Errorf("window: over must be positive, not %v", over)
	}
	if maxSamples == 0 {
		maxSamples = DefaultMaxSamples
	}
	if maxSamples < 0 || maxSamples > MaxSamplesLimit {
		return nil, fmt.Errorf("window: max_samples must be between 1 and %d, not %d", MaxSamplesLimit, maxSamples)
	}
	return &Window{over: int64(over), max: maxSamples}, nil
}

// Over returns the length of the window.
func (w *Window) Over() time.Duration { return time.Duration(w.over) }

// MaxSamples returns the most samples the window holds.
func (w *Window) MaxSamples() int { return w.max }

// Len returns the number of samples in the window, without expiring any.
func (w *Window) Len() int { return w.n }

// Add expires the samples older than t − over and adds v at time t (or at the
// last sample's time, if t is before it), dropping the oldest sample if the
// window holds max_samples. It reports false, and changes nothing, when v is
// NaN or ±Inf.
func (w *Window) Add(t time.Time, v float64) bool {
	return w.AddUnixNano(t.UnixNano(), v)
}

// AddUnixNano is Add with the time in unix nanoseconds.
func (w *Window) AddUnixNano(t int64, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if w.n > 0 {
		if last := w.at(w.n - 1).T; t < last {
			t = last
		}
		w.expire(t)
		if w.n == w.max {
			w.removeOldest()
			w.maintain()
		}
	}
	w.push(t, v)
	return true
}

// Expire drops the samples older than now − over.
func (w *Window) Expire(now time.Time) { w.ExpireUnixNano(now.UnixNano()) }

// ExpireUnixNano is Expire with the time in unix nanoseconds.
func (w *Window) ExpireUnixNano(now int64) {
	if w.n > 0 {
		w.expire(now)
	}
}

// Read expires the samples older than now − over and returns the statistics
// of those left.
func (w *Window) Read(now time.Time) Stats {
	w.Expire(now)
	return w.Summary().Stats()
}

// Samples appends the samples of the window to dst, oldest first, and returns
// the extended slice. Restore takes them back.
func (w *Window) Samples(dst []Sample) []Sample {
	a, b := w.segments()
	dst = append(dst, a...)
	return append(dst, b...)
}

// Restore replaces the samples of the window with samples, as Samples
// returned them: in time order and finite. If there are more than
// max_samples it keeps the newest. The statistics are then those of the
// saved window, the sum and avg within the error bound of the package
// documentation (the sums are recomputed, so their last bits may differ). It
// expires nothing: call Expire or Read with the current time next. On an
// invalid sample it returns an error and leaves the window unchanged.
func (w *Window) Restore(samples []Sample) error {
	for i, s := range samples {
		if math.IsNaN(s.V) || math.IsInf(s.V, 0) {
			return fmt.Errorf("window: sample %d: value %v is not a number", i, s.V)
		}
		if i > 0 && s.T < samples[i-1].T {
			return fmt.Errorf("window: sample %d: time %d is before the time of sample %d", i, s.T, i-1)
		}
	}
	if len(samples) > w.max {
		samples = samples[len(samples)-w.max:]
	}
	*w = Window{over: w.over, max: w.max}
	if len(samples) > 0 {
		w.resize(min(max(minCap, len(samples)), w.max))
	}
	for _, s := range samples {
		w.push(s.T, s.V)
	}
	return nil
}

// Bytes returns the memory the window holds, in bytes: the Window itself and
// the capacity of its buffers.
func (w *Window) Bytes() int {
	return int(unsafe.Sizeof(*w)) +
		len(w.buf)*int(unsafe.Sizeof(Sample{})) +
		(len(w.minq.buf)+len(w.maxq.buf))*int(unsafe.Sizeof(uint32(0)))
}

// at returns the i-th sample, 0 being the oldest.
func (w *Window) at(i int) Sample {
	j := w.head + i
	if j >= len(w.buf) {
		j -= len(w.buf)
	}
	return w.buf[j]
}

// value returns the value of the sample with sequence number s.
func (w *Window) value(s uint32) float64 { return w.at(int(s - w.seq)).V }

// segments returns the samples, oldest first, as two slices of the ring.
func (w *Window) segments() (a, b []Sample) {
	if w.head+w.n <= len(w.buf) {
		return w.buf[w.head : w.head+w.n], nil
	}
	return w.buf[w.head:], w.buf[:w.head+w.n-len(w.buf)]
}

// expire drops the samples older than now − over. The window is not empty.
func (w *Window) expire(now int64) {
	if now < math.MinInt64+w.over {
		return // nothing is older than the earliest time
	}
	cutoff := now - w.over
	if w.buf[w.head].T >= cutoff {
		return
	}
	for w.n > 0 && w.buf[w.head].T < cutoff {
		w.removeOldest()
	}
	w.maintain()
}

// push appends a sample, which is not before the last one, to a window that
// holds fewer than max samples.
func (w *Window) push(t int64, v float64) {
	if w.n == len(w.buf) {
		w.resize(min(max(2*len(w.buf), minCap), w.max))
	}
	j := w.head + w.n
	if j >= len(w.buf) {
		j -= len(w.buf)
	}
	w.buf[j] = Sample{T: t, V: v}
	s := w.seq + uint32(w.n)
	w.n++
	w.addSum(v, 1)

	for w.minq.n > 0 && w.value(w.minq.back()) >= v {
		w.minq.popBack()
	}
	w.minq.pushBack(s, len(w.buf))
	for w.maxq.n > 0 && w.value(w.maxq.back()) <= v {
		w.maxq.popBack()
	}
	w.maxq.pushBack(s, len(w.buf))
}

// removeOldest drops the oldest sample of a window that is not empty. Call
// maintain after a series of removals.
func (w *Window) removeOldest() {
	v := w.buf[w.head].V
	if w.minq.front() == w.seq {
		w.minq.popFront()
	}
	if w.maxq.front() == w.seq {
		w.maxq.popFront()
	}
	w.addSum(v, -1)
	w.head++
	if w.head == len(w.buf) {
		w.head = 0
	}
	w.n--
	w.seq++
	w.removed++
}

// maintain runs after removals: it resets or recomputes the sums, and shrinks
// the buffers when they are at most a quarter full.
func (w *Window) maintain() {
	if w.n == 0 {
		w.lo, w.hi, w.nbig, w.removed = accumulator{}, accumulator{}, 0, 0
	} else if int(w.removed) >= len(w.buf) {
		w.resum()
	}
	if len(w.buf) > minCap && w.n <= len(w.buf)/4 {
		w.resize(max(minCap, 2*w.n))
	}
}

// resize moves the samples to a buffer of capacity c ≥ n. When that is a
// shrink, it shrinks the deques too, to at most c.
func (w *Window) resize(c int) {
	shrink := c < len(w.buf)
	buf := make([]Sample, c)
	a, b := w.segments()
	copy(buf[copy(buf, a):], b)
	w.buf, w.head = buf, 0
	if shrink {
		w.minq.shrink(c)
		w.maxq.shrink(c)
	}
}

// resum recomputes the sums from the samples.
func (w *Window) resum() {
	w.lo, w.hi, w.nbig, w.removed = accumulator{}, accumulator{}, 0, 0
	a, b := w.segments()
	for _, s := range a {
		w.addSum(s.V, 1)
	}
	for _, s := range b {
		w.addSum(s.V, 1)
	}
}

// Samples of magnitude bigValue or more are summed apart, scaled by
// 1/bigScale: exactly, since the scaled value stays a normal float64. Neither
// sum can then overflow: fewer than 2²⁴ samples below 2⁵⁰⁰ sum below 2⁵²⁴,
// and scaled samples are below 2⁴²⁴.
var (
	bigValue = math.Ldexp(1, 500)
	bigScale = math.Ldexp(1, 600)
)

// addSum adds (sign 1) or removes (sign −1) v to or from the running sums.
// When the last big sample leaves, the sum of big samples is exactly 0.
func (w *Window) addSum(v float64, sign int32) {
	if math.Abs(v) < bigValue {
		w.lo.add(float64(sign) * v)
		return
	}
	if w.nbig += sign; w.nbig == 0 {
		w.hi = accumulator{}
	} else {
		w.hi.add(float64(sign) * v / bigScale)
	}
}

// sum returns the sum of the samples.
func (w *Window) sum() float64 {
	s := w.lo.value()
	if w.nbig > 0 {
		s += w.hi.value() * bigScale
	}
	return s
}

// avg returns the mean of the samples, clamped to [lo, hi].
func (w *Window) avg(lo, hi float64) float64 {
	n := float64(w.n)
	a := w.lo.value() / n
	if w.nbig > 0 {
		a += w.hi.value() / n * bigScale
	}
	return min(max(a, lo), hi)
}
