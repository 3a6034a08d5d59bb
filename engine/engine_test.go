package engine

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// recorder is an Actions sink that keeps every request.
type recorder struct {
	mu   sync.Mutex
	reqs []actions.Request
}

func (r *recorder) Do(req actions.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

func (r *recorder) take() []actions.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// describe renders a request as one comparable line.
func describe(q actions.Request) string {
	switch a := q.Action.(type) {
	case *actions.Publish:
		return fmt.Sprintf("%s publish %s %s q%d r%v", q.Rule, a.Topic, a.Payload, a.QoS, a.Retain)
	case *actions.Webhook:
		return fmt.Sprintf("%s webhook %s %s %v %s", q.Rule, a.Method, a.URL, a.Header, a.Body)
	case *actions.Log:
		return fmt.Sprintf("%s log %s", q.Rule, a.Message)
	}
	return "?"
}

func newEngine(t *testing.T, src string) (*Engine, *recorder) {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "test.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	rec := &recorder{}
	e := New(Config{Actions: rec})
	e.SetRules(rs)
	return e, rec
}

func expect(t *testing.T, rec *recorder, want ...string) {
	t.Helper()
	var got []string
	for _, q := range rec.take() {
		got = append(got, describe(q))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n got %q\nwant %q", got, want)
	}
}

func TestStatelessRule(t *testing.T) {
	e, rec := newEngine(t, `
rules:
  - name: hot
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish:
          topic: "alerts/{{ room }}/hot"
          payload: '{"room":"{{ room }}","value":{{ payload.value }}}'
          qos: 1
      - log: "{{ wildcards[0] }} at {{ payload.value }}"
`)
	e.Handle(Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 31.5}`)})
	e.Handle(Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 30}`)})
	e.Handle(Message{Topic: "home/office/temperature", Payload: []byte(`{"value":1e6}`)})
	expect(t, rec,
		`hot publish alerts/kitchen/hot {"room":"kitchen","value":31.5} q1 rfalse`,
		`hot log kitchen at 31.5`,
		`hot publish alerts/office/hot {"room":"office","value":1000000} q1 rfalse`,
		`hot log office at 1000000`,
	)
	if s := e.Counters().Rule("hot"); s.Fires.Load() != 2 || s.LastFired().IsZero() {
		t.Errorf("fires = %d, last fired %v", s.Fires.Load(), s.LastFired())
	}
}

func TestRuleFiresOncePerMessageWithFirstMatchingFilter(t *testing.T) {
	e, rec := newEngine(t, `
rules:
  - name: both
    topic: ["a/{x}", "a/#"]
    actions: [{log: "x={{ x }} w={{ wildcards }}"}]
  - name: later
    topic: "#"
    actions: [{log: "{{ topic }}"}]
`)
	e.Handle(Message{Topic: "a/b"})
	e.Handle(Message{Topic: "a/b/c"})
	expect(t, rec,
		`both log x=b w=["b"]`,
		`later log a/b`,
		`both log x= w=["b/c"]`,
		`later log a/b/c`,
	)
}

func TestDefaultPayloadIsRaw(t *testing.T) {
	e, rec := newEngine(t, `
rules:
  - name: relay
    topic: in/#
    actions:
      - publish: {topic: "out/{{ wildcards[0] }}"}
      - webhook: {url: "http://127.0.0.1:9/x", headers: {X-Topic: "{{ topic }}"}}
`)
	e.Handle(Message{Topic: "in/a", Payload: []byte("\x00binary\xff")})
	expect(t, rec,
		"relay publish out/a \x00binary\xff q0 rfalse",
		"relay webhook POST http://127.0.0.1:9/x map[X-Topic:[in/a]] \x00binary\xff",
	)
}

func TestConditionErrorsAreCountedNotFatal(t *testing.T) {
	e, rec := newEngine(t, `
rules:
  - name: strict
    topic: s/+
    when: payload.value > 30
    actions: [{log: hot}]
`)
	e.Handle(Message{Topic: "s/1", Payload: []byte("not json")})
	e.Handle(Message{Topic: "s/1", Payload: []byte(`{"other": 1}`)})
	e.Handle(Message{Topic: "s/1", Payload: []byte(`{"value": 31}`)})
	expect(t, rec, "strict log hot")
	if n := e.Counters().Rule("strict").ConditionErrors.Load(); n != 2 {
		t.Errorf("condition errors = %d, want 2", n)
	}
}

