package actions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen is one request as a test server received it.
type seen struct {
	method string
	path   string
	header http.Header
	body   string
}

func TestWebhookSendsRequest(t *testing.T) {
	tests := []struct {
		name       string
		hook       Webhook
		wantMethod string
		wantHeader http.Header // checked key by key; nil values mean absent
	}{
		{
			name:       "json body, default method",
			hook:       Webhook{Body: []byte(`{"room":"kitchen","value":31}`), Header: http.Header{"Authorization": {"Bearer s3cret"}, "x-room": {"kitchen", "hall"}}},
			wantMethod: http.MethodPost,
			wantHeader: http.Header{
				"Authorization": {"Bearer s3cret"},
				"X-Room":        {"kitchen", "hall"},
				"Content-Type":  {"application/json"},
				"User-Agent":    {"mqtt-rules"},
			},
		},
		{
			name:       "text body",
			hook:       Webhook{Method: http.MethodPut, Body: []byte("kitchen is hot")},
			wantMethod: http.MethodPut,
			wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "User-Agent": {"mqtt-rules"}},
		},
		{
			name: "own content type and user agent kept",
			hook: Webhook{Method: http.MethodPost, Body: []byte("a=1"),
				Header: http.Header{"content-type": {"application/x-www-form-urlencoded"}, "User-Agent": {"home/1.0"}}},
			wantMethod: http.MethodPost,
			wantHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"home/1.0"}},
		},
		{
			name:       "no body, no content type",
			hook:       Webhook{Method: http.MethodGet},
			wantMethod: http.MethodGet,
			wantHeader: http.Header{"Content-Type": nil, "User-Agent": {"mqtt-rules"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			got := make(chan seen, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- seen{r.Method, r.URL.RequestURI(), r.Header.Clone(), string(body)}
			}))
			t.Cleanup(srv.Close)

			hook := tt.hook
			hook.URL = srv.URL + "/notify?room=kitchen"
			h.x.Do(Request{Kind: KindWebhook, Rule: "r", Action: &hook})
			done := h.rec.waitRule(t, "r", 1)
			if done[0].err != nil || done[0].kind != KindWebhook {
				t.Fatalf("outcome: got %v %v, want webhook success", done[0].kind, done[0].err)
			}
			s := <-got
			if s.method != tt.wantMethod || s.path != "/notify?room=kitchen" || s.body != string(hook.Body) {
				t.Errorf("request: got %s %s %q, want %s /notify?room=kitchen %q", s.method, s.path, s.body, tt.wantMethod, hook.Body)
			}
			for k, want := range tt.wantHeader {
				if got := s.header.Values(k); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
					t.Errorf("header %s: got %q, want %q", k, got, want)
				}
			}
		})
	}
}

// statusServer answers its nth request with statuses[n] (the last one
// from then on) and counts requests.
func statusServer(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int
		retries      int
		wantAttempts int
		wantErr      string // after "POST <url>: "; "" for success
	}{
		{"success", []int{http.StatusOK}, 3, 1, ""},
		{"204 is success", []int{http.StatusNoContent}, 3, 1, ""},
		{"500 twice then success", []int{500, 500, 200}, 3, 3, ""},
		{"502 then success", []int{502, 200}, 1, 2, ""},
		{"429 then success", []int{429, 200}, 1, 2, ""},
		{"500 until retries run out", []int{500}, 2, 3, "500 Internal Server Error after 3 attempts"},
		{"no retries", []int{503}, 0, 1, "503 Service Unavailable after 1 attempt"},
		{"400 not retried", []int{400, 200}, 3, 1, "400 Bad Request after 1 attempt"},
		{"404 not retried", []int{404, 200}, 3, 1, "404 Not Found after 1 attempt"},
		{"401 not retried", []int{401, 200}, 3, 1, "401 Unauthorized after 1 attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			srv, n := statusServer(t, tt.statuses...)
			h.x.Do(webhook("r", srv.URL+"/hook", tt.retries))
			done := h.rec.waitRule(t, "r", 1)[0]
			if got := int(n.Load()); got != tt.wantAttempts {
				t.Errorf("attempts: got %d, want %d", got, tt.wantAttempts)
			}
			if tt.wantErr == "" {
				if done.err != nil {
					t.Errorf("outcome: got %v, want success", done.err)
				}
				return
			}
			want := "POST " + srv.URL + "/hook: " + tt.wantErr
			if done.err == nil || done.err.Error() != want {
				t.Errorf("outcome:\n got %v\nwant %s", done.err, want)
			}
			var se *StatusError
			if !errors.As(done.err, &se) || se.Code != tt.statuses[min(tt.wantAttempts, len(tt.statuses))-1] {
				t.Errorf("errors.As StatusError: got %v, want code %d", se, tt.statuses[min(tt.wantAttempts, len(tt.statuses))-1])
			}
		})
	}
}

