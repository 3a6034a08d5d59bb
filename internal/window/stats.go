package window

import (
	"math"
	"time"
)

// Summary is the statistics of a window as plain numbers, all zero when
// Count is 0. Taking one does not allocate.
type Summary struct {
	Count int
	Sum   float64
	Avg   float64
	Min   float64
	Max   float64
	First float64 // the value of the oldest sample
	Last  float64 // the value of the newest sample
	Delta float64 // Last − First
	// Rate is Delta per second of Span; 0 when Count < 2 or Span is 0.
	Rate float64
	// Span is the time from the oldest sample to the newest.
	Span time.Duration
}

// Summary returns the statistics of the samples in the window, without
// expiring any.
func (w *Window) Summary() Summary {
	if w.n == 0 {
		return Summary{}
	}
	first, last := w.buf[w.head], w.at(w.n-1)
	lo, hi := w.value(w.minq.front()), w.value(w.maxq.front())
	s := Summary{
		Count: w.n,
		Sum:   w.sum(),
		Avg:   w.avg(lo, hi),
		Min:   lo,
		Max:   hi,
		First: first.V,
		Last:  last.V,
		Delta: last.V - first.V,
		Span:  span(first.T, last.T),
	}
	if s.Span > 0 {
		s.Rate = s.Delta / s.Span.Seconds()
	}
	return s
}

// span returns b − a, for a ≤ b, saturated at the longest Duration.
func span(a, b int64) time.Duration {
	d := uint64(b) - uint64(a) // exact: the difference is below 2⁶⁴
	if d > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// Stats is the statistics of a window as rule expressions read them:
// windows.NAME.count, .sum, .avg, … (docs/rules.md). Count, Rate and Span
// always hold a value; the other fields hold a float64, or nil when Count is
// 0. Span is a time.Duration, which expressions compare with durations
// (windows.h.span > duration("1m")) and which is an integer number of
// nanoseconds in JSON.
//
// Putting a float64 in an interface allocates: taking a Stats costs up to
// seven small allocations, which a Summary does not.
type Stats struct {
	Count int           `expr:"count" json:"count"`
	Sum   any           `expr:"sum" json:"sum"`
	Avg   any           `expr:"avg" json:"avg"`
	Min   any           `expr:"min" json:"min"`
	Max   any           `expr:"max" json:"max"`
	First any           `expr:"first" json:"first"`
	Last  any           `expr:"last" json:"last"`
	Delta any           `expr:"delta" json:"delta"`
	Rate  float64       `expr:"rate" json:"rate"`
	Span  time.Duration `expr:"span" json:"span"`
}

// Stats returns the statistics of the samples in the window, without
// expiring any.
func (w *Window) Stats() Stats { return w.Summary().Stats() }

// Stats returns the summary as rule expressions read it.
func (s Summary) Stats() Stats {
	if s.Count == 0 {
		return Stats{}
	}
	return Stats{
		Count: s.Count,
		Sum:   s.Sum,
		Avg:   s.Avg,
		Min:   s.Min,
		Max:   s.Max,
		First: s.First,
		Last:  s.Last,
		Delta: s.Delta,
		Rate:  s.Rate,
		Span:  s.Span,
	}
}