func TestActionRenderErrorFailsOnlyThatAction(t *testing.T) {
	e, rec := newEngine(t, `
rules:
  - name: r
    topic: t/#
    actions:
      - publish: {topic: "{{ payload.sub }}"}
      - log: "still runs"
`)
	e.Handle(Message{Topic: "t/x", Payload: []byte(`{"sub": "a/+"}`)})
	e.Handle(Message{Topic: "t/x", Payload: []byte(`{"sub": ""}`)})
	e.Handle(Message{Topic: "t/x", Payload: []byte(`{"sub": "out/ok"}`)})
	expect(t, rec, "r log still runs", "r log still runs", "r publish out/ok "+`{"sub": "out/ok"}`+" q0 rfalse", "r log still runs")
	if _, failed := e.Counters().Rule("r").Actions(actions.KindPublish); failed != 2 {
		t.Errorf("failed publishes = %d, want 2 (wildcard and empty topics)", failed)
	}
}

type panicker struct{}

func (panicker) Do(actions.Request) { panic("boom") }

func TestPanicIsRecovered(t *testing.T) {
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "t.yaml", Data: []byte(`
rules:
  - name: r
    topic: t
    actions: [{log: x}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Config{Actions: panicker{}})
	e.SetRules(rs)
	e.Handle(Message{Topic: "t"})
	e.Handle(Message{Topic: "t"})
	if n := e.Counters().Rule("r").ConditionErrors.Load(); n != 2 {
		t.Errorf("errors = %d, want 2", n)
	}
}

func TestMaxPayload(t *testing.T) {
	rs, _ := rules.NewLoader().LoadSources(rules.Source{Name: "t.yaml", Data: []byte("rules: [{name: r, topic: t, actions: [{log: x}]}]")})
	rec := &recorder{}
	e := New(Config{Actions: rec, MaxPayload: 4})
	e.SetRules(rs)
	e.Handle(Message{Topic: "t", Payload: []byte("12345")})
	e.Handle(Message{Topic: "t", Payload: []byte("1234")})
	expect(t, rec, "r log x")
	if d := e.Counters().Drops()[DropTooLarge]; d != 1 {
		t.Errorf("too_large drops = %d, want 1", d)
	}
	if e.Counters().Received() != 2 {
		t.Errorf("received = %d, want 2", e.Counters().Received())
	}
}

func TestSetRulesSwapsAndKeepsStats(t *testing.T) {
	e, rec := newEngine(t, "rules: [{name: r, topic: a, actions: [{log: one}]}]")
	e.Handle(Message{Topic: "a"})
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "t.yaml", Data: []byte("rules: [{name: r, topic: b, actions: [{log: two}]}]")})
	if err != nil {
		t.Fatal(err)
	}
	e.SetRules(rs)
	e.Handle(Message{Topic: "a"})
	e.Handle(Message{Topic: "b"})
	expect(t, rec, "r log one", "r log two")
	if n := e.Counters().Rule("r").Fires.Load(); n != 2 {
		t.Errorf("fires across the reload = %d, want 2", n)
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		in   string
		want string // fmt %#v
	}{
		{`{"value": 31.5}`, `map[string]interface {}{"value":31.5}`},
		{`31.5`, `31.5`},
		{`"on"`, `"on"`},
		{`ON`, `"ON"`},
		{`true`, `true`},
		{`trueish`, `"trueish"`},
		{``, `""`},
		{`1e400`, `"1e400"`},
		{`{"a":`, `"{\"a\":"`},
		{"\xff\xfe", `"\xff\xfe"`},
		{strings.Repeat("[", 20000) + strings.Repeat("]", 20000), ""},
	}
	for _, tt := range tests {
		got := fmt.Sprintf("%#v", DecodePayload([]byte(tt.in)))
		if tt.want == "" {
			if _, ok := DecodePayload([]byte(tt.in)).(string); !ok {
				t.Errorf("deeply nested JSON decoded to %T, want the string", DecodePayload([]byte(tt.in)))
			}
			continue
		}
		if got != tt.want {
			t.Errorf("DecodePayload(%.20q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestMessageTimeDefaultsToClock(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rs, _ := rules.NewLoader().LoadSources(rules.Source{Name: "t.yaml", Data: []byte(`rules: [{name: r, topic: t, actions: [{log: "{{ now }}"}]}]`)})
	rec := &recorder{}
	e := New(Config{Actions: rec, Clock: fixedClock(at)})
	e.SetRules(rs)
	e.Handle(Message{Topic: "t"})
	expect(t, rec, "r log 2026-01-02T03:04:05Z")
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestHistogram(t *testing.T) {
	var h Histogram
	for _, v := range []float64{0.001, 0.005, 0.2, 3, 100} {
		h.Observe(v)
	}
	cum, n, sum := h.Snapshot()
	if n != 5 || cum[0] != 2 || cum[5] != 3 || cum[9] != 4 || cum[len(cum)-1] != 5 {
		t.Errorf("cumulative %v, count %d", cum, n)
	}
	if sum < 103.2 || sum > 103.21 {
		t.Errorf("sum = %v", sum)
	}
}
