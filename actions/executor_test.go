package actions

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogAction(t *testing.T) {
	h := newHarness(t, Config{})
	h.x.Do(Request{Kind: KindLog, Rule: "kitchen-too-hot", Topic: "home/kitchen/temperature",
		Action: &Log{Message: "kitchen is 31 °C", Level: slog.LevelWarn}})

	// A log action is written and reported before Do returns.
	done, _ := h.rec.snapshot()
	if len(done) != 1 || done[0].rule != "kitchen-too-hot" || done[0].kind != KindLog || done[0].err != nil {
		t.Fatalf("reported: got %+v, want one ok log outcome of kitchen-too-hot", done)
	}
	lines := h.log.lines("kitchen is 31")
	want := `level=WARN msg="kitchen is 31 °C" rule=kitchen-too-hot topic=home/kitchen/temperature action=log`
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("log lines: got %q, want one holding %q", lines, want)
	}
}

func TestMalformedRequests(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		kind *Kind
	}{
		{"no kind", Request{Rule: "r"}, nil},
		{"log without line", Request{Kind: KindLog, Rule: "r"}, KindLog},
		{"publish without message", Request{Kind: KindPublish, Rule: "r"}, KindPublish},
		{"webhook without request", Request{Kind: KindWebhook, Rule: "r"}, KindWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Publisher: &fakePublisher{}})
			h.x.Do(tt.req)
			done, _ := h.rec.snapshot()
			if len(done) != 1 || done[0].kind != tt.kind || done[0].err == nil {
				t.Errorf("reported: got %+v, want one %v error", done, tt.kind)
			}
		})
	}
}

// fakePublisher answers every publish with err, from another goroutine
// when async, else before Publish returns.
type fakePublisher struct {
	err   error
	async bool

	mu    sync.Mutex
	got   []*Publish
	wg    sync.WaitGroup
	twice bool // call done twice, breaking the contract
}

// waitFor waits until n publishes were made, failing the test after
// waitLimit.
func (f *fakePublisher) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		f.mu.Lock()
		got := len(f.got)
		f.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes after %v, want %d", got, waitLimit, n)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

func (f *fakePublisher) Publish(p *Publish, done func(error)) {
	f.mu.Lock()
	f.got = append(f.got, p)
	f.mu.Unlock()
	if !f.async {
		done(f.err)
		if f.twice {
			done(f.err)
		}
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		done(f.err)
	}()
}

func TestPublishAction(t *testing.T) {
	boom := errors.New("connection lost")
	tests := []struct {
		name      string
		pub       *fakePublisher
		wantErr   error // nil: success
		wantDrops []dropRec
	}{
		{"ok later", &fakePublisher{async: true}, nil, nil},
		{"ok at once", &fakePublisher{}, nil, nil},
		{"error later", &fakePublisher{err: boom, async: true}, boom, nil},
		{"queue full at once", &fakePublisher{err: ErrQueueFull}, ErrQueueFull,
			[]dropRec{{"r", KindPublish, "queue_full"}}},
		{"queue full later", &fakePublisher{err: ErrQueueFull, async: true}, ErrQueueFull,
			[]dropRec{{"r", KindPublish, "queue_full"}}},
		{"done called twice counts once", &fakePublisher{err: ErrQueueFull, twice: true}, ErrQueueFull,
			[]dropRec{{"r", KindPublish, "queue_full"}}},
		{"no publisher", nil, ErrNoConnection, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.pub != nil {
				cfg.Publisher = tt.pub
			}
			h := newHarness(t, cfg)
			p := &Publish{Topic: "alerts/kitchen/hot", Payload: []byte("31"), QoS: 1}
			h.x.Do(Request{Kind: KindPublish, Rule: "r", Action: p})
			h.rec.waitRule(t, "r", 1)
			if tt.pub != nil {
				tt.pub.wg.Wait()
				if len(tt.pub.got) != 1 || tt.pub.got[0] != p {
					t.Errorf("publisher got %v, want exactly the request's %p", tt.pub.got, p)
				}
			}
			done, drops := h.rec.snapshot()
			if len(done) != 1 {
				t.Fatalf("outcomes: got %+v, want 1", done)
			}
			if d := done[0]; d.kind != KindPublish || !errors.Is(d.err, tt.wantErr) || (tt.wantErr == nil) != (d.err == nil) {
				t.Errorf("outcome: got %v %v, want publish %v", d.kind, d.err, tt.wantErr)
			}
			if tt.wantErr != nil && !strings.Contains(done[0].err.Error(), "alerts/kitchen/hot") {
				t.Errorf("error %q does not name the topic", done[0].err)
			}
			if !equalDrops(drops, tt.wantDrops) {
				t.Errorf("drops: got %v, want %v", drops, tt.wantDrops)
			}
			if len(tt.wantDrops) > 0 {
				if got := h.log.lines("publish queue full"); len(got) != 1 || !strings.Contains(got[0], "dropped=1") {
					t.Errorf("drop log lines: got %q, want one with dropped=1", got)
				}
			}
		})
	}
}

