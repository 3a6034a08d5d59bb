package statuspage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// manyRules writes n rules, one topic each; every fifth is stateful (a
// cooldown, or a for).
func manyRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: rule-%04d\n    description: Sensor %d above its threshold\n    topic: sensors/%d/{kind}\n    when: payload.value > %d\n", i, i, i, 50+i%40)
		switch i % 10 {
		case 0:
			b.WriteString("    cooldown: 10s\n")
		case 5:
			b.WriteString("    for: 2s\n")
		}
		b.WriteString("    actions:\n      - log: {message: \"{{ topic }} at {{ payload.value }}\", level: debug}\n")
	}
	return b.String()
}

// busyFixture is 1000 rules that all fired, with stateful keys.
func busyFixture(b *testing.B) *fakeStatus {
	f := newFixture(b, manyRules(1000))
	for i := range 1000 {
		for k := range 3 {
			f.engine.Handle(engine.Message{Topic: fmt.Sprintf("sensors/%d/k%d", i, k), Payload: []byte(`{"value": 99}`)})
		}
	}
	return f
}

// BenchmarkTick measures the broadcaster's frame with 1,000 rules: the
// counters and keys read, the delta encoded (the full snapshot is built
// only for a page that needs it; see BenchmarkFull).
func BenchmarkTick(b *testing.B) {
	f := busyFixture(b)
	s := newSnapshotter(f, "bench", nil, DefaultKeysBudget)
	s.tick()
	b.ReportAllocs()
	var delta int
	for i := 0; b.Loop(); i++ {
		// A tenth of the rules fire between ticks.
		b.StopTimer()
		for j := range 100 {
			f.engine.Handle(engine.Message{Topic: fmt.Sprintf("sensors/%d/k0", (i*100+j)%1000), Payload: []byte(`{"value": 99}`)})
		}
		b.StartTimer()
		delta = len(s.tick().delta)
	}
	b.ReportMetric(float64(delta), "delta-bytes")
}

// BenchmarkFull measures the full snapshot of 1,000 rules.
func BenchmarkFull(b *testing.B) {
	f := busyFixture(b)
	s := newSnapshotter(f, "bench", nil, DefaultKeysBudget)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		n = len(s.tick().full())
	}
	b.ReportMetric(float64(n), "full-bytes")
	b.ReportMetric(float64(len(s.rules)), "rules-bytes")
}

// BenchmarkSample measures one rates sample with 1,000 rules.
func BenchmarkSample(b *testing.B) {
	f := busyFixture(b)
	s := newSampler(f.Counters, DefaultStep, DefaultBuckets)
	b.ReportAllocs()
	for b.Loop() {
		s.sample(s.end)
	}
}
