package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// brokerSink records publishes with their broker and properties.
type brokerSink struct{ got []string }

func (s *brokerSink) Do(q actions.Request) {
	p, ok := q.Action.(*actions.Publish)
	if !ok {
		return
	}
	line := fmt.Sprintf("%s %s@%s %s", q.Rule, p.Topic, p.Broker, p.Payload)
	if pr := p.Properties; pr != nil {
		line += fmt.Sprintf(" props{user=%v ct=%q rt=%q cd=%q exp=%v}", pr.User, pr.ContentType, pr.ResponseTopic, pr.CorrelationData, *pr.MessageExpiry)
	}
	s.got = append(s.got, line)
}

func brokerEngine(t *testing.T, src string) (*Engine, *brokerSink) {
	t.Helper()
	l := rules.NewLoader()
	l.Brokers = []string{"cloud"}
	rs, err := l.LoadSources(rules.Source{Name: "b.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	sink := &brokerSink{}
	e := New(Config{Actions: sink})
	e.SetRules(rs)
	return e, sink
}

// TestRulesSeeTheirBroker: a message from a broker reaches only the rules
// on that broker; state() reads that broker's topics; a publish goes to
// the rule's broker unless it names another.
func TestRulesSeeTheirBroker(t *testing.T) {
	e, sink := brokerEngine(t, `
rules:
  - name: local
    topic: t
    when: state("mode")?.payload == "on"
    actions: [{publish: {topic: out, payload: local}}]
  - name: to-cloud
    broker: cloud
    topic: t
    actions:
      - publish: {topic: out, payload: "cloud {{ state('mode')?.raw ?? 'none' }}"}
      - publish: {topic: back, payload: bridged, broker: default}
`)
	e.Handle(Message{Topic: "mode", Payload: []byte("on")})
	e.Handle(Message{Topic: "mode", Payload: []byte("off"), Broker: "cloud"})
	e.Handle(Message{Topic: "t", Payload: []byte("x")})
	e.Handle(Message{Topic: "t", Payload: []byte("x"), Broker: "cloud"})
	want := []string{"local out@ local", "to-cloud out@cloud cloud off", "to-cloud back@ bridged"}
	if strings.Join(sink.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(sink.got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := e.Rules().FiltersOn("cloud"); strings.Join(got, ",") != "mode,t" {
		t.Errorf("cloud filters %q", got)
	}
}

// TestUnknownBroker: naming a broker the config does not have is a load
// error at its place.
func TestUnknownBroker(t *testing.T) {
	l := rules.NewLoader()
	l.Brokers = []string{"cloud"}
	_, err := l.LoadSources(rules.Source{Name: "b.yaml", Data: []byte(`
rules:
  - name: r
    broker: clod
    topic: t
    actions: [{log: x}]
  - name: s
    topic: t
    actions: [{publish: {topic: x, broker: nope}}]
`)})
	if err == nil || !strings.Contains(err.Error(), `b.yaml:4:13: rule "r": broker: no broker "clod" in the config (brokers: default, cloud) (did you mean "cloud"?)`) ||
		!strings.Contains(err.Error(), `actions[0].publish.broker: no broker "nope"`) {
		t.Errorf("err = %v", err)
	}
}

// TestRequestResponse: a rule answers an MQTT 5 request on its response
// topic with its correlation data, reading the request's properties.
func TestRequestResponse(t *testing.T) {
	e, sink := brokerEngine(t, `
rules:
  - name: answer
    topic: req/time
    when: properties.response_topic != ""
    actions:
      - publish:
          topic: "{{ properties.response_topic }}"
          payload: "{{ properties.user.who }} asked ({{ properties.content_type }}, {{ properties.message_expiry }}s, format {{ properties.payload_format }})"
          properties:
            correlation_data: "{{ properties.correlation_data }}"
            user: {answered-by: mqtt-rules}
            content_type: text/plain
            message_expiry: 1m
  - name: plain
    topic: req/time
    when: properties.response_topic == "" && properties.message_expiry == nil && len(properties.user) == 0
    actions: [{publish: {topic: plain, payload: "no properties"}}]
`)
	exp, format := uint32(30), byte(1)
	e.Handle(Message{Topic: "req/time", Payload: []byte("?"), Properties: &actions.Properties{
		User: []actions.UserProperty{{Name: "who", Value: "a"}, {Name: "who", Value: "b"}}, ContentType: "text/plain",
		ResponseTopic: "resp/1", CorrelationData: []byte("id-42"), MessageExpiry: &exp, PayloadFormat: &format,
	}})
	e.Handle(Message{Topic: "req/time", Payload: []byte("?")})
	want := []string{
		`answer resp/1@ b asked (text/plain, 30s, format 1) props{user=[{answered-by mqtt-rules}] ct="text/plain" rt="" cd="id-42" exp=60}`,
		"plain plain@ no properties",
	}
	if strings.Join(sink.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(sink.got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestLoopsPerBroker: a publish on one broker is not taken for a message
// coming back on another.
func TestLoopsPerBroker(t *testing.T) {
	g := newLoopGuard()
	g.record("a", "t", []byte("p"), 3, t0)
	if h := g.hop("b", "t", []byte("p"), t0); h != 0 {
		t.Errorf("hop on another broker %d, want 0", h)
	}
	if h := g.hop("a", "t", []byte("p"), t0); h != 3 {
		t.Errorf("hop on the same broker %d, want 3", h)
	}
}
