package control

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// recorder is the engine's Actions sink: it keeps what rules fired.
type recorder struct {
	mu   sync.Mutex
	reqs []actions.Request
}

func (r *recorder) Do(req actions.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// publisher records the controller's publishes; fail makes the next
// publish of a topic fail once.
type publisher struct {
	mu   sync.Mutex
	msgs []actions.Publish
	fail map[string]bool
}

func (p *publisher) Publish(m *actions.Publish, done func(error)) {
	p.mu.Lock()
	if p.fail[m.Topic] {
		delete(p.fail, m.Topic)
		p.mu.Unlock()
		done(errors.New("broker unreachable"))
		return
	}
	p.msgs = append(p.msgs, *m)
	p.mu.Unlock()
	done(nil)
}

// last returns the last payload published on topic, and whether any was.
func (p *publisher) last(topic string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.msgs) - 1; i >= 0; i-- {
		if p.msgs[i].Topic == topic {
			return string(p.msgs[i].Payload), true
		}
	}
	return "", false
}

func (p *publisher) count(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.msgs {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

// waitPublished waits until the last payload on topic satisfies ok.
func (p *publisher) waitPublished(t *testing.T, topic string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, any := p.last(topic)
		if any && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish on %s as wanted within 5s; last %q (published: %v)", topic, got, any)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const testRules = `
rules:
  - name: hot
    topic: home/+/temperature
    when: payload.value > 30
    actions: [{log: "hot {{ payload.value }}"}]
  - name: door-open
    topic: home/door
    when: payload == "open"
    clear_when: payload == "closed"
    repeat: 1h
    actions: [{log: open}]
`

func loadRules(t *testing.T, src string) *rules.RuleSet {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "home.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

type fixture struct {
	eng *engine.Engine
	rec *recorder
	pub *publisher
	c   *Controller
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{rec: &recorder{}, pub: &publisher{fail: map[string]bool{}}}
	f.eng = engine.New(engine.Config{Actions: f.rec})
	f.eng.SetRules(loadRules(t, testRules))
	cfg.Engine, cfg.Publisher = f.eng, f.pub
	if cfg.StatusTopic == "" {
		cfg.StatusTopic = "mqtt-rules/test/status"
	}
	cfg.ClientID = "test"
	var err error
	if f.c, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs the controller, connected, until the test ends.
func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	f.c.Connected(true)
}

func (f *fixture) count(action, origin string) uint64 {
	for _, c := range f.c.Counts() {
		if c.Action == action && c.Origin == origin {
			return c.N
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestOfferBadInput feeds control messages that must change nothing: each
// is taken (rules do not see it), counted as invalid, and leaves the
// rules as they were.
func TestOfferBadInput(t *testing.T) {
	const base = "mqtt-rules/test/rule/"
	big := strings.Repeat("x", MaxPayload+1)
	tests := []struct {
		name     string
		topic    string
		payload  string
		retained bool
		taken    bool // Offer returns true
		invalid  bool // counted as invalid
	}{
		{"unknown set payload", base + "hot/set", "maybe", false, true, true},
		{"empty set payload", base + "hot/set", "", false, true, true},
		{"boolean set payload", base + "hot/set", "true", false, true, true},
		{"unknown rule", base + "cold/set", "OFF", false, true, true},
		{"unknown rule ack", base + "cold/ack", AckAll, false, true, true},
		{"empty ack payload", base + "door-open/ack", "", false, true, true},
		{"empty run payload", base + "hot/run", "", false, true, true},
		{"unknown rule run", base + "cold/run", "{}", false, true, true},
		{"set larger than 1 KiB", base + "hot/set", "OFF" + big, false, true, true},
		{"ack larger than 1 KiB", base + "door-open/ack", big, false, true, true},
		{"run larger than 1 KiB", base + "hot/run", big, false, true, true},
		{"ack key not UTF-8", base + "door-open/ack", "\xff\xfe", false, true, true},
		{"retained set", base + "hot/set", "OFF", true, true, true},
		{"retained run", base + "hot/run", `{"value": 40}`, true, true, true},
		{"state topic is no command", base + "hot/state", `{"enabled":false}`, false, true, false},
		{"retained state topic is no command", base + "hot/state", `{"enabled":false}`, true, true, false},
		{"unknown verb", base + "hot/toggle", "OFF", false, false, false},
		{"deeper topic", base + "hot/set/now", "OFF", false, false, false},
		{"no verb", base + "hot", "OFF", false, false, false},
		{"another engine's base", "mqtt-rules/other/rule/hot/set", "OFF", false, false, false},
		{"a rule's topic", "home/kitchen/temperature", `{"value": 40}`, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{Topics: true})
			f.run(t)
			before := f.count(ActionInvalid, OriginMQTT)
			if got := f.c.Offer(tt.topic, []byte(tt.payload), tt.retained); got != tt.taken {
				t.Fatalf("Offer = %v, want %v", got, tt.taken)
			}
			want := before
			if tt.invalid {
				want++
			}
			if got := f.count(ActionInvalid, OriginMQTT); got != want {
				t.Errorf("invalid count %d, want %d", got, want)
			}
			// A valid command after it is carried out: the bad one was
			// not queued ahead of it, and changed nothing.
			f.c.Offer("mqtt-rules/test/rule/door-open/ack", []byte(AckAll), false)
			waitFor(t, "the ack after it", func() bool { return f.count(ActionAck, OriginMQTT) == 1 })
			for _, c := range f.c.Counts() {
				if c.N != 0 && c.Action != ActionAck && c.Action != ActionInvalid {
					t.Errorf("%s/%s counted %d", c.Action, c.Origin, c.N)
				}
			}
			for _, r := range []string{"hot", "door-open"} {
				if on, by, _ := f.eng.Enabled(r); !on || by != engine.ByFile {
					t.Errorf("%s: enabled %v by %s, want true by file", r, on, by)
				}
			}
			if n := f.rec.len(); n != 0 {
				t.Errorf("%d actions ran", n)
			}
			if n := f.eng.Counters().Drops()[DropFlood]; n != 0 {
				t.Errorf("%d dropped", n)
			}
		})
	}
}

// TestOfferCommands carries out each kind of command.
func TestOfferCommands(t *testing.T) {
	f := newFixture(t, Config{Topics: true, StateInterval: time.Hour})
	f.run(t)
	const base = "mqtt-rules/test/rule/"
	for _, p := range []string{"OFF", "on", " disable\n", "Enable", "off"} {
		if !f.c.Offer(base+"hot/set", []byte(p), false) {
			t.Fatalf("set %q not taken", p)
		}
	}
	waitFor(t, "five sets", func() bool {
		return f.count(ActionEnable, OriginMQTT)+f.count(ActionDisable, OriginMQTT) == 5
	})
	if on, by, _ := f.eng.Enabled("hot"); on || by != engine.ByControl {
		t.Errorf("hot enabled %v by %s, want false by control", on, by)
	}
	// Enabled changes are published at once, not on the hourly tick.
	f.pub.waitPublished(t, base+"hot/state", func(s string) bool { return strings.Contains(s, `"enabled":false`) })

	// A disabled rule is not run: refused and counted invalid.
	invalid := f.count(ActionInvalid, OriginMQTT)
	f.c.Offer(base+"hot/run", []byte(`{"value": 41}`), false)
	waitFor(t, "the refused run", func() bool { return f.count(ActionInvalid, OriginMQTT) == invalid+1 })
	f.c.Offer(base+"hot/set", []byte("ON"), false)
	waitFor(t, "the enable", func() bool { on, _, _ := f.eng.Enabled("hot"); return on })

	f.c.Offer(base+"hot/run", []byte(`{"value": 42}`), false)
	waitFor(t, "the run", func() bool { return f.rec.len() == 1 })
	f.rec.mu.Lock()
	req := f.rec.reqs[0]
	f.rec.mu.Unlock()
	if l, ok := req.Action.(*actions.Log); !ok || req.Rule != "hot" || l.Message != "hot 42" {
		t.Errorf("ran %+v %+v, want hot's log with the payload's value", req, req.Action)
	}

	f.eng.Handle(engine.Message{Topic: "home/door", Payload: []byte("open")})
	if n := f.eng.FiringKeys("door-open"); n != 1 {
		t.Fatalf("door-open firing keys %d, want 1", n)
	}
	f.c.Offer(base+"door-open/ack", []byte(AckAll), false)
	waitFor(t, "the ack", func() bool { return f.count(ActionAck, OriginMQTT) == 1 })
	keys, _ := f.eng.Keys("door-open", 0)
	if len(keys) != 1 || !keys[0].Acked {
		t.Errorf("keys after ack: %+v", keys)
	}
}

// TestFlood sends control messages faster than the rate limit with Run
// not taking them: Offer never blocks, and what does not fit is dropped
// and counted.
func TestFlood(t *testing.T) {
	f := newFixture(t, Config{Topics: true, Rate: 1, Burst: 5, Queue: 3})
	start := time.Now()
	for range 1000 {
		if !f.c.Offer("mqtt-rules/test/rule/door-open/ack", []byte(AckAll), false) {
			t.Fatal("not taken")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 offers took %v", d)
	}
	if got := f.eng.Counters().Drops()[DropFlood]; got != 997 {
		t.Errorf("dropped %d, want 997 (3 queued)", got)
	}
	f.run(t)
	waitFor(t, "the 3 queued acks", func() bool { return f.count(ActionAck, OriginMQTT) == 3 })
}

// TestStateTopic checks the state payload and when it is published.
func TestStateTopic(t *testing.T) {
	f := newFixture(t, Config{Topics: true, StateInterval: 20 * time.Millisecond})
	const topic = "mqtt-rules/test/rule/hot/state"
	if _, ok := f.pub.last(topic); ok {
		t.Fatal("published before running")
	}
	f.run(t)
	got := f.pub.waitPublished(t, topic, func(string) bool { return true })
	if want := `{"enabled":true,"fires":0,"last_fired":null,"firing_keys":0}`; got != want {
		t.Errorf("state %s, want %s", got, want)
	}
	f.pub.mu.Lock()
	m := f.pub.msgs[0]
	f.pub.mu.Unlock()
	if !m.Retain || m.QoS != 1 {
		t.Errorf("state published with retain %v qos %d, want retained at QoS 1", m.Retain, m.QoS)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	f.eng.Handle(engine.Message{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 31}`), Time: at})
	got = f.pub.waitPublished(t, topic, func(s string) bool { return strings.Contains(s, `"fires":1`) })
	var st struct {
		Enabled    bool    `json:"enabled"`
		Fires      int     `json:"fires"`
		LastFired  *string `json:"last_fired"`
		FiringKeys int     `json:"firing_keys"`
	}
	if err := json.Unmarshal([]byte(got), &st); err != nil || st.LastFired == nil {
		t.Fatalf("state %s: %v", got, err)
	}
	if lf, err := time.Parse(time.RFC3339, *st.LastFired); err != nil || lf.IsZero() {
		t.Errorf("last_fired %q: not RFC 3339 (%v)", *st.LastFired, err)
	}
	// Unchanged state is not published again.
	n := f.pub.count(topic)
	f.eng.Handle(engine.Message{Topic: "home/door", Payload: []byte("open")})
	f.pub.waitPublished(t, "mqtt-rules/test/rule/door-open/state", func(s string) bool { return strings.Contains(s, `"firing_keys":1`) })
	if got := f.pub.count(topic); got != n {
		t.Errorf("hot's unchanged state published %d more times", got-n)
	}
}

