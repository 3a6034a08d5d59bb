package mqttc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// wait is the deadline for anything that should happen "soon" on a local
// broker; reconnects get reconnectWait.
const (
	wait          = 10 * time.Second
	reconnectWait = 20 * time.Second
)

// brokers runs fn against mosquitto (configured with mosquittoOpts) and
// the embedded broker, a fresh one for each protocol (see byProtocol). The
// broker's log is shown when the test fails.
func brokers(t *testing.T, fn func(t *testing.T, b *testbroker.Broker), mosquittoOpts ...testbroker.Option) {
	run := func(t *testing.T, b *testbroker.Broker) {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("broker log:\n%s", b.Log())
			}
		})
		fn(t, b)
	}
	t.Run("mosquitto", func(t *testing.T) {
		byProtocol(t, func(t *testing.T) { run(t, testbroker.Mosquitto(t, mosquittoOpts...)) })
	})
	t.Run("embedded", func(t *testing.T) {
		byProtocol(t, func(t *testing.T) { run(t, testbroker.Embedded(t)) })
	})
}

// byProtocol runs fn in the subtests "v3.1.1" and "v5", in which options
// sets Options.Protocol to that version.
func byProtocol(t *testing.T, fn func(t *testing.T)) {
	t.Run("v3.1.1", fn)
	t.Run("v5", fn)
}

// protocolFor returns the Protocol of t: "5" within a subtest named
// "v5", else "3.1.1" (tests of auto set it themselves).
func protocolFor(t *testing.T) string {
	for _, part := range strings.Split(t.Name(), "/") {
		if part == "v5" {
			return "5"
		}
	}
	return "3.1.1"
}

// recorder collects what a Client reports: messages and connection changes.
type recorder struct {
	mu     sync.Mutex
	msgs   []Message
	conns  []bool
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) onMessage(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) onConnectionChange(up bool) {
	r.mu.Lock()
	r.conns = append(r.conns, up)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// next returns the next message not yet taken, waiting up to timeout.
func (r *recorder) next(t *testing.T, timeout time.Duration) Message {
	t.Helper()
	m, ok := r.tryNext(timeout)
	if !ok {
		t.Fatalf("got no message within %v", timeout)
	}
	return m
}

func (r *recorder) tryNext(timeout time.Duration) (Message, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if len(r.msgs) > 0 {
			m := r.msgs[0]
			r.msgs = r.msgs[1:]
			r.mu.Unlock()
			return m, true
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-timer.C:
			return Message{}, false
		}
	}
}

func (r *recorder) expect(t *testing.T, topic, payload string) Message {
	t.Helper()
	m, ok := r.tryNext(wait)
	if !ok {
		t.Fatalf("got no message within %v, want %s=%s", wait, topic, payload)
	}
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("got message %s=%s, want %s=%s", m.Topic, m.Payload, topic, payload)
	}
	return m
}

func (r *recorder) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	if m, ok := r.tryNext(d); ok {
		t.Fatalf("got message %s=%s, want none", m.Topic, m.Payload)
	}
}

func (r *recorder) connChanges() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.conns...)
}

// logBuffer is a concurrency-safe log sink shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) count(substr string) int {
	return strings.Count(l.String(), substr)
}

var idSeq atomic.Int64

// clientID is unique per test and call, readable in broker logs.
func clientID(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("mqttc-%s-%d", name, idSeq.Add(1))
}

// options returns Options for url that report to rec and log to a buffer
// printed when the test fails.
func options(t *testing.T, url string, rec *recorder) (Options, *logBuffer) {
	t.Helper()
	logs := new(logBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	return Options{
		Broker:               url,
		Protocol:             protocolFor(t),
		ClientID:             clientID(t),
		ConnectTimeout:       5 * time.Second,
		MaxReconnectInterval: time.Second,
		Logger:               slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnMessage:            rec.onMessage,
		OnConnectionChange:   rec.onConnectionChange,
	}, logs
}

// start creates and starts a Client, closed at the end of the test.
func start(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribe subscribes and waits until the client is Ready.
func subscribe(t *testing.T, c *Client, filters ...string) {
	t.Helper()
	eventually(t, wait, "subscriber connected", func() bool { return c.sub.isUp() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Subscribe(ctx, filters...); err != nil {
		t.Fatalf("Subscribe(%q): %v", filters, err)
	}
	eventually(t, wait, "Ready()", c.Ready)
}

// outcome collects done callbacks of publishes.
type outcome struct {
	ch chan error
}

func newOutcome(n int) *outcome { return &outcome{ch: make(chan error, n)} }

func (o *outcome) done(err error) { o.ch <- err }

// all waits for n outcomes and returns them.
func (o *outcome) all(t *testing.T, n int, timeout time.Duration) []error {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	errs := make([]error, 0, n)
	for len(errs) < n {
		select {
		case err := <-o.ch:
			errs = append(errs, err)
		case <-deadline.C:
			t.Fatalf("got %d of %d publish outcomes within %v", len(errs), n, timeout)
		}
	}
	return errs
}

func pub(topic, payload string, qos byte, retain bool) *actions.Publish {
	return &actions.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
}
