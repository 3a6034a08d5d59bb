package window

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// values returns n values of the given shape.
func values(shape string, n int) []float64 {
	out := make([]float64, n)
	var x uint64 = 0x9e3779b97f4a7c15
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407
		switch shape {
		case "noisy":
			out[i] = 20 + float64(x>>40)/(1<<24)*5
		case "rising": // every sample a new maximum: the min deque holds them all
			out[i] = float64(i)
		case "sawtooth":
			out[i] = float64(i % 1000)
		}
	}
	return out
}

// BenchmarkAdd adds samples to a full window at steady state: every add
// drops the oldest sample, by max_samples (10,000 samples a millisecond
// apart in an hour) or by age (a sample a millisecond in 5 s).
func BenchmarkAdd(b *testing.B) {
	for _, bc := range []struct {
		name string
		over time.Duration
	}{
		{"max_samples", time.Hour},
		{"expiry", 5 * time.Second},
	} {
		for _, shape := range []string{"noisy", "rising", "sawtooth"} {
			b.Run(bc.name+"/"+shape, func(b *testing.B) {
				w, err := New(bc.over, DefaultMaxSamples)
				if err != nil {
					b.Fatal(err)
				}
				vs := values(shape, 1<<16)
				ts := t0.UnixNano()
				i := 0
				for ; i < 3*DefaultMaxSamples; i++ {
					ts += int64(time.Millisecond)
					w.AddUnixNano(ts, vs[i%len(vs)])
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					i++
					ts += int64(time.Millisecond)
					w.AddUnixNano(ts, vs[i&(len(vs)-1)])
				}
			})
		}
	}
}

// BenchmarkRead reads every statistic of a full window: as numbers
// (Summary), as rule expressions see them (Stats), and with the expiry
// that precedes each evaluation (Read).
func BenchmarkRead(b *testing.B) {
	w, err := New(time.Hour, DefaultMaxSamples)
	if err != nil {
		b.Fatal(err)
	}
	vs := values("noisy", 3*DefaultMaxSamples)
	ts := t0.UnixNano()
	for _, v := range vs {
		ts += int64(time.Millisecond)
		w.AddUnixNano(ts, v)
	}
	now := time.Unix(0, ts)
	b.Run("Summary", func(b *testing.B) {
		b.ReportAllocs()
		var s Summary
		for b.Loop() {
			s = w.Summary()
		}
		_ = s
	})
	b.Run("Stats", func(b *testing.B) {
		b.ReportAllocs()
		var s Stats
		for b.Loop() {
			s = w.Stats()
		}
		_ = s
	})
	b.Run("Read", func(b *testing.B) {
		b.ReportAllocs()
		var s Stats
		for b.Loop() {
			s = w.Read(now)
		}
		_ = s
	})
}

// BenchmarkMemory reports what windows hold: the fixed size of a Window,
// the bytes per sample of a full window (16 for the sample, plus its share
// of the min and max deques), and the heap per window of 10,000 windows of
// 5 samples each (the engine's per-rule key cap, one window per key).
func BenchmarkMemory(b *testing.B) {
	const windows = 10_000
	var ws []*Window
	var before, after runtime.MemStats
	for b.Loop() {
		ws = make([]*Window, 0, windows)
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range windows {
			w, err := New(5*time.Minute, 0)
			if err != nil {
				b.Fatal(err)
			}
			for j := range 5 {
				w.Add(at(time.Duration(j)*time.Minute), float64(j))
			}
			ws = append(ws, w)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	runtime.KeepAlive(ws)

	// Metrics reported after b.Loop, which resets them.
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/windows, "heap-B/window-of-5")
	fixed := int(unsafe.Sizeof(Window{}))
	b.ReportMetric(float64(fixed), "fixed-B")
	for _, shape := range []string{"noisy", "rising"} {
		w, err := New(time.Hour, DefaultMaxSamples)
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range values(shape, 3*DefaultMaxSamples) {
			w.AddUnixNano(t0.UnixNano()+int64(i), v)
		}
		b.ReportMetric(float64(w.Bytes()-fixed)/float64(w.Len()), "B/sample-"+shape)
	}
}