func TestWebhookFailureIsLoggedRedacted(t *testing.T) {
	h := newHarness(t, Config{})
	srv, _ := statusServer(t, http.StatusInternalServerError)
	req := webhook("kitchen-too-hot", srv.URL+"/hook?token=s3cret&room=kitchen", 1)
	req.Action.(*Webhook).Header = http.Header{"Authorization": {"Bearer s3cret"}}
	h.x.Do(req)
	done := h.rec.waitRule(t, "kitchen-too-hot", 1)[0]

	redacted := srv.URL + "/hook?token=" + Redacted + "&room=kitchen"
	wantErr := "POST " + redacted + ": 500 Internal Server Error after 2 attempts"
	if done.err == nil || done.err.Error() != wantErr {
		t.Errorf("outcome:\n got %v\nwant %s", done.err, wantErr)
	}
	lines := h.log.lines("webhook failed")
	if len(lines) != 1 {
		t.Fatalf("failure log lines: got %q, want 1", lines)
	}
	for _, want := range []string{
		"level=WARN", "rule=kitchen-too-hot", "topic=home/kitchen/temperature", "action=webhook",
		`url="` + redacted + `"`, "status=500", "attempts=2", `err="` + wantErr + `"`,
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("failure log line %q lacks %q", lines[0], want)
		}
	}
	if strings.Contains(h.log.String(), "s3cret") {
		t.Errorf("log holds the secret:\n%s", h.log.String())
	}
}

