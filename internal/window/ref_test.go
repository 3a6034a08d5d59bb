package window

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"
)

// ref is the naive reference implementation of a window: a slice of samples
// that every read rescans, with the sum computed exactly.
type ref struct {
	over     int64
	max      int
	s        []Sample
	maxAbs   float64 // largest |value| ever added
	maxAbsLo float64 // largest |value| below bigValue ever added
}

func newRef(over time.Duration, maxSamples int) *ref {
	if maxSamples == 0 {
		maxSamples = DefaultMaxSamples
	}
	return &ref{over: int64(over), max: maxSamples}
}

func (r *ref) add(t int64, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if len(r.s) > 0 && t < r.s[len(r.s)-1].T {
		t = r.s[len(r.s)-1].T
	}
	r.expire(t)
	if len(r.s) == r.max {
		r.s = r.s[1:]
	}
	r.s = append(r.s, Sample{T: t, V: v})
	r.maxAbs = max(r.maxAbs, math.Abs(v))
	if math.Abs(v) < bigValue {
		r.maxAbsLo = max(r.maxAbsLo, math.Abs(v))
	}
	return true
}

func (r *ref) expire(now int64) {
	// In big integers, so that no subtraction overflows.
	cutoff := new(big.Int).Sub(big.NewInt(now), big.NewInt(r.over))
	for len(r.s) > 0 && big.NewInt(r.s[0].T).Cmp(cutoff) < 0 {
		r.s = r.s[1:]
	}
}

// exactSum returns the exact sum of the values, and the sum of their
// magnitudes. 2,200 bits hold any sum of fewer than 2¹⁰⁰ float64s exactly.
func exactSum(s []Sample) (sum, abs *big.Float) {
	sum = new(big.Float).SetPrec(2200)
	abs = new(big.Float).SetPrec(2200)
	var x big.Float
	for _, p := range s {
		x.SetFloat64(p.V)
		sum.Add(sum, &x)
		x.SetFloat64(math.Abs(p.V))
		abs.Add(abs, &x)
	}
	return sum, abs
}

const u = 0x1p-53 // unit roundoff of float64

// sumTolerance returns the bound on the error of the sum that the package
// documents, for the samples of r, plus the absolute error of rounding a
// subnormal result. It takes for M the largest |value| ever added (of those
// below bigValue, when no bigger one is in the window).
func sumTolerance(r *ref) (exact, tol *big.Float) {
	exact, abs := exactSum(r.s)
	tol = new(big.Float).SetPrec(2200)
	maxAbs := r.maxAbsLo
	if slices.ContainsFunc(r.s, func(p Sample) bool { return math.Abs(p.V) >= bigValue }) {
		tol.Mul(abs, big2(2*u)) // 2u·Σ|x|
		maxAbs = r.maxAbs
	} else {
		tol.Abs(exact)
		tol.Mul(tol, big2(u)) // u·|S|
	}
	n := float64(r.max)
	tol.Add(tol, big2(16*n*n*n*u*u*maxAbs*1.01))
	tol.Add(tol, big2(0x1p-1073))
	return exact, tol
}

func big2(f float64) *big.Float { return new(big.Float).SetPrec(2200).SetFloat64(f) }

// within reports whether got is within tol of exact. An infinite got stands
// for any value beyond the largest float64 by half its ulp at least.
func within(got float64, exact, tol *big.Float) bool {
	if math.IsInf(got, 0) {
		threshold := big2(0x1p1023)
		threshold.Add(threshold, threshold) // 2¹⁰²⁴
		threshold.Sub(threshold, big2(0x1p970))
		threshold.Sub(threshold, tol)
		e := new(big.Float).Copy(exact)
		if got < 0 {
			e.Neg(e)
		}
		return e.Cmp(threshold) >= 0
	}
	d := big2(got)
	d.Sub(d, exact)
	return d.Abs(d).Cmp(tol) <= 0
}

