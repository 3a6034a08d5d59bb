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