func TestWebhookHonoursRetryAfterUpToRetryMax(t *testing.T) {
	const retryMax = 150 * time.Millisecond
	tests := []struct {
		name       string
		status     int
		retryAfter func() string
	}{
		{"429 delta-seconds", http.StatusTooManyRequests, func() string { return "1" }},
		{"503 HTTP-date", http.StatusServiceUnavailable, func() string { return time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{RetryBase: time.Millisecond, RetryMax: retryMax})
			var (
				mu    sync.Mutex
				times []time.Time
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				times = append(times, time.Now())
				first := len(times) == 1
				mu.Unlock()
				if first {
					w.Header().Set("Retry-After", tt.retryAfter())
					w.WriteHeader(tt.status)
				}
			}))
			t.Cleanup(srv.Close)

			h.x.Do(webhook("r", srv.URL, 1))
			if done := h.rec.waitRule(t, "r", 1)[0]; done.err != nil {
				t.Fatalf("outcome: got %v, want success on the second attempt", done.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 2 {
				t.Fatalf("attempts: got %d, want 2", len(times))
			}
			// Without Retry-After the wait would be at most RetryBase (1ms);
			// honoured uncapped it would be ≥ 1s.
			if gap := times[1].Sub(times[0]); gap < retryMax || gap >= 900*time.Millisecond {
				t.Errorf("wait between attempts: got %v, want within [%v, 900ms)", gap, retryMax)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second, true},
		{"99999999999999999999", 0, false},
		{"9999999999999", time.Duration(1<<63 - 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q): got %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	x := NewExecutor(Config{RetryBase: 10 * time.Millisecond, RetryMax: 80 * time.Millisecond})
	t.Cleanup(func() { _ = x.Close(context.Background()) })
	ceilings := []time.Duration{10, 20, 40, 80, 80, 80, 80}
	for i, c := range ceilings {
		ceiling := c * time.Millisecond
		attempts := i + 1
		var biggest time.Duration
		for range 500 {
			d := x.backoff(attempts)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempts, d, ceiling)
			}
			biggest = max(biggest, d)
		}
		// Full jitter spreads over the whole range: 500 draws all in the
		// lower half have probability 2^-500.
		if biggest <= ceiling/2 {
			t.Errorf("backoff(%d): largest of 500 draws %v, want some above %v", attempts, biggest, ceiling/2)
		}
	}
	if d := x.backoff(1000); d > 80*time.Millisecond {
		t.Errorf("backoff(1000) = %v, want at most RetryMax", d)
	}
}

func TestWebhookAttemptTimeout(t *testing.T) {
	h := newHarness(t, Config{})
	b := newBlocker(t)
	req := webhook("r", b.srv.URL, 1)
	req.Action.(*Webhook).Timeout = 50 * time.Millisecond
	h.x.Do(req)
	done := h.rec.waitRule(t, "r", 1)[0]

	b.waitEntered(t, 2)
	if !errors.Is(done.err, context.DeadlineExceeded) {
		t.Errorf("outcome: got %v, want context.DeadlineExceeded", done.err)
	}
	want := "POST " + b.srv.URL + ": no response within 50ms: context deadline exceeded after 2 attempts"
	if done.err == nil || done.err.Error() != want {
		t.Errorf("outcome:\n got %v\nwant %s", done.err, want)
	}
	if done.took < 100*time.Millisecond {
		t.Errorf("took: got %v, want ≥ 100ms for two timed-out attempts", done.took)
	}
}

func TestWebhookNetworkErrorRetried(t *testing.T) {
	h := newHarness(t, Config{})
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	h.x.Do(webhook("r", url+"/x?key=s3cret", 2))
	done := h.rec.waitRule(t, "r", 1)[0]
	if done.err == nil || !strings.HasSuffix(done.err.Error(), "after 3 attempts") || strings.Contains(done.err.Error(), "s3cret") {
		t.Errorf("outcome: got %v, want a redacted network error after 3 attempts", done.err)
	}
}

func TestSlowDestinationDoesNotDelayOthers(t *testing.T) {
	h := newHarness(t, Config{WebhookConcurrency: 1, WebhookQueue: 10})
	slow := newBlocker(t)
	fast, _ := statusServer(t, http.StatusOK)

	for range 5 {
		h.x.Do(webhook("slow", slow.srv.URL, 0))
	}
	slow.waitEntered(t, 1) // the slow destination's only worker is stuck

	h.x.Do(webhook("fast", fast.URL, 0))
	h.x.Do(Request{Kind: KindLog, Rule: "log", Action: &Log{Message: "still logging"}})
	if got := h.rec.waitRule(t, "fast", 1); got[0].err != nil {
		t.Errorf("fast webhook: got %v, want success", got[0].err)
	}
	if got := h.rec.doneFor("log"); len(got) != 1 || got[0].err != nil {
		t.Errorf("log action: got %+v, want one success", got)
	}
	if got := h.rec.doneFor("slow"); len(got) != 0 {
		t.Fatalf("slow webhooks finished before release: %+v", got)
	}

	slow.release()
	for _, d := range h.rec.waitRule(t, "slow", 5) {
		if d.err != nil {
			t.Errorf("slow webhook after release: got %v, want success", d.err)
		}
	}
}

func TestWebhookConcurrencyPerDestination(t *testing.T) {
	const workers = 3
	h := newHarness(t, Config{WebhookConcurrency: workers})
	b := newBlocker(t)
	for range workers + 1 {
		h.x.Do(webhook("r", b.srv.URL, 0))
	}
	// All workers are in the handler at once; the extra request waits.
	b.waitEntered(t, workers)
	if got := h.rec.doneFor("r"); len(got) != 0 {
		t.Fatalf("outcomes before release: got %+v, want none", got)
	}
	b.release()
	for _, d := range h.rec.waitRule(t, "r", workers+1) {
		if d.err != nil {
			t.Errorf("outcome: got %v, want success", d.err)
		}
	}
}

func TestWebhookQueueFull(t *testing.T) {
	h := newHarness(t, Config{WebhookConcurrency: 1, WebhookQueue: 1})
	b := newBlocker(t)
	h.x.Do(webhook("r", b.srv.URL, 0))
	b.waitEntered(t, 1)                   // in flight
	h.x.Do(webhook("r", b.srv.URL, 0))    // queued
	h.x.Do(webhook("full", b.srv.URL, 0)) // dropped
	h.x.Do(webhook("full", b.srv.URL, 0)) // dropped, not logged yet

	// Drops are reported before Do returns.
	_, drops := h.rec.snapshot()
	want := []dropRec{{"full", KindWebhook, "queue_full"}, {"full", KindWebhook, "queue_full"}}
	if !equalDrops(drops, want) {
		t.Errorf("drops: got %v, want %v", drops, want)
	}
	full := h.rec.doneFor("full")
	if len(full) != 2 || !errors.Is(full[0].err, ErrQueueFull) || !errors.Is(full[1].err, ErrQueueFull) {
		t.Errorf("outcomes of dropped requests: got %+v, want two ErrQueueFull", full)
	}
	if got := h.log.lines("webhook queue full"); len(got) != 1 || !strings.Contains(got[0], "dropped=1") {
		t.Errorf("drop log lines: got %q, want one with dropped=1 (bounded rate)", got)
	}

	b.release()
	for _, d := range h.rec.waitRule(t, "r", 2) {
		if d.err != nil {
			t.Errorf("accepted request: got %v, want success", d.err)
		}
	}
	if err := h.x.Close(context.Background()); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	// The drop not logged yet is logged at Close.
	got := h.log.lines("webhook queue full")
	if len(got) != 2 || !strings.Contains(got[1], "dropped=1") {
		t.Errorf("drop log lines after Close: got %q, want a second with dropped=1", got)
	}
}

func TestTooManyDestinations(t *testing.T) {
	h := newHarness(t, Config{MaxDestinations: 1})
	a := newBlocker(t)
	other, _ := statusServer(t, http.StatusOK)
	h.x.Do(webhook("a", a.srv.URL, 0))
	h.x.Do(webhook("b", other.URL, 0))

	_, drops := h.rec.snapshot()
	if want := []dropRec{{"b", KindWebhook, "too_many_destinations"}}; !equalDrops(drops, want) {
		t.Errorf("drops: got %v, want %v", drops, want)
	}
	if got := h.rec.doneFor("b"); len(got) != 1 || !errors.Is(got[0].err, ErrTooManyDestinations) {
		t.Errorf("outcome: got %+v, want one ErrTooManyDestinations", got)
	}
	if got := h.log.lines("too many destinations"); len(got) != 1 {
		t.Errorf("drop log lines: got %q, want 1", got)
	}
}

func TestIdleDestinationReleasesWorkers(t *testing.T) {
	h := newHarness(t, Config{WebhookIdle: 100 * time.Millisecond})
	srv, n := statusServer(t, http.StatusOK)

	h.x.Do(webhook("r", srv.URL, 0))
	if got := h.x.destinations(); got != 1 {
		t.Errorf("destinations after a request: got %d, want 1", got)
	}
	h.rec.waitRule(t, "r", 1)
	pollUntil(t, "the idle destination to be retired", func() bool { return h.x.destinations() == 0 })

	h.x.Do(webhook("r", srv.URL, 0))
	if got := h.rec.waitRule(t, "r", 2); got[1].err != nil {
		t.Errorf("request after retirement: got %v, want success", got[1].err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("requests at the server: got %d, want 2", got)
	}
}

func TestInvalidWebhookURL(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://h:port/?token=s3cret", "invalid webhook URL [unparsable URL]"},
		{"ftp://h/x?token=s3cret", "webhook URL ftp://h/x?token=" + Redacted + ": scheme must be http or https"},
		{"/relative", "webhook URL /relative: scheme must be http or https"},
		{"http:///path", "webhook URL http:///path: no host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.x.Do(webhook("r", tt.url, 3))
			// Reported before Do returns.
			got := h.rec.doneFor("r")
			if len(got) != 1 || got[0].err == nil || got[0].err.Error() != tt.want {
				t.Errorf("outcome: got %+v, want error %q", got, tt.want)
			}
		})
	}
}

