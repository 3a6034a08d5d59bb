package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// writeRules writes a rule file into a new temp dir and returns the dir.
func writeRules(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testLogger logs through t, so a failing test shows what the app said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// start starts the app and waits until it is subscribed.
func start(t *testing.T, cfg Config) *App {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "app-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	a, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	waitFor(t, 10*time.Second, "the app to be ready", func() bool { return a.Brokers()[0].Ready })
	return a
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// webhookSink is an httptest server that records requests.
type webhookSink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
	got  chan recorded
}

type recorded struct {
	method, path, body string
	header             http.Header
}

func newSink(t *testing.T, status func(n int) int) *webhookSink {
	s := &webhookSink{got: make(chan recorded, 100)}
	var n atomic.Int32
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, path: r.URL.Path, body: string(body), header: r.Header.Clone()}
		s.mu.Lock()
		s.reqs = append(s.reqs, rec)
		s.mu.Unlock()
		s.got <- rec
		w.WriteHeader(status(int(n.Add(1))))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *webhookSink) next(t *testing.T, timeout time.Duration) recorded {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(timeout):
		t.Fatalf("no webhook request within %v", timeout)
		return recorded{}
	}
}

func ok(int) int { return http.StatusOK }

// brokers runs a test against mosquitto and against the embedded broker.
func brokers(t *testing.T, run func(t *testing.T, url string)) {
	t.Run("mosquitto", func(t *testing.T) { run(t, testbroker.Mosquitto(t).URL()) })
	t.Run("embedded", func(t *testing.T) { run(t, testbroker.Embedded(t).URL()) })
}

func TestRepublish(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		dir := writeRules(t, `
rules:
  - name: kitchen-too-hot
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish:
          topic: "alerts/{{ room }}/hot"
          payload: '{"room":"{{ room }}","value":{{ payload.value }}}'
          qos: 1
`)
		start(t, Config{Rules: []string{dir}, Broker: url})
		sub := testbroker.Subscribe(t, url, "alerts/#")
		pub := testbroker.NewPublisher(t, url)
		pub.Publish("home/kitchen/temperature", []byte(`{"value": 29}`), 1, false)
		pub.Publish("home/kitchen/temperature", []byte(`{"value": 31.5}`), 1, false)
		sub.Expect(t, 5*time.Second, "alerts/kitchen/hot", `{"room":"kitchen","value":31.5}`)
		sub.ExpectNone(t, 100*time.Millisecond)
	})
}

func TestWebhookRenderedAndRetried(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		// The first two attempts fail with 500, the third succeeds.
		sink := newSink(t, func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		t.Setenv("TEST_NOTIFY_TOKEN", "s3cret-token")
		dir := writeRules(t, fmt.Sprintf(`
rules:
  - name: notify
    topic: sensors/{sensor}/temperature
    when: payload.value > 35
    actions:
      - webhook:
          url: "%s/notify/{{ sensor }}"
          headers:
            Authorization: "Bearer ${TEST_NOTIFY_TOKEN}"
            X-Sensor: "{{ sensor }}"
          body: '{{ {"sensor": sensor, "value": payload.value} }}'
          timeout: 2s
          retries: 3
`, sink.URL))
		a := start(t, Config{Rules: []string{dir}, Broker: url})
		testbroker.Publish(t, url, "sensors/greenhouse/temperature", []byte(`{"value": 38.5}`), 1, false)
		for i := 1; i <= 3; i++ {
			r := sink.next(t, 10*time.Second)
			if r.method != "POST" || r.path != "/notify/greenhouse" {
				t.Errorf("attempt %d: %s %s, want POST /notify/greenhouse", i, r.method, r.path)
			}
			if got := r.header.Get("Authorization"); got != "Bearer s3cret-token" {
				t.Errorf("attempt %d: Authorization = %q", i, got)
			}
			if got := r.header.Get("X-Sensor"); got != "greenhouse" {
				t.Errorf("attempt %d: X-Sensor = %q", i, got)
			}
			if r.body != `{"sensor":"greenhouse","value":38.5}` {
				t.Errorf("attempt %d: body = %s", i, r.body)
			}
		}
		stats := a.Engine().Counters().Rule("notify")
		waitFor(t, 5*time.Second, "the webhook outcome to be counted", func() bool {
			okN, _ := stats.Actions(actions.KindWebhook)
			return okN == 1
		})
		if stats.Errors() != 0 {
			t.Errorf("errors = %d after a webhook that succeeded on its third attempt", stats.Errors())
		}
	})
}

func TestDeadWebhookDoesNotDelayPublish(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	release := make(chan struct{})
	var calls atomic.Int32
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(dead.Close)
	dir := writeRules(t, fmt.Sprintf(`
rules:
  - name: slow-hook
    topic: in/#
    actions:
      - webhook: {url: "%s/hang", timeout: 30s, retries: 0}
  - name: relay
    topic: in/#
    actions:
      - publish: {topic: "out/{{ wildcards[0] }}", qos: 1}
`, dead.URL))
	start(t, Config{Rules: []string{dir}, Broker: url})
	t.Cleanup(func() { close(release) }) // before the app closes: its shutdown waits for webhooks
	sub := testbroker.Subscribe(t, url, "out/#")
	pub := testbroker.NewPublisher(t, url)
	// More messages than the webhook destination runs at once: its workers
	// all hang, its queue fills; the publishes of the other rule go on.
	for i := range 20 {
		pub.Publish(fmt.Sprintf("in/%d", i), []byte("x"), 1, false)
	}
	for i := range 20 {
		sub.Expect(t, 5*time.Second, fmt.Sprintf("out/%d", i), "x")
	}
	if calls.Load() == 0 {
		t.Fatal("the webhook was never called; the test proves nothing")
	}
}

