package window

import (
	"fmt"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

// TestStatsInExpr runs rule conditions on Stats through expr-lang, with and
// without a typed environment, as the engine puts it in: windows.NAME.
func TestStatsInExpr(t *testing.T) {
	full := newWindow(t, 5*time.Minute, 0,
		point{0, 55}, point{time.Minute, 61}, point{2 * time.Minute, 70}).Read(at(2 * time.Minute))
	empty := newWindow(t, 5*time.Minute, 0).Read(t0)

	tests := []struct {
		src     string
		stats   Stats
		want    any
		wantErr bool
	}{
		{src: `windows.h.count >= 2 && windows.h.delta > 10`, stats: full, want: true},
		{src: `windows.h.count >= 2 && windows.h.delta > 10`, stats: empty, want: false},
		{src: `windows.h.min == nil`, stats: empty, want: true},
		{src: `windows.h.min == nil`, stats: full, want: false},
		{src: `windows.h.min`, stats: full, want: 55.0},
		{src: `windows.h.avg`, stats: full, want: 62.0},
		{src: `windows.h.sum ?? 0`, stats: empty, want: 0},
		{src: `windows.h.last - windows.h.first`, stats: full, want: 15.0},
		{src: `windows.h.rate * 60`, stats: full, want: 7.5},
		{src: `windows.h.rate`, stats: empty, want: 0.0},
		{src: `windows.h.span >= duration("2m")`, stats: full, want: true},
		{src: `windows.h.span`, stats: full, want: 2 * time.Minute},
		{src: `windows.h.span == duration("0s")`, stats: empty, want: true},
		// nil does not compare with numbers: guard with count, or default with ??.
		{src: `windows.h.delta > 10`, stats: empty, wantErr: true},
		{src: `(windows.h.delta ?? 0) > 10`, stats: empty, want: false},
	}
	for _, typed := range []bool{false, true} {
		for _, tt := range tests {
			name := fmt.Sprintf("%s/count=%d/typed=%v", tt.src, tt.stats.Count, typed)
			t.Run(name, func(t *testing.T) {
				env := map[string]any{"windows": map[string]Stats{"h": tt.stats}}
				var opts []expr.Option
				if typed {
					opts = append(opts, expr.Env(env))
				}
				prog, err := expr.Compile(tt.src, opts...)
				if err != nil {
					t.Fatalf("compile: %v", err)
				}
				got, err := expr.Run(prog, env)
				if tt.wantErr {
					if err == nil {
						t.Fatalf("got %v, want an error", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if got != tt.want {
					t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
				}
			})
		}
	}
}