// compare checks every statistic of w against r and the invariants of w's
// buffers, and returns the first difference.
func compare(w *Window, r *ref) error {
	if err := w.checkInvariants(); err != nil {
		return err
	}
	if got := w.Samples(nil); !slices.Equal(got, r.s) && !(len(got) == 0 && len(r.s) == 0) {
		return fmt.Errorf("samples: got %v, want %v", got, r.s)
	}
	got := w.Summary()
	st := w.Stats()
	if len(r.s) == 0 {
		if got != (Summary{}) {
			return fmt.Errorf("empty window: got %+v, want a zero Summary", got)
		}
		if st != (Stats{}) {
			return fmt.Errorf("empty window: got %+v, want a zero Stats", st)
		}
		return nil
	}
	first, last := r.s[0], r.s[len(r.s)-1]
	want := Summary{
		Count: len(r.s),
		Min:   math.Inf(1),
		Max:   math.Inf(-1),
		First: first.V,
		Last:  last.V,
		Delta: last.V - first.V,
		Span:  time.Duration(last.T - first.T),
	}
	for _, p := range r.s {
		want.Min = min(want.Min, p.V)
		want.Max = max(want.Max, p.V)
	}
	if want.Span > 0 {
		want.Rate = want.Delta / want.Span.Seconds()
	}
	switch {
	case got.Count != want.Count:
		return fmt.Errorf("count: got %d, want %d", got.Count, want.Count)
	case got.Min != want.Min:
		return fmt.Errorf("min: got %v, want %v", got.Min, want.Min)
	case got.Max != want.Max:
		return fmt.Errorf("max: got %v, want %v", got.Max, want.Max)
	case got.First != want.First:
		return fmt.Errorf("first: got %v, want %v", got.First, want.First)
	case got.Last != want.Last:
		return fmt.Errorf("last: got %v, want %v", got.Last, want.Last)
	case got.Delta != want.Delta:
		return fmt.Errorf("delta: got %v, want %v", got.Delta, want.Delta)
	case got.Span != want.Span:
		return fmt.Errorf("span: got %v, want %v", got.Span, want.Span)
	case got.Rate != want.Rate:
		return fmt.Errorf("rate: got %v, want %v", got.Rate, want.Rate)
	}

	exact, tol := sumTolerance(r)
	if !within(got.Sum, exact, tol) {
		return fmt.Errorf("sum: got %v, want %v ± %v", got.Sum, exact.Text('g', 20), tol.Text('g', 4))
	}
	n := big2(float64(len(r.s)))
	avg := new(big.Float).SetPrec(2200).Quo(exact, n)
	atol := new(big.Float).SetPrec(2200).Quo(tol, n)
	a := new(big.Float).SetPrec(2200).Abs(avg)
	atol.Add(atol, a.Mul(a, big2(u)))
	if !within(got.Avg, avg, atol) {
		return fmt.Errorf("avg: got %v, want %v ± %v", got.Avg, avg.Text('g', 20), atol.Text('g', 4))
	}
	if got.Avg < got.Min || got.Avg > got.Max {
		return fmt.Errorf("avg: got %v, outside [%v, %v]", got.Avg, got.Min, got.Max)
	}

	wantStats := Stats{
		Count: got.Count, Sum: got.Sum, Avg: got.Avg, Min: got.Min, Max: got.Max,
		First: got.First, Last: got.Last, Delta: got.Delta, Rate: got.Rate, Span: got.Span,
	}
	if st != wantStats {
		return fmt.Errorf("stats: got %+v, want %+v", st, wantStats)
	}
	return nil
}

// checkInvariants checks the buffers of w: sizes, and the deques, which must
// hold exactly the samples that no later sample undercuts (for min) or
// exceeds (for max), in order.
func (w *Window) checkInvariants() error {
	switch {
	case w.n < 0 || w.n > len(w.buf) || w.n > w.max:
		return fmt.Errorf("n %d with capacity %d and max %d", w.n, len(w.buf), w.max)
	case len(w.buf) > w.max && len(w.buf) > minCap:
		return fmt.Errorf("capacity %d beyond max %d", len(w.buf), w.max)
	case len(w.minq.buf) > len(w.buf) || len(w.maxq.buf) > len(w.buf):
		return fmt.Errorf("deque capacities %d and %d beyond the ring's %d", len(w.minq.buf), len(w.maxq.buf), len(w.buf))
	}
	var wantMin, wantMax []uint32
	for i := w.n - 1; i >= 0; i-- {
		v := w.at(i).V
		if len(wantMin) == 0 || v < w.value(wantMin[len(wantMin)-1]) {
			wantMin = append(wantMin, w.seq+uint32(i))
		}
		if len(wantMax) == 0 || v > w.value(wantMax[len(wantMax)-1]) {
			wantMax = append(wantMax, w.seq+uint32(i))
		}
	}
	slices.Reverse(wantMin)
	slices.Reverse(wantMax)
	if got := w.minq.entries(); !slices.Equal(got, wantMin) {
		return fmt.Errorf("min deque: got %v, want %v", got, wantMin)
	}
	if got := w.maxq.entries(); !slices.Equal(got, wantMax) {
		return fmt.Errorf("max deque: got %v, want %v", got, wantMax)
	}
	return nil
}

// entries returns the entries of d, front first.
func (d *deque) entries() []uint32 {
	var out []uint32
	for i := range d.n {
		out = append(out, d.buf[(d.head+i)%len(d.buf)])
	}
	return out
}
