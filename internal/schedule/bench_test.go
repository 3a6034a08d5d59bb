package schedule_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/schedule"
)

var benchSpecs = []string{
	"0 22 * * mon-fri",
	"*/15 6-9 * jan,dec *",
	"30 2 * * *",
	"0 12 29 2 *",
	"@daily",
	"@every 90s",
}

func BenchmarkParse(b *testing.B) {
	for _, spec := range benchSpecs {
		b.Run(spec, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schedule.Parse(spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNext(b *testing.B) {
	berlin := mustLoad(b, "Europe/Berlin")
	for _, spec := range benchSpecs {
		s, err := schedule.Parse(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			b.ReportAllocs()
			at := time.Date(2026, time.January, 1, 0, 0, 0, 0, berlin)
			for b.Loop() {
				next := s.Next(at, berlin)
				if next.IsZero() {
					b.Fatal("no firing")
				}
				if next.Year() > 2100 {
					next = time.Date(2026, time.January, 1, 0, 0, 0, 0, berlin)
				}
				at = next
			}
		})
	}
}

// BenchmarkLoad10000 is loading 10,000 schedule rules: parse each and
// compute its first firing. One op is the whole load.
func BenchmarkLoad10000(b *testing.B) {
	days := []string{"*", "mon-fri", "sat,sun", "1", "*/2", "fri", "0-6"}
	specs := make([]string, 10000)
	for i := range specs {
		switch i % 4 {
		case 0:
			specs[i] = fmt.Sprintf("%d %d * * %s", i%60, i%24, days[i%len(days)])
		case 1:
			specs[i] = fmt.Sprintf("*/%d %d-%d * * *", 1+i%30, i%12, 12+i%12)
		case 2:
			specs[i] = fmt.Sprintf("%d %d %d %d *", i%60, i%24, 1+i%28, 1+i%12)
		default:
			specs[i] = fmt.Sprintf("@every %ds", 1+i)
		}
	}
	berlin := mustLoad(b, "Europe/Berlin")
	now := time.Date(2026, time.October, 24, 12, 0, 0, 0, berlin)
	b.ReportAllocs()
	for b.Loop() {
		for _, spec := range specs {
			s, err := schedule.Parse(spec)
			if err != nil {
				b.Fatal(err)
			}
			if s.Next(now, berlin).IsZero() {
				b.Fatal("no firing")
			}
		}
	}
}
