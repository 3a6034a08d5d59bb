package control

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
)

// gatedPublisher blocks publishes while gate is set, as mqttc's Publish
// blocks with a full in-flight window; blocked hears of the first.
type gatedPublisher struct {
	publisher
	mu      sync.Mutex
	gate    chan struct{}
	blocked chan struct{}
}

func (g *gatedPublisher) Publish(m *actions.Publish, done func(error)) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case g.blocked <- struct{}{}:
		default:
		}
		<-gate
	}
	g.publisher.Publish(m, done)
}

// TestReconnectWhileRunBusyRepublishes loses and regains the connection
// while Run is stuck in a publish: the reconnect is not folded into
// "still up", everything is published again (the broker may have
// restarted without its retained messages).
func TestReconnectWhileRunBusyRepublishes(t *testing.T) {
	g := &gatedPublisher{publisher: publisher{fail: map[string]bool{}}, blocked: make(chan struct{}, 1)}
	eng := engine.New(engine.Config{Actions: &recorder{}})
	eng.SetRules(loadRules(t, testRules))
	c, err := New(Config{Engine: eng, Publisher: g, StatusTopic: "mqtt-rules/test/status", ClientID: "test", HomeAssistant: "homeassistant"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c.Connected(true)
	const sw = "homeassistant/switch/test/hot/config"
	g.waitPublished(t, sw, func(string) bool { return true })
	before := g.count(sw)

	gate := make(chan struct{})
	g.mu.Lock()
	g.gate = gate
	g.mu.Unlock()
	if _, err := c.Do(Request{Rule: "hot", Action: ActionDisable, Origin: OriginHTTP}); err != nil {
		t.Fatal(err)
	}
	<-g.blocked        // Run is in the state publish
	c.Connected(false) // the connection is lost...
	c.Connected(true)  // ...and back, before Run could see it go
	g.mu.Lock()
	g.gate = nil
	g.mu.Unlock()
	close(gate)
	waitFor(t, "the discovery config published again", func() bool { return g.count(sw) > before })
}

// TestStaleTopicsApartFromCommands has the broker replay many more
// retained discovery configs and state topics than the command queue
// holds, before the first connection and again while up: none is counted
// as a control flood, those of rules not loaded are all cleared (each
// once, however often offered), and the commands still get through.
func TestStaleTopicsApartFromCommands(t *testing.T) {
	f := newFixture(t, Config{HomeAssistant: "homeassistant", Queue: 3, StateInterval: 20 * time.Millisecond})
	const n = 300
	offer := func() {
		for i := range n {
			for _, topic := range []string{
				fmt.Sprintf("homeassistant/switch/test/gone_%d/config", i),
				fmt.Sprintf("mqtt-rules/test/rule/gone-%d/state", i),
			} {
				if i%2 == 0 && strings.HasSuffix(topic, "/state") {
					continue
				}
				if taken := f.c.Offer(topic, []byte(`{"x":1}`), true); taken && strings.HasSuffix(topic, "/config") {
					t.Fatalf("Offer took %s from the rules", topic)
				}
			}
		}
		// Those of loaded rules, replayed as well, are kept.
		f.c.Offer("homeassistant/switch/test/hot/config", []byte(`{"x":1}`), true)
		f.c.Offer("mqtt-rules/test/rule/hot/state", []byte(`{"enabled":true}`), true)
	}
	offer() // before Run: the broker replays while the engine starts
	offer()
	f.run(t)
	offer() // and while up
	if !f.c.Offer("mqtt-rules/test/rule/door-open/ack", []byte(AckAll), false) {
		t.Fatal("ack not taken")
	}
	waitFor(t, "the ack", func() bool { return f.count(ActionAck, OriginMQTT) == 1 })
	for i := range n {
		f.pub.waitPublished(t, fmt.Sprintf("homeassistant/switch/test/gone_%d/config", i), func(s string) bool { return s == "" })
		if i%2 == 1 {
			f.pub.waitPublished(t, fmt.Sprintf("mqtt-rules/test/rule/gone-%d/state", i), func(s string) bool { return s == "" })
		}
	}
	if d := f.eng.Counters().Drops(); d[DropFlood] != 0 || d[DropStale] != 0 {
		t.Errorf("drops %v, want none", d)
	}
	// Offered three times each, cleared at most twice (once before the
	// third offer came, once after): the duplicates collapsed.
	for _, topic := range []string{"homeassistant/switch/test/gone_7/config", "mqtt-rules/test/rule/gone-7/state"} {
		if k := f.pub.count(topic); k < 1 || k > 2 {
			t.Errorf("%s cleared %d times", topic, k)
		}
	}
	if got, _ := f.pub.last("homeassistant/switch/test/hot/config"); got == "" {
		t.Error("hot's switch was cleared")
	}
	if got, _ := f.pub.last("mqtt-rules/test/rule/hot/state"); got == "" {
		t.Error("hot's state was cleared")
	}
}

// TestStaleTopicsBounded offers more stale topics than Config.MaxStale
// while disconnected: the excess is dropped and counted (DropStale), not
// as a flood; the others are cleared once connected.
func TestStaleTopicsBounded(t *testing.T) {
	f := newFixture(t, Config{HomeAssistant: "homeassistant", MaxStale: 10})
	for i := range 25 {
		f.c.Offer(fmt.Sprintf("homeassistant/switch/test/gone_%02d/config", i), []byte(`{}`), true)
		f.c.Offer("homeassistant/switch/test/gone_00/config", []byte(`{}`), true) // a duplicate takes no room
	}
	if d := f.eng.Counters().Drops(); d[DropStale] != 15 || d[DropFlood] != 0 {
		t.Errorf("drops %v, want 15 %s and no %s", d, DropStale, DropFlood)
	}
	f.run(t)
	for i := range 10 {
		f.pub.waitPublished(t, fmt.Sprintf("homeassistant/switch/test/gone_%02d/config", i), func(s string) bool { return s == "" })
	}
}

// TestStateTopicsReachOnlyRulesThatWantThem: the engine subscribes its
// state topics (to find stale ones), so a state message goes to the
// rules only when one of them subscribed a matching filter.
func TestStateTopicsReachOnlyRulesThatWantThem(t *testing.T) {
	f := newFixture(t, Config{Topics: true})
	const state = "mqtt-rules/test/rule/hot/state"
	if !f.c.Offer(state, []byte(`{}`), false) {
		t.Error("a state message no rule wants went to the rules")
	}
	f.eng.SetRules(loadRules(t, testRules+`
  - name: audit
    topic: "mqtt-rules/+/rule/{name}/state"
    when: 'not (topic endsWith "/audit/state")'
    actions: [{log: "{{ name }}"}]
`))
	if f.c.Offer(state, []byte(`{}`), false) {
		t.Error("a state message a rule subscribed did not go to the rules")
	}
	if !f.c.Offer("mqtt-rules/test/rule/hot/set", []byte("OFF"), false) {
		t.Error("a command went to the rules")
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWarnsOfRulesMatchingStateTopics loads rules whose filters match
// the engine's own state topics: a warning names each such rule and the
// topic, once per load or reload — not on every tick.
func TestWarnsOfRulesMatchingStateTopics(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, Config{Topics: true, StateInterval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	src := testRules + `
  - name: audit
    topic: "mqtt-rules/#"
    actions: [{log: "{{ topic }}"}]
  - name: watch-hot
    topic: mqtt-rules/test/rule/hot/state
    actions: [{log: "{{ raw }}"}]
  - name: guarded
    topic: "mqtt-rules/test/rule/+/set"
    actions: [{log: "{{ raw }}"}]
`
	f.eng.SetRules(loadRules(t, src))
	f.run(t)
	const loop = `msg="rule matches its own state topic`
	const other = `msg="rule matches the engine's state topics`
	waitFor(t, "the warnings", func() bool { return strings.Contains(logs.String(), "watch-hot") })
	f.pub.waitPublished(t, "mqtt-rules/test/rule/audit/state", func(string) bool { return true })
	f.c.Do(Request{Rule: "hot", Action: ActionDisable, Origin: OriginHTTP})
	f.pub.waitPublished(t, "mqtt-rules/test/rule/hot/state", func(s string) bool { return strings.Contains(s, `"enabled":false`) })
	out := logs.String()
	if strings.Count(out, loop) != 1 || !strings.Contains(out, loop) || !strings.Contains(out, "rule=audit topic=mqtt-rules/test/rule/audit/state") {
		t.Errorf("want one loop warning of audit and its own state topic:\n%s", out)
	}
	if strings.Count(out, other) != 1 || !strings.Contains(out, "rule=watch-hot topic=mqtt-rules/test/rule/hot/state") {
		t.Errorf("want one warning of watch-hot and hot's state topic:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") && !strings.Contains(line, "rule=audit ") && !strings.Contains(line, "rule=watch-hot ") {
			t.Errorf("unexpected warning: %s", line)
		}
	}
	// A reload warns again, once.
	f.eng.SetRules(loadRules(t, src))
	f.c.RulesChanged()
	waitFor(t, "the warning after the reload", func() bool { return strings.Count(logs.String(), loop) == 2 })
	f.c.Do(Request{Rule: "hot", Action: ActionEnable, Origin: OriginHTTP})
	f.pub.waitPublished(t, "mqtt-rules/test/rule/hot/state", func(s string) bool { return strings.Contains(s, `"enabled":true`) })
	if n := strings.Count(logs.String(), loop); n != 2 {
		t.Errorf("%d loop warnings after one load and one reload, want 2", n)
	}
}

// TestConcurrentControl runs HTTP actions, MQTT commands and stale
// configs, reloads, connection flaps and rule messages at once (for the
// race detector); afterwards, connected, the stale config is cleared and
// the state topic says what the engine does.
func TestConcurrentControl(t *testing.T) {
	f := newFixture(t, Config{HomeAssistant: "homeassistant", StateInterval: time.Millisecond})
	f.run(t)
	rs := loadRules(t, testRules)
	const rounds = 500
	var wg sync.WaitGroup
	loop := func(fn func(i int)) {
		wg.Go(func() {
			for i := range rounds {
				fn(i)
			}
		})
	}
	loop(func(i int) {
		a := []string{ActionEnable, ActionDisable, ActionRun, ActionAck}[i%4]
		f.c.Do(Request{Rule: "door-open", Action: a, Origin: OriginHTTP})
	})
	loop(func(i int) {
		f.c.Offer("mqtt-rules/test/rule/hot/set", []byte([]string{"ON", "OFF"}[i%2]), false)
		f.c.Offer("homeassistant/switch/test/gone/config", []byte("{}"), true)
		f.c.Offer("mqtt-rules/test/rule/gone/state", []byte("{}"), true)
	})
	loop(func(int) {
		f.eng.SetRules(rs)
		f.c.RulesChanged()
	})
	loop(func(i int) { f.c.Connected(i%2 == 1) }) // ends connected
	loop(func(i int) {
		f.eng.Handle(engine.Message{Topic: "home/door", Payload: []byte([]string{"open", "closed"}[i%2]), Time: time.Now()})
	})
	wg.Wait()
	if d := f.eng.Counters().Drops(); d[DropStale] != 0 {
		t.Errorf("drops %v: no stale topic should be dropped", d)
	}
	n := f.pub.count("homeassistant/switch/test/gone/config")
	f.c.Offer("homeassistant/switch/test/gone/config", []byte("{}"), true)
	f.c.Offer("mqtt-rules/test/rule/gone/state", []byte("{}"), true)
	waitFor(t, "the stale config cleared", func() bool { return f.pub.count("homeassistant/switch/test/gone/config") > n })
	f.pub.waitPublished(t, "mqtt-rules/test/rule/gone/state", func(s string) bool { return s == "" })
	on, _, _ := f.eng.Enabled("door-open")
	f.pub.waitPublished(t, "mqtt-rules/test/rule/door-open/state", func(s string) bool {
		return strings.Contains(s, fmt.Sprintf(`"enabled":%v`, on))
	})
}