// TestPublishRetried makes a state publish fail: it is made again.
func TestPublishRetried(t *testing.T) {
	f := newFixture(t, Config{Topics: true, StateInterval: 10 * time.Millisecond})
	f.pub.fail["mqtt-rules/test/rule/hot/state"] = true
	f.run(t)
	f.pub.waitPublished(t, "mqtt-rules/test/rule/hot/state", func(string) bool { return true })
}

// TestDiscoveryFollowsRules publishes discovery configs, clears those of
// a removed rule (and its state topic), and clears a retained config of
// this engine that no loaded rule has.
func TestDiscoveryFollowsRules(t *testing.T) {
	f := newFixture(t, Config{HomeAssistant: "homeassistant", StateInterval: time.Hour})
	if !f.c.topics {
		t.Fatal("--homeassistant does not imply the control topics")
	}
	want := []string{
		"mqtt-rules/test/rule/+/set", "mqtt-rules/test/rule/+/ack", "mqtt-rules/test/rule/+/run",
		"mqtt-rules/test/rule/+/state", "homeassistant/+/test/+/config",
	}
	if got := f.c.Filters(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("filters %v, want %v", got, want)
	}
	f.run(t)
	const button = "homeassistant/button/test/door_open_ack/config"
	f.pub.waitPublished(t, button, func(s string) bool {
		return strings.Contains(s, `"command_topic":"mqtt-rules/test/rule/door-open/ack"`)
	})
	f.pub.waitPublished(t, "mqtt-rules/test/rule/door-open/state", func(string) bool { return true })

	f.eng.SetRules(loadRules(t, strings.Split(testRules, "  - name: door-open")[0]))
	f.c.RulesChanged()
	for _, topic := range []string{
		button,
		"homeassistant/switch/test/door_open/config",
		"homeassistant/sensor/test/door_open_fires/config",
		"homeassistant/sensor/test/door_open_last_fired/config",
		"mqtt-rules/test/rule/door-open/state",
	} {
		f.pub.waitPublished(t, topic, func(s string) bool { return s == "" })
	}
	if got, _ := f.pub.last("homeassistant/switch/test/hot/config"); got == "" {
		t.Error("hot's switch was cleared")
	}

	// A retained config of this node for no loaded rule (left by an
	// earlier run) is cleared; its echo (not retained) and another
	// node's are not touched.
	const stale = "homeassistant/switch/test/gone/config"
	if f.c.Offer(stale, []byte(`{"name":"gone"}`), true) {
		t.Error("Offer took a discovery config from the rules")
	}
	f.pub.waitPublished(t, stale, func(s string) bool { return s == "" })
	f.c.Offer("homeassistant/switch/other/gone/config", []byte(`{}`), true)
	f.c.Offer("homeassistant/switch/test/hot/config", []byte(`{}`), true)
	f.c.Offer(stale, []byte(`{}`), false)
	f.c.Do(Request{Rule: "hot", Action: ActionDisable, Origin: OriginHTTP}) // something to wait for, after those
	f.pub.waitPublished(t, "mqtt-rules/test/rule/hot/state", func(s string) bool { return strings.Contains(s, `"enabled":false`) })
	if n := f.pub.count("homeassistant/switch/other/gone/config"); n != 0 {
		t.Error("another node's config was cleared")
	}
	if got, _ := f.pub.last("homeassistant/switch/test/hot/config"); got == "" {
		t.Error("hot's switch was cleared")
	}
	if n := f.pub.count(stale); n != 1 {
		t.Errorf("the stale config was cleared %d times, want 1", n)
	}
}