func TestWebhookPanicInRequestIsRecovered(t *testing.T) {
	// A Reporter that panics on success must not kill the worker, and the
	// request must still be reported exactly once.
	rec := newRecorder()
	var panicked atomic.Bool
	rep := &panicOnceReporter{recorder: rec, panicked: &panicked}
	log := &syncBuffer{}
	x := NewExecutor(Config{Reporter: rep, Logger: slog.New(slog.NewTextHandler(log, nil)), WebhookConcurrency: 1})
	t.Cleanup(func() { _ = x.Close(context.Background()) })
	srv, _ := statusServer(t, http.StatusOK)

	x.Do(webhook("r", srv.URL, 0))
	x.Do(webhook("r2", srv.URL, 0))
	rec.waitRule(t, "r2", 1)
	if got := len(rec.doneFor("r")); got != 0 {
		t.Errorf("outcomes of the panicking report: got %d, want 0 (the reporter itself panicked)", got)
	}
	if got := log.lines("action panicked"); len(got) != 1 {
		t.Errorf("panic log lines: got %q, want 1", got)
	}
}

// panicOnceReporter panics on its first ActionDone.
type panicOnceReporter struct {
	*recorder
	panicked *atomic.Bool
}

func (p *panicOnceReporter) ActionDone(rule string, kind *Kind, err error, took time.Duration) {
	if p.panicked.CompareAndSwap(false, true) {
		panic("reporter broke")
	}
	p.recorder.ActionDone(rule, kind, err, took)
}

