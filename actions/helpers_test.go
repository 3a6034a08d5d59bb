package actions

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; reaching it fails the test.
const waitLimit = 10 * time.Second

type doneRec struct {
	rule string
	kind *Kind
	err  error
	took time.Duration
}

type dropRec struct {
	rule   string
	kind   *Kind
	reason string
}

// recorder is a Reporter that keeps everything it is told and wakes
// waiters on every change.
type recorder struct {
	mu      sync.Mutex
	done    []doneRec
	drops   []dropRec
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) ActionDone(rule string, kind *Kind, err error, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, doneRec{rule, kind, err, took})
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) Dropped(rule string, kind *Kind, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drops = append(r.drops, dropRec{rule, kind, reason})
	close(r.changed)
	r.changed = make(chan struct{})
}

// snapshot returns copies of what has been reported so far.
func (r *recorder) snapshot() ([]doneRec, []dropRec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]doneRec(nil), r.done...), append([]dropRec(nil), r.drops...)
}

// doneFor returns the outcomes reported for rule.
func (r *recorder) doneFor(rule string) []doneRec {
	done, _ := r.snapshot()
	var out []doneRec
	for _, d := range done {
		if d.rule == rule {
			out = append(out, d)
		}
	}
	return out
}

// waitFor blocks until cond holds on what has been reported, failing the
// test after waitLimit.
func (r *recorder) waitFor(t *testing.T, what string, cond func(done []doneRec, drops []dropRec) bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r.done, r.drops)
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			done, drops := r.snapshot()
			t.Fatalf("timed out waiting for %s; reported %v, dropped %v", what, done, drops)
		}
	}
}

// waitRule waits until n outcomes for rule have been reported and returns
// them.
func (r *recorder) waitRule(t *testing.T, rule string, n int) []doneRec {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d outcomes of rule %q", n, rule), func(done []doneRec, _ []dropRec) bool {
		c := 0
		for _, d := range done {
			if d.rule == rule {
				c++
			}
		}
		return c >= n
	})
	return r.doneFor(rule)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines that contain substr.
func (b *syncBuffer) lines(substr string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if l != "" && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// harness is an Executor wired to a recorder and a captured log.
type harness struct {
	x   *Executor
	rec *recorder
	log *syncBuffer
}

// newHarness returns an Executor with fast retries unless cfg says
// otherwise; it is closed when the test ends.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{rec: newRecorder(), log: &syncBuffer{}}
	cfg.Reporter = h.rec
	cfg.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 5 * time.Millisecond
	}
	h.x = NewExecutor(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := h.x.Close(ctx); err != nil {
			t.Errorf("Close at test end: got %v, want nil", err)
		}
	})
	return h
}

// webhook returns a webhook request of rule to url.
func webhook(rule, url string, retries int) Request {
	return Request{
		Kind:   KindWebhook,
		Rule:   rule,
		Topic:  "home/kitchen/temperature",
		Action: &Webhook{Method: http.MethodPost, URL: url, Body: []byte(`{"value":31}`), Retries: retries},
	}
}

// blocker is an HTTP server whose handler blocks until released (or the
// client gives up), announcing every request it gets.
type blocker struct {
	srv     *httptest.Server
	entered chan struct{}
	release func()
}

// newBlocker starts a blocker; it is released and closed when the test
// ends. Start it after newHarness so that it is released before the
// Executor is closed.
func newBlocker(t *testing.T) *blocker {
	t.Helper()
	b := &blocker{entered: make(chan struct{}, 1000)}
	gate := make(chan struct{})
	var once sync.Once
	b.release = func() { once.Do(func() { close(gate) }) }
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		b.release()
		b.srv.Close()
	})
	return b
}

// waitEntered waits until n more requests have reached the handler.
func (b *blocker) waitEntered(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for i := range n {
		select {
		case <-b.entered:
		case <-deadline.C:
			t.Fatalf("timed out waiting for request %d of %d at the blocking server", i+1, n)
		}
	}
}

// pollUntil polls cond until it holds, failing the test after waitLimit.
// It is for state that has no event to wait on.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
