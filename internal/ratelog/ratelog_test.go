package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const every = 10 * time.Second
	type step struct {
		at         time.Duration // offset from t0
		ok         bool
		suppressed int
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"the first event is logged", []step{{0, true, 0}}},
		{"then one per interval, with the count refused in between", []step{
			{0, true, 0}, {time.Second, false, 0}, {5 * time.Second, false, 0},
			{10 * time.Second, true, 2}, {11 * time.Second, false, 0}, {25 * time.Second, true, 1},
		}},
		{"an interval counts from the last event allowed, not the last refused", []step{
			{0, true, 0}, {9 * time.Second, false, 0}, {18 * time.Second, true, 1}, {27 * time.Second, false, 0},
		}},
		{"exactly one interval later is allowed", []step{{0, true, 0}, {every, true, 0}, {2*every - 1, false, 0}}},
		{"a long quiet spell: the next event is logged with nothing suppressed", []step{
			{0, true, 0}, {time.Hour, true, 0},
		}},
		{"a clock stepping back does not open the gate", []step{
			{time.Minute, true, 0}, {0, false, 0}, {time.Minute + every, true, 1},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var l Limiter
			for i, s := range tt.steps {
				suppressed, ok := l.Allow(t0.Add(s.at), every)
				if ok != s.ok || suppressed != s.suppressed {
					t.Errorf("step %d at +%v: Allow = %d, %v; want %d, %v", i, s.at, suppressed, ok, s.suppressed, s.ok)
				}
			}
		})
	}
}

func TestAllowZeroInterval(t *testing.T) {
	var l Limiter
	now := time.Now()
	for i := range 3 {
		if suppressed, ok := l.Allow(now, 0); !ok || suppressed != 0 {
			t.Errorf("event %d: Allow(every 0) = %d, %v; want 0, true", i, suppressed, ok)
		}
	}
}

func TestCount(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var l Limiter
	for i, tt := range []struct {
		at   time.Duration
		want int
	}{
		{0, 1},           // the first: itself
		{time.Second, 0}, // within the interval: wait
		{2 * time.Second, 0},
		{10 * time.Second, 3}, // itself and the two waiting
		{12 * time.Second, 0},
	} {
		if got := l.Count(t0.Add(tt.at), 10*time.Second); got != tt.want {
			t.Errorf("event %d at +%v: Count = %d, want %d", i, tt.at, got, tt.want)
		}
	}
}

func TestFlush(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var l Limiter
	if n := l.Flush(); n != 0 {
		t.Errorf("Flush of a new Limiter = %d, want 0", n)
	}
	l.Allow(t0, time.Minute)
	l.Allow(t0.Add(time.Second), time.Minute)
	l.Allow(t0.Add(2*time.Second), time.Minute)
	if n := l.Flush(); n != 2 {
		t.Errorf("Flush = %d, want the 2 refused", n)
	}
	if n := l.Flush(); n != 0 {
		t.Errorf("second Flush = %d, want 0: the first forgot them", n)
	}
	// The interval goes on: the next event within it is refused, and
	// counts from zero.
	if _, ok := l.Allow(t0.Add(3*time.Second), time.Minute); ok {
		t.Error("Allow within the interval after Flush = true, want false")
	}
	if suppressed, ok := l.Allow(t0.Add(time.Minute), time.Minute); !ok || suppressed != 1 {
		t.Errorf("Allow after the interval = %d, %v; want 1, true", suppressed, ok)
	}
}

// TestConcurrent: events from many goroutines are each either allowed or
// counted once among the suppressed, so logged lines account for all.
func TestConcurrent(t *testing.T) {
	var l Limiter
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const goroutines, events = 8, 1000
	var (
		mu              sync.Mutex
		allowed, missed int
		wg              sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range events {
				// Times interleave: every goroutine steps through an hour.
				now := t0.Add(time.Duration(i*goroutines+g) * time.Second / 2)
				if suppressed, ok := l.Allow(now, time.Minute); ok {
					mu.Lock()
					allowed++
					missed += suppressed
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	missed += l.Flush()
	if allowed+missed != goroutines*events {
		t.Errorf("allowed %d + suppressed %d = %d events, want %d", allowed, missed, allowed+missed, goroutines*events)
	}
	if allowed < 2 {
		t.Errorf("allowed %d events over an hour at one a minute, want more than one", allowed)
	}
}
