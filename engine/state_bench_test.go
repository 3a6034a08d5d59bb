package engine

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// BenchmarkStateMemory measures the heap that 100,000 keys of one stateful
// rule take: a pending `for` each (a timer in the heap), with `prev` kept,
// and a typical 40-byte JSON payload.
//
//	go test -run '^$' -bench StateMemory -benchtime 1x ./engine/
func BenchmarkStateMemory(b *testing.B) {
	const keys = 100000
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "m.yaml", Data: []byte(`
rules:
  - name: r
    topic: sensors/+/temperature
    when: payload.value > 30 && (prev == nil || prev.payload.value > 0)
    for: 1h
    actions: [{log: "{{ topic }}"}]
`)})
	if err != nil {
		b.Fatal(err)
	}
	topics := make([]string, keys)
	payloads := make([][]byte, keys)
	for i := range topics {
		topics[i] = fmt.Sprintf("sensors/%d/temperature", i)
		payloads[i] = fmt.Appendf(nil, `{"value": 31.5, "unit": "C", "seq": %6d}`, i)
	}
	var perKey float64
	for b.Loop() {
		e := New(Config{Actions: &recorder{}, MaxKeys: keys})
		e.SetRules(rs)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		now := time.Now()
		for i := range topics {
			e.Handle(Message{Topic: topics[i], Payload: payloads[i], Time: now})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := len(e.timers); n != keys {
			b.Fatalf("%d timers, want %d", n, keys)
		}
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / keys
		runtime.KeepAlive(e)
	}
	b.ReportMetric(perKey, "heap-B/key")
	b.ReportMetric(perKey*keys/(1<<20), "heap-MiB/100k-keys")
}
