package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// fakeStatus is a Status fed by a real engine; tests set the rest.
type fakeStatus struct {
	mu        sync.Mutex
	engine    *engine.Engine
	counters  *engine.Counters
	connected bool
	reload    httpapi.Reload
}

func (f *fakeStatus) Rules() *rules.RuleSet      { return f.engine.Rules() }
func (f *fakeStatus) Counters() *engine.Counters { return f.counters }
func (f *fakeStatus) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}
func (f *fakeStatus) Ready() bool    { return f.Connected() }
func (f *fakeStatus) Broker() string { return "tcp://user:hunter2@broker.example.com:1883" }
func (f *fakeStatus) Brokers() []httpapi.BrokerState {
	return []httpapi.BrokerState{{Name: "default", URL: f.Broker(), Connected: f.Connected(), Ready: f.Ready()}}
}
func (f *fakeStatus) LastReload() httpapi.Reload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload
}
func (f *fakeStatus) Trace(rule string) []engine.Evaluation { return f.engine.Trace(rule) }
func (f *fakeStatus) Keys(rule string, limit int) ([]engine.KeyState, int) {
	return f.engine.Keys(rule, limit)
}

var _ httpapi.Status = (*fakeStatus)(nil)

// nopActions drops what the engine fires.
type nopActions struct{}

func (nopActions) Do(actions.Request) {}

// secretValue is the value of the environment variable the fixture's
// webhook header reads: it must never reach the page.
const secretValue = "s3cr3t-notify-value"

const fixtureRules = `
rules:
  - name: hot
    description: Kitchen above 30 °C
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ room }}/hot", qos: 1}
  - name: door
    description: "Door open too long (key ${NOTIFY_TOKEN})"
    topic: "home/{room}/door"
    when: payload == "open"
    for: 1h
    cooldown: 10m
    actions:
      - webhook:
          url: "https://hooks.example.com/door?api_key=${NOTIFY_TOKEN}&room={{ room }}"
          headers: {Authorization: "Bearer ${NOTIFY_TOKEN}", X-Room: "{{ room }}"}
          body: '{"t":"${NOTIFY_TOKEN}"}'
    on_clear:
      - log: "{{ room }} door closed"
  - name: off
    topic: x/#
    enabled: false
    actions: [{log: x}]
`

// newFixture loads fixtureRules into a real engine.
func newFixture(t testing.TB, src string) *fakeStatus {
	t.Helper()
	if src == "" {
		src = fixtureRules
	}
	t.Setenv("NOTIFY_TOKEN", secretValue)
	l := rules.NewLoader()
	rs, err := l.LoadSources(rules.Source{Name: "rules/home.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	c := engine.NewCounters()
	e := engine.New(engine.Config{Actions: nopActions{}, Counters: c})
	e.SetRules(rs)
	return &fakeStatus{engine: e, counters: c, connected: true, reload: httpapi.Reload{At: time.Now(), Rules: len(rs.Rules)}}
}

// serve serves the API and the page for st; token may be "".
func serve(t testing.TB, st httpapi.Status, opts Options, token string) (*httptest.Server, *Page) {
	t.Helper()
	h := httpapi.NewHandler(st, httpapi.Options{Token: token})
	p := New(st, opts)
	ctx, cancel := context.WithCancel(context.Background())
	p.Register(ctx, h)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
	})
	return srv, p
}

// event is one server-sent event.
type event struct {
	name string
	data string
}

// eventStream reads server-sent events from a response, in a goroutine,
// so tests can wait for them with a deadline.
type eventStream struct {
	resp   *http.Response
	events chan event
	errc   chan error
	bytes  chan int
}

// openStream opens GET url (a /api/live URL) and checks it is an event
// stream.
func openStream(t testing.TB, url string, header ...string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s = %d %s, want 200", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	s := &eventStream{resp: resp, events: make(chan event, 1024), errc: make(chan error, 1)}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	go s.read()
	return s
}

// read parses the stream (the SSE format: "event:" and "data:" lines, a
// blank line ends an event; "retry:" lines and comments are skipped).
func (s *eventStream) read() {
	r := bufio.NewReaderSize(s.resp.Body, 1<<20)
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.errc <- err
			close(s.events)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				s.events <- ev
			}
			ev = event{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// next returns the next event, failing the test after timeout.
func (s *eventStream) next(t testing.TB, timeout time.Duration) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("the stream ended: %v", <-s.errc)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
		return event{}
	}
}

// until returns the first event named name for which ok holds (nil: any),
// skipping others, failing the test after timeout.
func (s *eventStream) until(t testing.TB, timeout time.Duration, name string, ok func(data string) bool) event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no %q event as wanted within %v", name, timeout)
		}
		ev := s.next(t, left)
		if ev.name == name && (ok == nil || ok(ev.data)) {
			return ev
		}
	}
}

func decode[T any](t testing.TB, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// tickData is the JSON of a full or tick event.
type tickData struct {
	Seq     uint64     `json:"seq"`
	Gen     string     `json:"gen"`
	Now     int64      `json:"now"`
	Status  status     `json:"status"`
	Rows    [][]int64  `json:"rows"`
	Changed [][]int64  `json:"changed"`
	Extra   []struct{} `json:"-"`
}

type rulesData struct {
	Gen          string     `json:"gen"`
	Columns      []string   `json:"columns"`
	OverviewKeys int        `json:"overview_keys"`
	Rules        []ruleMeta `json:"rules"`
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func col(name string) int {
	for i, c := range Columns {
		if c == name {
			return i
		}
	}
	panic(fmt.Sprintf("no column %q", name))
}

// ruleJSON is a rule event as a page reads it.
type ruleJSON struct {
	Name          string                     `json:"name"`
	Found         bool                       `json:"found"`
	Gen           string                     `json:"gen"`
	Definition    *httpapi.RuleDefinition    `json:"definition"`
	ActionResults map[string]httpapi.Results `json:"action_results"`
	Tracked       int                        `json:"tracked"`
	Keys          []engine.KeyState          `json:"keys"`
	Trace         []struct {
		Topic       string `json:"topic"`
		Outcome     string `json:"outcome"`
		Explanation string `json:"explanation"`
	} `json:"trace"`
}