// TestDo checks the results, errors and counts of Do.
func TestDo(t *testing.T) {
	f := newFixture(t, Config{})
	res, err := f.c.Do(Request{Rule: "hot", Action: ActionDisable, Origin: OriginHTTP})
	if err != nil || !res.Changed || res.Enabled || res.EnabledBy != engine.ByControl {
		t.Errorf("disable: %+v, %v", res, err)
	}
	res, err = f.c.Do(Request{Rule: "hot", Action: ActionDisable, Origin: OriginHTTP})
	if err != nil || res.Changed {
		t.Errorf("disable again: %+v, %v", res, err)
	}
	if _, err := f.c.Do(Request{Rule: "cold", Action: ActionEnable, Origin: OriginHTTP}); !errors.Is(err, engine.ErrNoRule) {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := f.c.Do(Request{Rule: "hot", Action: "toggle", Origin: OriginHTTP}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown action: %v", err)
	}
	if _, err := f.c.Do(Request{Rule: "hot", Action: ActionRun, Payload: make([]byte, MaxPayload+1), Origin: OriginHTTP}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large run: %v", err)
	}
	if got := f.count(ActionDisable, OriginHTTP); got != 2 {
		t.Errorf("disable/http %d, want 2", got)
	}
	if got := f.count(ActionInvalid, OriginHTTP); got != 3 {
		t.Errorf("invalid/http %d, want 3", got)
	}
	if len(f.c.Counts()) != 10 {
		t.Errorf("%d series, want 10 (5 actions × 2 origins)", len(f.c.Counts()))
	}
}

func TestNewErrors(t *testing.T) {
	e := engine.New(engine.Config{Actions: &recorder{}})
	for _, cfg := range []Config{
		{Engine: e, Publisher: &publisher{}, Topics: true},
		{Engine: e, Publisher: &publisher{}, Topics: true, StatusTopic: "a/+/status"},
		{Engine: e, Publisher: &publisher{}, HomeAssistant: "ha/", StatusTopic: "a/status"},
		{Engine: e, Topics: true, StatusTopic: "a/status"},
		{Publisher: &publisher{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) took it", cfg)
		}
	}
	if got := RuleTopics("status"); got != "rule/" {
		t.Errorf("RuleTopics(status) = %q", got)
	}
	if got := RuleTopics("a/b/status"); got != "a/b/rule/" {
		t.Errorf("RuleTopics(a/b/status) = %q", got)
	}
}