func TestDeadLetter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub, DeadLetterTopic: "mqtt-rules/dead-letter"})
	req := webhook("notify", srv.URL+"/hook?token=abc", 1)
	req.Key = "k1"
	req.Action.(*Webhook).Header = http.Header{"Authorization": {"Bearer s3cret"}, "X-Room": {"kitchen"}}
	h.x.Do(req)
	pub.waitFor(t, 1)
	p := pub.got[0]
	if p.Topic != "mqtt-rules/dead-letter" || p.QoS != 1 {
		t.Errorf("dead letter on %s qos %d", p.Topic, p.QoS)
	}
	var got struct {
		Rule, Topic, Key, Error string
		Status, Attempts        int
		Request                 struct {
			Method, URL, Body string
			Headers           http.Header
		}
	}
	if err := json.Unmarshal(p.Payload, &got); err != nil {
		t.Fatalf("dead letter is not JSON: %v: %s", err, p.Payload)
	}
	if got.Rule != "notify" || got.Key != "k1" || got.Status != 503 || got.Attempts != 2 || got.Request.Body != `{"value":31}` {
		t.Errorf("dead letter = %+v", got)
	}
	if strings.Contains(string(p.Payload), "s3cret") || strings.Contains(string(p.Payload), "token=abc") {
		t.Errorf("dead letter leaks a secret: %s", p.Payload)
	}
	if got.Request.Headers.Get("X-Room") != "kitchen" || !strings.Contains(got.Error, "503") {
		t.Errorf("dead letter = %s", p.Payload)
	}
}

// TestWebhookConnectionResetRetried: a server that accepts the request and
// then resets the connection (RST, not a clean close) on the first two
// attempts; the third is answered.
func TestWebhookConnectionResetRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := newHarness(t, Config{})
	h.x.Do(webhook("reset", srv.URL, 3))
	done := h.rec.waitRule(t, "reset", 1)[0]
	if done.err != nil || n.Load() != 3 {
		t.Errorf("outcome %v after %d attempts, want success on the 3rd", done.err, n.Load())
	}
}

// TestSecretsInURLPathAreMasked: a Slack-style URL whose secret is in the
// path, where no parameter name marks it, is masked with the request's
// Secrets (what the rule's file took from the environment) in the failure
// log, the outcome and the dead letter.
func TestSecretsInURLPathAreMasked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	const secret = "T000/B000/XXXXsecretXXXX"
	pub := &fakePublisher{}
	h := newHarness(t, Config{Publisher: pub, DeadLetterTopic: "dead"})
	req := webhook("slack", srv.URL+"/services/"+secret, 0)
	req.Secrets = []string{srv.URL + "/services/" + secret, secret} // as the loader records ${SLACK_URL}, longest first
	req.Action.(*Webhook).Body = []byte(`{"text":"hot","url":"` + secret + `"}`)
	h.x.Do(req)
	done := h.rec.waitRule(t, "slack", 1)[0]
	pub.waitFor(t, 1)
	for what, s := range map[string]string{
		"log":         h.log.String(),
		"outcome":     done.err.Error(),
		"dead letter": string(pub.got[0].Payload),
	} {
		if strings.Contains(s, "secret") {
			t.Errorf("%s holds the secret: %s", what, s)
		}
		if !strings.Contains(s, Redacted) {
			t.Errorf("%s does not show where the secret was: %s", what, s)
		}
	}
}

func TestMask(t *testing.T) {
	got := Mask("path x%20y%2Fz, query x+y%2Fz, raw x y/z, other x y", []string{"x y/z"})
	if want := "path " + Redacted + ", query " + Redacted + ", raw " + Redacted + ", other x y"; got != want {
		t.Errorf("Mask = %q, want %q", got, want)
	}
}

// TestMaskJSONEscaped: a secret with characters JSON escapes is masked in
// a JSON body too.
func TestMaskJSONEscaped(t *testing.T) {
	sec := `pa"ss\word<&>`
	body, _ := json.Marshal(map[string]string{"password": sec})
	got := Mask(string(body), []string{sec})
	if want := `{"password":"` + Redacted + `"}`; got != want {
		t.Errorf("Mask = %s, want %s", got, want)
	}
}
