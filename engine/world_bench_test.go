package engine

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// BenchmarkStateLookup measures state(TOPIC) on a remembered topic whose
// message was read before (its payload already decoded): a hash lookup
// under a read lock.
//
//	go test -run '^$' -bench StateLookup ./engine/
func BenchmarkStateLookup(b *testing.B) {
	w := newWorld(0, NewCounters())
	w.setFilters([]string{"home/#"}, nil)
	for i := range 1000 {
		t := fmt.Sprintf("home/room%d/mode", i)
		w.update(&Message{Topic: t, Payload: []byte(`{"mode":"night"}`), Time: t0}, strings.Split(t, "/"))
	}
	if _, err := w.state("home/room500/mode"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, _ := w.state("home/room500/mode")
		if v == nil {
			b.Fatal("nil")
		}
	}
}

// BenchmarkStatesLookup measures states(FILTER) for a filter the rule set
// names: its result is kept until one of its topics changes.
func BenchmarkStatesLookup(b *testing.B) {
	w := newWorld(0, NewCounters())
	w.setFilters([]string{"zigbee2mqtt/+/contact"}, []string{"zigbee2mqtt/+/contact"})
	for i := range 50 {
		t := fmt.Sprintf("zigbee2mqtt/door%d/contact", i)
		w.update(&Message{Topic: t, Payload: []byte(`{"contact":true}`), Time: t0}, strings.Split(t, "/"))
	}
	b.ReportAllocs()
	for b.Loop() {
		v, _ := w.states("zigbee2mqtt/+/contact")
		if len(v) != 50 {
			b.Fatal(len(v))
		}
	}
}

// BenchmarkStateRule measures a message through a rule whose condition
// reads another topic's state (motion, and the house in night mode).
func BenchmarkStateRule(b *testing.B) {
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "b.yaml", Data: []byte(`
rules:
  - name: r
    topic: zigbee2mqtt/+/motion
    when: payload.occupancy == true && state("home/mode")?.payload.mode == "night"
    actions: [{log: x}]
`)})
	if err != nil {
		b.Fatal(err)
	}
	e := New(Config{Actions: &recorder{}, TraceLen: -1})
	e.SetRules(rs)
	e.Handle(Message{Topic: "home/mode", Payload: []byte(`{"mode":"day"}`), Time: t0})
	msg := Message{Topic: "zigbee2mqtt/hall/motion", Payload: []byte(`{"occupancy":true}`), Time: t0}
	b.ReportAllocs()
	for b.Loop() {
		e.Handle(msg)
	}
}

// BenchmarkWorldMemory measures what 100,000 remembered topics with
// 100-byte payloads take: the heap they add, and the resident size of the
// whole test process after them (the engine's RSS budget is 64 MiB).
//
//	go test -run '^$' -bench WorldMemory -benchtime 1x ./engine/
func BenchmarkWorldMemory(b *testing.B) {
	const topics = 100_000
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "m.yaml", Data: []byte(`
remember: ["sensors/#"]
rules:
  - name: r
    topic: check
    when: len(states("sensors/+/state")) > 0
    actions: [{log: x}]
`)})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, topics)
	payloads := make([][]byte, topics)
	for i := range names {
		names[i] = fmt.Sprintf("sensors/%06d/state", i)
		p := fmt.Appendf(nil, `{"seq":%6d,"state":"ON","temperature":21.5,"humidity":48,"battery":97,"linkquality":120,"x":"`, i)
		p = append(p, strings.Repeat("y", 100-len(p)-2)...)
		payloads[i] = append(p, `"}`...)
	}
	var perTopic, rss float64
	for b.Loop() {
		e := New(Config{Actions: &recorder{}})
		e.SetRules(rs)
		runtime.GC()
		debug.FreeOSMemory()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		now := time.Now()
		for i := range names {
			e.Handle(Message{Topic: names[i], Payload: payloads[i], Time: now})
		}
		// Read them all once, as a states() over every topic does.
		if os.Getenv("WORLD_READ") != "" {
			e.Handle(Message{Topic: "check", Payload: []byte("1"), Time: now})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n, _ := e.Counters().Remembered(); n != topics {
			b.Fatalf("%d remembered, want %d", n, topics)
		}
		perTopic = float64(after.HeapAlloc-before.HeapAlloc) / topics
		rss = residentMiB()
		runtime.KeepAlive(e)
		runtime.KeepAlive(payloads)
	}
	b.ReportMetric(perTopic, "heap-B/topic")
	b.ReportMetric(perTopic*topics/(1<<20), "heap-MiB/100k-topics")
	b.ReportMetric(rss, "process-RSS-MiB")
}

// residentMiB returns the process's resident set size (Linux), or 0.
func residentMiB() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.Atoi(f[1])
	return float64(pages*os.Getpagesize()) / (1 << 20)
}
