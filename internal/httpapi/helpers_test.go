package httpapi

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// fakeStatus is a Status whose connection state tests set; its rules and
// counters come from a real engine.
type fakeStatus struct {
	mu        sync.Mutex
	rs        *rules.RuleSet
	counters  *engine.Counters
	connected bool
	ready     bool
	broker    string
	reload    Reload
	engine    *engine.Engine // traces; nil: none
}

func (f *fakeStatus) Trace(rule string) []engine.Evaluation {
	if f.engine == nil {
		return nil
	}
	return f.engine.Trace(rule)
}

func (f *fakeStatus) Keys(rule string, limit int) ([]engine.KeyState, int) {
	if f.engine == nil {
		return nil, 0
	}
	return f.engine.Keys(rule, limit)
}

func (f *fakeStatus) Rules() *rules.RuleSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rs
}

func (f *fakeStatus) Counters() *engine.Counters { return f.counters }

func (f *fakeStatus) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

func (f *fakeStatus) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeStatus) Broker() string { return f.broker }

func (f *fakeStatus) Brokers() []BrokerState {
	return []BrokerState{{Name: "default", URL: f.Broker(), Connected: f.Connected(), Ready: f.Ready()}}
}

func (f *fakeStatus) LastReload() Reload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload
}

func (f *fakeStatus) set(fn func(f *fakeStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

var _ Status = (*fakeStatus)(nil)

// recorder is the engine's Actions sink: it keeps what the engine fired.
type recorder struct {
	mu   sync.Mutex
	reqs []actions.Request
}

func (r *recorder) Do(req actions.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		out = append(out, q.Rule+" "+q.Kind.String())
	}
	return out
}

// testRules is the rule set of the fixture: a stateless rule with two
// actions, a stateful one with two filters, and a disabled one.
const testRules = `
rules:
  - name: hot
    description: Kitchen above 30 °C
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ room }}/hot"}
      - log: "{{ topic }} is hot"
  - name: door
    topic: [home/door, "home/{room}/door"]
    when: payload == "open"
    for: 2m
    cooldown: 10m
    actions:
      - webhook: {url: "https://hooks.example.com/door"}
    on_clear:
      - log: door closed
  - name: off
    topic: x/#
    enabled: false
    actions: [{log: x}]
`

// firedAt is when the fixture's hot rule fired.
var firedAt = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)

// fixture is a fake Status fed by a real engine that has handled some
// traffic, with action outcomes reported as the executor would.
type fixture struct {
	status *fakeStatus
	engine *engine.Engine
	rec    *recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "rules/home.yaml", Data: []byte(testRules)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	c := engine.NewCounters()
	rec := &recorder{}
	e := engine.New(engine.Config{Actions: rec, Counters: c, MaxPayload: 64})
	e.SetRules(rs)
	// A rule that is no longer loaded keeps its counters, but must not
	// show in /metrics or /api/rules.
	c.Rule("gone").Fires.Add(7)

	for _, m := range []engine.Message{
		{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 31}`), Time: firedAt}, // fires hot
		{Topic: "home/kitchen/temperature", Payload: []byte(`{"value": 20}`)},                // false
		{Topic: "home/kitchen/temperature", Payload: []byte(`not json`)},                     // condition error
		{Topic: "home/kitchen/temperature", Payload: []byte(strings.Repeat("x", 65))},        // too_large
		{Topic: "home/door", Payload: []byte(`open`)},                                        // pending for 2m: no firing
		{Topic: "elsewhere", Payload: []byte(`1`)},                                           // no rule
	} {
		e.Handle(m)
	}
	if got, want := strings.Join(rec.kinds(), ","), "hot publish,hot log"; got != want {
		t.Fatalf("the engine fired %q, want %q", got, want)
	}
	// What the executor would report for those two actions, and others.
	c.ActionDone("hot", actions.KindPublish, nil, 30*time.Millisecond)
	c.ActionDone("hot", actions.KindLog, errors.New("broken pipe"), 2*time.Millisecond)
	c.ActionDone("door", actions.KindWebhook, nil, 3*time.Second)
	c.ActionDone("door", actions.KindWebhook, errors.New("503"), 20*time.Second)
	c.Dropped("hot", actions.KindPublish, engine.DropQueueFull)
	c.Drop("dead_letter_full")
	c.Rule("hot").LoopCutoffs.Add(2)
	c.Rule("door").KeysEvicted.Add(3)
	c.Reloaded(true)
	c.Reloaded(true)
	c.Reloaded(false)

	return &fixture{
		engine: e,
		rec:    rec,
		status: &fakeStatus{
			rs:        e.Rules(),
			counters:  c,
			connected: true,
			ready:     true,
			broker:    "tcp://broker.example.com:1883",
			reload:    Reload{At: firedAt.Add(-time.Hour), Took: 1234567 * time.Nanosecond, Rules: 3},
			engine:    e,
		},
	}
}

// server serves a handler for st on a real HTTP server.
func server(t *testing.T, st Status, opts Options) (*httptest.Server, *Server) {
	t.Helper()
	h := NewHandler(st, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// get fetches url with the headers given as name, value pairs, returning
// the response and its body.
func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, string(body)
}

// loadRules compiles a rule file or fails the test.
func loadRules(t *testing.T, src string) *rules.RuleSet {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "rules/other.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return rs
}

// badRules has two errors.
const badRules = `
rules:
  - name: broken
    topic: a/b+
    actions: [{log: x}]
  - name: typo
    topic: a/b
    when: paylod.value > 1
    actions: [{log: x}]
`

// loadErrors returns the real error of loading badRules.
func loadErrors(t *testing.T) error {
	t.Helper()
	_, err := rules.NewLoader().LoadSources(rules.Source{Name: "rules/bad.yaml", Data: []byte(badRules)})
	var es rules.Errors
	if !errors.As(err, &es) || len(es) < 2 {
		t.Fatalf("loading badRules: %v, want at least 2 rules.Errors", err)
	}
	return err
}

// syncBuffer is a bytes.Buffer safe for a logger writing from server
// goroutines while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// newTestLogger logs everything, debug included, as text into buf; read
// buf only once the requests are done.
func newTestLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncBuffer{buf: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
