package window

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// specials are values a fuzz input picks by index: the ones Add refuses,
// the extremes, and magnitudes either side of the split of the sums.
var specials = []float64{
	math.NaN(), math.Inf(1), math.Inf(-1),
	math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
	0, math.Copysign(0, -1), 1, -1, 0.1, 1e17, -1e17,
	math.Ldexp(1, 500), -math.Ldexp(1, 500), math.Nextafter(math.Ldexp(1, 500), 0), 1e300, -1e300,
}

// FuzzWindow drives a window and the naive reference with the same adds,
// expiries and restores, and compares every statistic after each step.
//
// Input: byte 0 picks over (1 to 64 ns), byte 1 max_samples (1 to 100);
// then operations. An operation byte op:
//
//	op%8 < 5:  add at the last time + (next byte − 8) ns a value chosen by op/8%4:
//	           0 a small number (next byte as int8, quartered), 1 any float64
//	           (next 8 bytes), 2 specials[next byte], 3 next 2 bytes as int16 × 10¹⁵
//	op%8 < 7:  expire at the last time + (next byte − 32) ns
//	op%8 == 7: save the samples and go on with a window restored from them
func FuzzWindow(f *testing.F) {
	f.Add([]byte{10, 4, 0, 9, 8, 0, 10, 12, 0, 11, 4, 5, 40, 8, 13, 3, 0, 200})
	f.Add([]byte{63, 3, 16, 8, 0, 16, 8, 1, 16, 8, 2, 16, 8, 3, 16, 8, 4, 7, 24, 9, 0xff, 0x7f, 5, 100})
	f.Add([]byte{5, 99, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f, 7, 5, 255})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 0, 7, 3, 0, 4, 5, 0})
	f.Add([]byte{20, 1, 0, 7, 5, 0, 7, 250, 0, 1, 251, 16, 7, 12, 16, 7, 13, 7, 6, 40})
	f.Add([]byte{30, 9, 16, 8, 3, 16, 8, 3, 16, 8, 4, 16, 8, 14, 16, 8, 15, 16, 8, 16, 16, 8, 17, 0, 8, 1, 5, 60})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		over := time.Duration(1 + int(data[0])%64)
		maxSamples := 1 + int(data[1])%100
		w, err := New(over, maxSamples)
		if err != nil {
			t.Fatal(err)
		}
		r := newRef(over, maxSamples)
		now := int64(1_750_000_000_000_000_000)
		data = data[2:]
		next := func(n int) []byte {
			if len(data) < n {
				return nil
			}
			b := data[:n]
			data = data[n:]
			return b
		}
		for step := 0; len(data) > 0; step++ {
			op := next(1)[0]
			switch {
			case op%8 < 5:
				b := next(1)
				if b == nil {
					return
				}
				now += int64(b[0]) - 8
				var v float64
				switch op / 8 % 4 {
				case 0:
					b := next(1)
					if b == nil {
						return
					}
					v = float64(int8(b[0])) / 4
				case 1:
					b := next(8)
					if b == nil {
						return
					}
					v = math.Float64frombits(binary.LittleEndian.Uint64(b))
				case 2:
					b := next(1)
					if b == nil {
						return
					}
					v = specials[int(b[0])%len(specials)]
				case 3:
					b := next(2)
					if b == nil {
						return
					}
					v = float64(int16(binary.LittleEndian.Uint16(b))) * 1e15
				}
				got, want := w.AddUnixNano(now, v), r.add(now, v)
				if got != want {
					t.Fatalf("step %d: Add(%d, %v): got %v, want %v", step, now, v, got, want)
				}
			case op%8 < 7:
				b := next(1)
				if b == nil {
					return
				}
				now += int64(b[0]) - 32
				w.ExpireUnixNano(now)
				r.expire(now)
			default:
				restored, err := New(over, maxSamples)
				if err != nil {
					t.Fatal(err)
				}
				if err := restored.Restore(w.Samples(nil)); err != nil {
					t.Fatalf("step %d: restore: %v", step, err)
				}
				w = restored
			}
			if err := compare(w, r); err != nil {
				t.Fatalf("step %d (op %d): %v", step, op, err)
			}
		}
	})
}