func equalDrops(a, b []dropRec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDoAfterClose(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub})
	if err := h.x.Close(context.Background()); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	h.x.Do(Request{Kind: KindLog, Rule: "log", Action: &Log{Message: "written after close"}})
	h.x.Do(Request{Kind: KindPublish, Rule: "publish", Action: &Publish{Topic: "a"}})
	h.x.Do(webhook("webhook", "http://127.0.0.1:1/x", 0))

	done, _ := h.rec.snapshot()
	if len(done) != 3 {
		t.Fatalf("outcomes: got %+v, want 3", done)
	}
	for _, d := range done {
		if !errors.Is(d.err, ErrShuttingDown) || d.kind.String() != d.rule {
			t.Errorf("outcome of %s: got %v %v, want %s with ErrShuttingDown", d.rule, d.kind, d.err, d.rule)
		}
	}
	if got := h.log.lines("written after close"); len(got) != 0 {
		t.Errorf("log action after Close was written: %q", got)
	}
	if len(pub.got) != 0 {
		t.Errorf("publish after Close reached the publisher: %v", pub.got)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	h := newHarness(t, Config{WebhookConcurrency: 1})
	b := newBlocker(t)
	const n = 5
	for range n {
		h.x.Do(webhook("r", b.srv.URL, 0))
	}
	b.waitEntered(t, 1) // one in flight, four queued

	closed := make(chan error, 1)
	go func() { closed <- h.x.Close(context.Background()) }()
	pollUntil(t, "Close to stop taking requests", h.x.closing.Load)
	h.x.Do(webhook("late", b.srv.URL, 0))
	if got := h.rec.doneFor("late"); len(got) != 1 || !errors.Is(got[0].err, ErrShuttingDown) {
		t.Errorf("request after Close: got %+v, want one ErrShuttingDown", got)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a request was in flight", err)
	default:
	}

	b.release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: got %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not return after the server was released")
	}
	// Close returned, so every queued request has been run already.
	got := h.rec.doneFor("r")
	if len(got) != n {
		t.Fatalf("outcomes after Close: got %d (%+v), want %d", len(got), got, n)
	}
	for _, d := range got {
		if d.err != nil {
			t.Errorf("drained request: got %v, want success", d.err)
		}
	}
}

func TestCloseCancelsWhenContextEnds(t *testing.T) {
	for _, expired := range []bool{true, false} {
		name := "deadline during wait"
		if expired {
			name = "context already expired"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{WebhookConcurrency: 1})
			b := newBlocker(t)
			rules := []string{"r0", "r1", "r2"}
			for _, r := range rules {
				// No retries: the in-flight one must be reported as
				// cancelled, not as an ordinary failure.
				h.x.Do(webhook(r, b.srv.URL, 0))
			}
			b.waitEntered(t, 1)

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if expired {
				cancel()
			}
			start := time.Now()
			err := closeWithin(t, h.x, ctx)
			if !errors.Is(err, ctx.Err()) || err == nil {
				t.Fatalf("Close: got %v, want %v", err, ctx.Err())
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Close took %v with a blocked request, want it bounded by its context", took)
			}
			// Every goroutine has exited: the outcomes are final.
			done, drops := h.rec.snapshot()
			if len(done) != len(rules) || len(drops) != 0 {
				t.Fatalf("after Close: got outcomes %+v and drops %v, want %d outcomes, no drops", done, drops, len(rules))
			}
			seen := map[string]int{}
			for _, d := range done {
				seen[d.rule]++
				if !errors.Is(d.err, ErrShuttingDown) {
					t.Errorf("outcome of %s: got %v, want ErrShuttingDown", d.rule, d.err)
				}
			}
			for _, r := range rules {
				if seen[r] != 1 {
					t.Errorf("outcomes of %s: got %d, want 1", r, seen[r])
				}
			}
			if got := h.log.lines("cancelled at shutdown"); len(got) != 1 || !strings.Contains(got[0], "cancelled=3") {
				t.Errorf("shutdown log: got %q, want one line with cancelled=3", got)
			}
		})
	}
}

