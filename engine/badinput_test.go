package engine

import (
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// TestBadInput sends what real sensors and broken clients send. Nothing
// may crash; each message either fires with a defined value, is a counted
// condition error, or is a counted drop.
func TestBadInput(t *testing.T) {
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "bad.yaml", Data: []byte(`
rules:
  - name: number
    topic: "in/#"
    when: payload.value > 30
    actions: [{log: "number {{ payload.value }}"}]
  - name: echo
    topic: "in/#"
    actions: [{publish: {topic: "out/{{ len(raw) }}", payload: "{{ raw }}"}}]
  - name: whole
    topic: "in/#"
    when: type(payload) == "map"
    actions: [{log: "{{ toJSON(payload) }}"}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := New(Config{Actions: rec, MaxPayload: 8 << 10})
	e.SetRules(rs)
	cases := []struct {
		name, topic string
		payload     []byte
	}{
		{"empty", "in/a", nil},
		{"binary", "in/a", []byte{0, 1, 2, 0xff, 0xfe}},
		{"invalid utf-8 in JSON string", "in/a", []byte("{\"value\": 31, \"s\": \"\xff\"}")},
		{"oversized", "in/a", []byte(strings.Repeat("x", 8<<10+1))},
		{"deeply nested", "in/a", []byte(strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600))},
		{"huge number", "in/a", []byte(`{"value": 1e400}`)},
		{"huge integer", "in/a", []byte(`{"value": 123456789012345678901234567890}`)},
		{"odd topic", "in/ü/$x/ /+#", []byte(`{"value": 31}`)},
		{"empty levels", "in//", []byte(`{"value": 31}`)},
		{"NaN text", "in/a", []byte(`{"value": NaN}`)},
		{"truncated", "in/a", []byte(`{"value": 3`)},
		{"control characters", "in/a", []byte("\x1b[31mred\x1b[0m")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.Handle(Message{Topic: c.topic, Payload: c.payload})
		})
	}
	reqs := rec.take()
	if len(reqs) == 0 {
		t.Fatal("nothing fired at all")
	}
	counts := e.Counters()
	if d := counts.Drops()[DropTooLarge]; d != 1 {
		t.Errorf("too_large drops = %d, want 1", d)
	}
	if got := counts.Received(); got != uint64(len(cases)) {
		t.Errorf("received %d, want %d", got, len(cases))
	}
	// Every message that was not dropped reached the echo rule.
	echo := counts.Rule("echo")
	if echo.Fires.Load()+echo.ConditionErrors.Load() != uint64(len(cases)-1) {
		t.Errorf("echo fired %d (errors %d), want %d", echo.Fires.Load(), echo.ConditionErrors.Load(), len(cases)-1)
	}
	// The payloads that are not JSON objects with a numeric value are
	// condition errors of "number", counted, not crashes.
	number := counts.Rule("number")
	if number.Fires.Load() != 4 || number.ConditionErrors.Load() == 0 {
		t.Errorf("number: fires %d, errors %d", number.Fires.Load(), number.ConditionErrors.Load())
	}
	for _, r := range reqs {
		if p, ok := r.Action.(*actions.Publish); ok && strings.Contains(p.Topic, "+") {
			t.Errorf("published to a wildcard topic %q", p.Topic)
		}
	}
}
