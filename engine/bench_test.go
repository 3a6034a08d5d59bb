package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

type discard struct{}

func (discard) Do(actions.Request) {}

// benchEngine loads n threshold rules on sensors/{id}/temperature, each
// republishing the original payload, as in the load test.
func benchEngine(b *testing.B, n int) *Engine {
	var src strings.Builder
	src.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&src, `  - name: hot-%d
    topic: sensors/{id}/temperature
    when: payload.value > 30
    actions: [{publish: {topic: "alerts/{{ id }}/temperature", qos: 1}}]
`, i)
	}
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "bench.yaml", Data: []byte(src.String())})
	if err != nil {
		b.Fatal(err)
	}
	e := New(Config{Actions: discard{}})
	e.SetRules(rs)
	return e
}

// BenchmarkHandle is the per-message path: decode, match, evaluate,
// render, hand over — for 1 and 100 rules matching each message.
//
//	go test -run '^$' -bench Handle -benchmem ./engine/
func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("matching=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			payload := []byte(`{"value":31,"seq":123456,"ts":1764100000000000000}`)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				e.Handle(Message{Topic: "sensors/42/temperature", Payload: payload, QoS: 1, Time: now})
			}
		})
	}
}

// homeRules is the home set of bench/run.sh (BENCHMARKS.md, "Home"):
// 2,000 devices home/g<G>/d<N>/sensor in 40 groups of 50, a relay rule,
// and 199 rules, one of each kind per group: state() with a cooldown,
// states() over the group's topics (led by guard), a window, for, absent.
func homeRules(b *testing.B, guard string) *rules.RuleSet {
	var src strings.Builder
	src.WriteString(`rules:
  - name: relay
    topic: home/+/{dev}/sensor
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ dev }}/sensor"}
`)
	for k := 1; k < 200; k++ {
		g := k % 40
		fmt.Fprintf(&src, "  - name: r%d\n    topic: home/g%d/{dev}/sensor\n    key: \"{{ dev }}\"\n", k, g)
		switch k / 40 % 5 {
		case 0:
			src.WriteString("    when: payload.value > 30 && state(\"home/mode\")?.payload != \"away\"\n    cooldown: 1m\n")
		case 1:
			fmt.Fprintf(&src, "    when: %s any(states(\"home/g%d/+/sensor\"), {.payload.value > 40})\n", guard, g)
		case 2:
			src.WriteString("    windows:\n      temp: {value: payload.value, over: 5m}\n    when: windows.temp.avg > 35\n")
		case 3:
			src.WriteString("    when: payload.value > 30\n    for: 10m\n")
		case 4:
			src.WriteString("    absent: 10m\n")
		}
		fmt.Fprintf(&src, "    actions:\n      - publish: {topic: \"notify/r%d/{{ dev }}\", payload: \"{{ raw }}\"}\n", k)
	}
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "home.yaml", Data: []byte(src.String())})
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

// BenchmarkHome is the home set's per-message path over its 2,000
// devices, against the relay rule alone on the same topics:
//
//	go test -run '^$' -bench Home -benchmem ./engine/
func BenchmarkHome(b *testing.B) {
	topics := make([]string, 2000)
	for i := range topics {
		topics[i] = fmt.Sprintf("home/g%d/d%d/sensor", i/50, i)
	}
	relay, err := rules.NewLoader().LoadSources(rules.Source{Name: "relay.yaml", Data: []byte(`rules:
  - name: relay
    topic: home/+/{dev}/sensor
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ dev }}/sensor"}
`)})
	if err != nil {
		b.Fatal(err)
	}
	for _, set := range []struct {
		name string
		rs   *rules.RuleSet
	}{
		{"relay", relay},
		{"home", homeRules(b, "payload.value > 40 &&")},       // the states() rule tests the reading first
		{"home-every", homeRules(b, "payload.value > 40 ||")}, // and reads the 50 topics on every message
	} {
		b.Run(set.name, func(b *testing.B) {
			clock := &fakeClock{now: time.Now()}
			e := New(Config{Actions: discard{}, Clock: clock})
			e.SetRules(set.rs)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// 5,000 msg/s: the clock moves 200 µs per message, so
				// windows expire and cooldowns end as in the load run.
				clock.now = clock.now.Add(200 * time.Microsecond)
				payload := fmt.Appendf(nil, `{"value":31,"run":7,"seq":%d,"ts":1764100000000000000}`, i)
				e.Handle(Message{Topic: topics[i%len(topics)], Payload: payload, Time: clock.now})
				i++
			}
		})
	}
}