func TestCloseInterruptsBackoff(t *testing.T) {
	h := newHarness(t, Config{RetryBase: time.Hour, RetryMax: time.Hour})
	attempts := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts <- struct{}{}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)

	h.x.Do(webhook("r", srv.URL, 5))
	select {
	case <-attempts:
	case <-time.After(waitLimit):
		t.Fatal("no attempt reached the server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := closeWithin(t, h.x, ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v, want the backoff wait cut short", took)
	}
	got := h.rec.doneFor("r")
	if len(got) != 1 || !errors.Is(got[0].err, ErrShuttingDown) || !strings.Contains(got[0].err.Error(), "500 Internal Server Error") {
		t.Errorf("outcome: got %+v, want one ErrShuttingDown naming the last 500", got)
	}
}

// TestConcurrentDoAndClose runs Do from many goroutines while Close runs:
// every request must be reported exactly once (and the race detector must
// stay quiet).
func TestConcurrentDoAndClose(t *testing.T) {
	h := newHarness(t, Config{Publisher: &fakePublisher{async: true}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)

	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				switch (g + i) % 3 {
				case 0:
					h.x.Do(webhook("r", srv.URL+"/"+string(rune('a'+g)), 0))
				case 1:
					h.x.Do(Request{Kind: KindPublish, Rule: "r", Action: &Publish{Topic: "t"}})
				default:
					h.x.Do(Request{Kind: KindLog, Rule: "r", Action: &Log{Message: "m"}})
				}
			}
		}()
	}
	close(start)
	if err := h.x.Close(context.Background()); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	wg.Wait()
	// Publishes are answered by the fake's goroutines, possibly after Close.
	h.rec.waitRule(t, "r", goroutines*each)
	if got := len(h.rec.doneFor("r")); got != goroutines*each {
		t.Errorf("outcomes: got %d, want %d", got, goroutines*each)
	}
}

// closeWithin runs x.Close(ctx), failing the test if it has not returned
// after waitLimit (a Close that ignores its context would hang the test).
func closeWithin(t *testing.T, x *Executor, ctx context.Context) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- x.Close(ctx) }()
	select {
	case err := <-res:
		return err
	case <-time.After(waitLimit):
		t.Fatal("Close did not return although its context ended")
		return nil
	}
}

func BenchmarkDoLog(b *testing.B) {
	x := NewExecutor(Config{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { _ = x.Close(context.Background()) })
	req := Request{Kind: KindLog, Rule: "r", Topic: "home/kitchen/temperature", Action: &Log{Message: "kitchen is 31 °C"}}
	b.ReportAllocs()
	for b.Loop() {
		x.Do(req)
	}
}

func BenchmarkDoPublish(b *testing.B) {
	x := NewExecutor(Config{Publisher: &nopPublisher{}})
	b.Cleanup(func() { _ = x.Close(context.Background()) })
	req := Request{Kind: KindPublish, Rule: "r", Action: &Publish{Topic: "alerts/kitchen/hot", Payload: []byte("31")}}
	b.ReportAllocs()
	for b.Loop() {
		x.Do(req)
	}
}

// nopPublisher accepts every publish at once.
type nopPublisher struct{}

func (nopPublisher) Publish(_ *Publish, done func(error)) { done(nil) }
