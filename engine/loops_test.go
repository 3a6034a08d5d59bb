package engine

import (
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// echoBroker plays the broker for loop tests: every publish comes back to
// the engine as a new message, after the current one is handled.
type echoBroker struct {
	queue     []Message
	published []string
}

func (b *echoBroker) Do(q actions.Request) {
	if p, ok := q.Action.(*actions.Publish); ok {
		b.published = append(b.published, p.Topic)
		b.queue = append(b.queue, Message{Topic: p.Topic, Payload: p.Payload})
	}
}

func (b *echoBroker) run(e *Engine, first Message) {
	b.queue = append(b.queue, first)
	for len(b.queue) > 0 {
		m := b.queue[0]
		b.queue = b.queue[1:]
		e.Handle(m)
	}
}

func loopEngine(t *testing.T, src string, maxHops int) (*Engine, *echoBroker) {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "loop.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	b := &echoBroker{}
	e := New(Config{Actions: b, MaxHops: maxHops})
	e.SetRules(rs)
	return e, b
}

func TestSelfLoopIsCutAtMaxHops(t *testing.T) {
	e, b := loopEngine(t, `
rules:
  - name: echo
    topic: a/#
    actions: [{publish: {topic: a/again}}]
`, 8)
	if !e.Rules().MayLoop() {
		t.Fatal("MayLoop = false for a rule publishing into its own filter")
	}
	b.run(e, Message{Topic: "a/start", Payload: []byte("x")})
	if len(b.published) != 8 {
		t.Errorf("published %d times, want 8 (hops 1..8)", len(b.published))
	}
	if n := e.Counters().Rule("echo").LoopCutoffs.Load(); n != 1 {
		t.Errorf("loop cutoffs = %d, want 1", n)
	}
	if n := e.Counters().Drops()[DropLoop]; n != 1 {
		t.Errorf("loop drops = %d, want 1", n)
	}
	// A new outside message starts a new chain.
	b.published = nil
	b.run(e, Message{Topic: "a/start", Payload: []byte("y")})
	if len(b.published) != 8 {
		t.Errorf("second chain published %d times, want 8", len(b.published))
	}
}

func TestLoopThroughTwoRules(t *testing.T) {
	e, b := loopEngine(t, `
rules:
  - name: ping
    topic: ping
    actions: [{publish: {topic: pong, payload: "{{ raw }}"}}]
  - name: pong
    topic: pong
    actions: [{publish: {topic: ping}}]
`, 3)
	b.run(e, Message{Topic: "ping", Payload: []byte("1")})
	if len(b.published) != 3 {
		t.Errorf("published %v, want 3 hops", b.published)
	}
	c := e.Counters()
	if c.Rule("ping").LoopCutoffs.Load()+c.Rule("pong").LoopCutoffs.Load() != 1 {
		t.Error("want exactly one cutoff")
	}
}

func TestSameMessageFromOutsideIsHopZero(t *testing.T) {
	// A rule that publishes the same topic and payload an outside client
	// also publishes: once the echo is consumed, the outside copy is hop 0.
	e, b := loopEngine(t, `
rules:
  - name: fwd
    topic: in/+
    actions: [{publish: {topic: in/b, payload: "same"}}]
`, 1)
	b.run(e, Message{Topic: "in/a", Payload: []byte("same")}) // -> in/b hop 1 -> in/b would be hop 2: cut
	if len(b.published) != 1 {
		t.Fatalf("published %v", b.published)
	}
	b.published = nil
	e.Handle(Message{Topic: "in/b", Payload: []byte("same")}) // from outside: hop 0, publish hop 1 allowed
	if len(b.published) != 1 {
		t.Errorf("an outside message was treated as an echo: published %v", b.published)
	}
}

func TestNoLoopNoBookkeeping(t *testing.T) {
	e, b := loopEngine(t, `
rules:
  - name: alert
    topic: sensors/+/temperature
    actions: [{publish: {topic: "alerts/{{ wildcards[0] }}"}}]
`, 8)
	if e.Rules().MayLoop() {
		t.Fatal("MayLoop = true for sensors/+ -> alerts/...")
	}
	b.run(e, Message{Topic: "sensors/1/temperature", Payload: []byte("1")})
	if len(e.loops.byKey) != 0 || len(e.loops.order) != 0 {
		t.Error("publishes were remembered though the set cannot loop")
	}
}

func TestEchoesExpire(t *testing.T) {
	g := newLoopGuard()
	now := time.Now()
	g.record("", "t", []byte("p"), 3, now)
	if h := g.hop("", "t", []byte("p"), now.Add(echoWindow+time.Second)); h != 0 {
		t.Errorf("hop after the window = %d, want 0", h)
	}
	if len(g.byKey) != 0 || len(g.order) != 0 {
		t.Error("expired echo kept")
	}
	g.record("", "t", []byte("p"), 1, now)
	g.record("", "t", []byte("p"), 2, now)
	if h := g.hop("", "t", []byte("p"), now); h != 1 {
		t.Errorf("hop = %d, want the oldest (1)", h)
	}
	if h := g.hop("", "t", []byte("p"), now); h != 2 {
		t.Errorf("hop = %d, want 2", h)
	}
}

// TestExecOutputLoopIsCut: an exec whose published output comes back to
// its own rule is cut at --max-hops like a publish: the executor asks
// AllowPublish with the request's hop plus one.
func TestExecOutputLoopIsCut(t *testing.T) {
	l := rules.NewLoader()
	l.Allow = []string{actions.KindExec.Gate}
	rs, err := l.LoadSources(rules.Source{Name: "loop.yaml", Data: []byte(`
rules:
  - name: run
    topic: out/#
    actions: [{exec: {command: [/bin/echo, x], publish_output: out/again}}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	var queue []Message
	published := 0
	var e *Engine
	acts := actionFunc(func(q actions.Request) {
		x, ok := q.Action.(*actions.Exec)
		if !ok {
			return
		}
		p := &actions.Publish{Topic: x.PublishOutput, Payload: []byte("x\n")}
		if e.AllowPublish(q.Rule, p, q.Hop+1) {
			published++
			queue = append(queue, Message{Topic: p.Topic, Payload: p.Payload})
		}
	})
	e = New(Config{Actions: acts, MaxHops: 4})
	e.SetRules(rs)
	queue = append(queue, Message{Topic: "out/start", Payload: []byte("go")})
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		e.Handle(m)
	}
	if published != 4 {
		t.Errorf("published the output %d times, want 4 (hops 1..4)", published)
	}
	if n := e.Counters().Rule("run").LoopCutoffs.Load(); n != 1 {
		t.Errorf("loop cutoffs = %d, want 1", n)
	}
}

// actionFunc is an Actions sink made of a function.
type actionFunc func(actions.Request)

func (f actionFunc) Do(q actions.Request) { f(q) }