func TestEmbeddedBrokerStartsWithoutBrokerURL(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testbroker.FreePort(t))
	dir := writeRules(t, `
rules:
  - name: echo
    topic: ping
    actions: [{publish: {topic: pong}}]
`)
	a := start(t, Config{Rules: []string{dir}, EmbeddedBroker: addr})
	if a.BrokerAddr() != addr {
		t.Errorf("BrokerAddr = %q, want %q", a.BrokerAddr(), addr)
	}
	url := "tcp://" + addr
	sub := testbroker.Subscribe(t, url, "pong")
	testbroker.Publish(t, url, "ping", []byte("hi"), 0, false)
	sub.Expect(t, 5*time.Second, "pong", "hi")
}

func TestStartFailsOnInvalidRules(t *testing.T) {
	dir := writeRules(t, "rules:\n  - name: r\n    topic: a/#/b\n    actions: [{log: x}]\n")
	_, err := Start(Config{Rules: []string{dir}, Broker: "tcp://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:3:12: rule \"r\": topic:") {
		t.Fatalf("Start = %v, want the rule error with its location", err)
	}
}

// TestStatefulKeywordsOnBroker runs each stateful keyword end to end on a
// real broker, with short durations, on the real clock.
func TestStatefulKeywordsOnBroker(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, `
rules:
  - name: door-open
    topic: door/for
    when: payload == "open"
    for: 300ms
    actions: [{publish: {topic: out/for, payload: "open for 300ms"}}]
  - name: hot
    topic: temp/cooldown
    when: payload > 30
    cooldown: 1h
    actions: [{publish: {topic: out/cooldown, payload: "{{ payload }}"}}]
  - name: alarm
    topic: temp/clear
    when: payload > 30
    on_clear: [{publish: {topic: out/clear, payload: "cleared at {{ payload }}"}}]
    actions: [{publish: {topic: out/clear, payload: "fired at {{ payload }}"}}]
  - name: silent
    topic: beat/+
    absent: 300ms
    on_clear: [{publish: {topic: out/absent, payload: "{{ topic }} back"}}]
    actions: [{publish: {topic: out/absent, payload: "{{ topic }} silent"}}]
  - name: changed
    topic: state/+
    when: prev != nil && prev.payload != payload
    actions: [{publish: {topic: out/prev, payload: "{{ prev.payload }} -> {{ payload }}"}}]
`)
	start(t, Config{Rules: []string{dir}, Broker: url})
	sub := testbroker.Subscribe(t, url, "out/#")
	pub := testbroker.NewPublisher(t, url)

	sent := time.Now()
	pub.Publish("door/for", []byte("open"), 1, false)
	sub.Expect(t, 5*time.Second, "out/for", "open for 300ms")
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Errorf("for: 300ms fired after %v", d)
	}

	pub.Publish("temp/cooldown", []byte("31"), 1, false)
	pub.Publish("temp/cooldown", []byte("32"), 1, false)
	sub.Expect(t, 5*time.Second, "out/cooldown", "31")

	pub.Publish("temp/clear", []byte("31"), 1, false)
	pub.Publish("temp/clear", []byte("35"), 1, false)
	pub.Publish("temp/clear", []byte("20"), 1, false)
	sub.Expect(t, 5*time.Second, "out/clear", "fired at 31")
	sub.Expect(t, 5*time.Second, "out/clear", "cleared at 20")

	sent = time.Now()
	pub.Publish("beat/a", []byte("x"), 1, false)
	sub.Expect(t, 5*time.Second, "out/absent", "beat/a silent")
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Errorf("absent: 300ms fired after %v", d)
	}
	pub.Publish("beat/a", []byte("x"), 1, false)
	sub.Expect(t, 5*time.Second, "out/absent", "beat/a back")

	pub.Publish("state/x", []byte("on"), 1, false)
	pub.Publish("state/x", []byte("on"), 1, false)
	pub.Publish("state/x", []byte("off"), 1, false)
	sub.Expect(t, 5*time.Second, "out/prev", "on -> off")
}

// TestLoopCutOnBroker feeds a rule that republishes into its own filter:
// the chain stops at --max-hops and the other rules keep working.
func TestLoopCutOnBroker(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, `
rules:
  - name: echo
    topic: loop/#
    actions: [{publish: {topic: loop/again, qos: 1}}]
  - name: relay
    topic: in
    actions: [{publish: {topic: out, qos: 1}}]
`)
	a := start(t, Config{Rules: []string{dir}, Broker: url, MaxHops: 5})
	sub := testbroker.Subscribe(t, url, "loop/again", "out")
	pub := testbroker.NewPublisher(t, url)
	pub.Publish("loop/start", []byte("x"), 1, false)
	for range 5 {
		sub.Expect(t, 5*time.Second, "loop/again", "x")
	}
	waitFor(t, 5*time.Second, "the loop cutoff to be counted", func() bool {
		return a.Engine().Counters().Rule("echo").LoopCutoffs.Load() == 1
	})
	pub.Publish("in", []byte("still here"), 1, false)
	sub.Expect(t, 5*time.Second, "out", "still here")
	sub.ExpectNone(t, 200*time.Millisecond)
}
