package engine

import (
	"fmt"
	"runtime"
	"strings"
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
	keyMemory(b, Config{Actions: &recorder{}}, `
rules:
  - name: r
    topic: sensors/+/temperature
    when: payload.value > 30 && (prev == nil || prev.payload.value > 0)
    for: 1h
    actions: [{log: "{{ topic }}"}]
`, func(i int) (string, []byte) {
		return fmt.Sprintf("sensors/%d/temperature", i), fmt.Appendf(nil, `{"value": 31.5, "unit": "C", "seq": %6d}`, i)
	})
}

// BenchmarkSequenceMemory measures the heap of 100,000 keys each with a
// sequence waiting in a delay step (the motion-light pattern), beyond
// their payloads.
//
//	go test -run '^$' -bench SequenceMemory -benchtime 1x ./engine/
func BenchmarkSequenceMemory(b *testing.B) {
	keyMemory(b, Config{Actions: discard{}, TraceLen: -1}, `
rules:
  - name: light
    topic: zigbee2mqtt/{room}/motion
    key: "{{ room }}"
    actions:
      - publish: {topic: "zigbee2mqtt/{{ room }}/light/set", payload: '{"state":"ON"}'}
      - delay: 2m
      - publish: {topic: "zigbee2mqtt/{{ room }}/light/set", payload: '{"state":"OFF"}'}
`, func(i int) (string, []byte) {
		return fmt.Sprintf("zigbee2mqtt/room%06d/motion", i), []byte(`{"occupancy":true}`)
	})
}

// keyMemory reports the heap that 100,000 keys of the one rule in src take
// after one message each (message(i) gives key i's topic and payload),
// beyond the payloads; each key must hold a timer.
func keyMemory(b *testing.B, cfg Config, src string, message func(i int) (string, []byte)) {
	const keys = 100000
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "m.yaml", Data: []byte(src)})
	if err != nil {
		b.Fatal(err)
	}
	topics := make([]string, keys)
	payloads := make([][]byte, keys)
	for i := range topics {
		topics[i], payloads[i] = message(i)
	}
	cfg.MaxKeys = keys
	var perKey float64
	for b.Loop() {
		e := New(cfg)
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

// BenchmarkLoadSchedules measures loading 10,000 rules with schedules (and
// scheduling each one's next instant).
//
//	go test -run '^$' -bench LoadSchedules -benchtime 3x ./engine/
func BenchmarkLoadSchedules(b *testing.B) {
	var src strings.Builder
	src.WriteString("rules:\n")
	specs := []string{"0 22 * * *", "*/15 6-9 * * mon-fri", "@every 90s", "30 7 1 * *", "@daily"}
	for i := range 10000 {
		fmt.Fprintf(&src, "  - name: r%d\n    schedule: %q\n    when: len(states(\"door/+\")) > 0\n    actions: [{log: x}]\n", i, specs[i%len(specs)])
	}
	data := []byte(src.String())
	for b.Loop() {
		rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "s.yaml", Data: data})
		if err != nil {
			b.Fatal(err)
		}
		e := New(Config{Actions: &recorder{}})
		e.SetRules(rs)
		if n := len(e.timers); n != 10000 {
			b.Fatalf("%d timers", n)
		}
	}
}
