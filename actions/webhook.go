package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxResponseBody is how much of a webhook response is read before it is
// closed.
const maxResponseBody = 64 << 10

// StatusError is a webhook attempt answered with an HTTP status of 400 or
// more.
type StatusError struct {
	Code   int    // e.g. 503
	Status string // e.g. "503 Service Unavailable"
}

// Error returns the status line, e.g. "503 Service Unavailable".
func (e *StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	return strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
}

// destinationKey returns the scheme://host[:port] a webhook URL goes to, or
// an error that names the URL redacted.
func destinationKey(raw string, secrets []string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid webhook URL %s", unparsableURL)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("webhook URL %s: scheme must be http or https", RedactURL(raw, secrets...))
	}
	if u.Host == "" {
		return "", fmt.Errorf("webhook URL %s: no host", RedactURL(raw, secrets...))
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

func method(w *Webhook) string {
	if w.Method == "" {
		return http.MethodPost
	}
	return w.Method
}

// runWebhook runs one queued webhook to its final outcome and reports it.
func (x *Executor) runWebhook(r *Request) {
	start := time.Now()
	w := r.Webhook
	m, redacted := method(w), RedactURL(w.URL, r.Secrets...)
	var once reportOnce
	defer func() {
		if p := recover(); p != nil {
			x.log.Error("action panicked", "rule", r.Rule, "topic", r.Topic, "action", "webhook", "url", redacted, "panic", p)
			if once.claim() {
				x.rep.ActionDone(r.Rule, KindWebhook, fmt.Errorf("webhook action panicked: %v", p), time.Since(start))
			}
		}
	}()

	if x.base.Err() != nil {
		x.cancelled.Add(1)
		once.claim()
		x.rep.ActionDone(r.Rule, KindWebhook, fmt.Errorf("%s %s: not sent: %w", m, redacted, ErrShuttingDown), time.Since(start))
		return
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	retries := max(w.Retries, 0)

	var (
		res       attemptResult
		attempts  int
		cancelled bool
	)
	for {
		attempts++
		res = x.attempt(w, m, timeout)
		if res.err == nil {
			once.claim()
			x.rep.ActionDone(r.Rule, KindWebhook, nil, time.Since(start))
			return
		}
		if x.base.Err() != nil {
			cancelled = true
			break
		}
		if !res.retry || attempts > retries {
			break
		}
		wait := x.backoff(attempts)
		if res.retryAfter >= 0 {
			wait = min(res.retryAfter, x.retryMax)
		}
		if !x.sleep(wait) {
			cancelled = true
			break
		}
	}

	took := time.Since(start)
	if cancelled {
		x.cancelled.Add(1)
		once.claim()
		x.rep.ActionDone(r.Rule, KindWebhook, fmt.Errorf("%s %s: cancelled after %s: %w: %w", m, redacted, plural(attempts, "attempt"), ErrShuttingDown, res.err), took)
		return
	}
	err := fmt.Errorf("%s %s: %w after %s", m, redacted, res.err, plural(attempts, "attempt"))
	args := []any{"rule", r.Rule, "topic", r.Topic, "action", "webhook", "url", redacted}
	if res.status > 0 {
		args = append(args, "status", res.status)
	}
	args = append(args, "attempts", attempts, "err", err)
	x.log.Warn("webhook failed", args...)
	once.claim()
	x.rep.ActionDone(r.Rule, KindWebhook, err, took)
	x.deadLetter(r, m, redacted, res.status, attempts, err)
}

// deadLetter publishes a webhook that finally failed to the dead-letter
// topic, when one is set (SPEC §9): the rule, the error and the rendered
// request, with its secrets redacted as in logs.
func (x *Executor) deadLetter(r *Request, method, redactedURL string, status, attempts int, failure error) {
	if x.deadLetterTopic == "" || x.pub == nil {
		return
	}
	w := r.Webhook
	type request struct {
		Method     string      `json:"method"`
		URL        string      `json:"url"`
		Headers    http.Header `json:"headers,omitempty"`
		Body       string      `json:"body,omitempty"`
		BodyBase64 []byte      `json:"body_base64,omitempty"`
	}
	rec := struct {
		Rule     string    `json:"rule"`
		Topic    string    `json:"topic,omitempty"`
		Key      string    `json:"key,omitempty"`
		Error    string    `json:"error"`
		Status   int       `json:"status,omitempty"`
		Attempts int       `json:"attempts"`
		Time     time.Time `json:"time"`
		Request  request   `json:"request"`
	}{
		Rule: r.Rule, Topic: r.Topic, Key: r.Key, Error: Mask(failure.Error(), r.Secrets), Status: status, Attempts: attempts, Time: time.Now(),
		Request: request{Method: method, URL: redactedURL, Headers: RedactHeader(w.Header)},
	}
	for _, vs := range rec.Request.Headers {
		for i := range vs {
			vs[i] = Mask(vs[i], r.Secrets)
		}
	}
	if utf8.Valid(w.Body) {
		rec.Request.Body = Mask(string(w.Body), r.Secrets)
	} else {
		rec.Request.BodyBase64 = w.Body
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		x.log.Error("dead letter not published", "rule", r.Rule, "action", "webhook", "err", err)
		return
	}
	x.pub.Publish(&Publish{Topic: x.deadLetterTopic, Payload: payload, QoS: 1}, func(err error) {
		if err != nil {
			x.log.Error("dead letter not published", "rule", r.Rule, "action", "webhook", "topic", x.deadLetterTopic, "err", err)
		}
	})
}

// attemptResult is the outcome of one HTTP exchange.
type attemptResult struct {
	err        error
	status     int           // 0 when no response
	retry      bool          // worth another attempt
	retryAfter time.Duration // the server's Retry-After, or -1
}

// attempt makes one HTTP exchange bounded by timeout.
func (x *Executor) attempt(w *Webhook, m string, timeout time.Duration) attemptResult {
	ctx, cancel := context.WithTimeout(x.base, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, m, w.URL, bytes.NewReader(w.Body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL, which may hold a secret
			err = errors.New("invalid URL")
		}
		return attemptResult{err: fmt.Errorf("building request: %w", err), retryAfter: -1}
	}
	req.Header = x.header(w)

	resp, err := x.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // drop the URL from the text: it is logged redacted
			err = ue.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && x.base.Err() == nil {
			err = fmt.Errorf("no response within %s: %w", timeout, context.DeadlineExceeded)
		}
		return attemptResult{err: err, retry: true, retryAfter: -1}
	}
	drain(resp.Body)
	if resp.StatusCode < 400 { // 2xx, or a 3xx the client did not follow
		return attemptResult{status: resp.StatusCode, retryAfter: -1}
	}
	res := attemptResult{
		err:        &StatusError{Code: resp.StatusCode, Status: resp.Status},
		status:     resp.StatusCode,
		retry:      resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		retryAfter: -1,
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			res.retryAfter = d
		}
	}
	return res
}

// header returns the request headers: w's, canonicalised, plus User-Agent
// and Content-Type when w does not set them.
func (x *Executor) header(w *Webhook) http.Header {
	h := make(http.Header, len(w.Header)+2)
	for k, vs := range w.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", x.ua)
	}
	if _, ok := h["Content-Type"]; !ok && len(w.Body) > 0 {
		if json.Valid(w.Body) {
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	return h
}

// backoff returns the wait after the given number of failed attempts: full
// jitter, uniform in [0, min(RetryMax, RetryBase·2^(attempts-1))].
func (x *Executor) backoff(attempts int) time.Duration {
	ceiling := x.retryBase
	for i := 1; i < attempts && ceiling < x.retryMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, x.retryMax)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// sleep waits d, or less when Close gives up waiting; it returns false then.
func (x *Executor) sleep(d time.Duration) bool {
	if d <= 0 {
		return x.base.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.base.Done():
		return false
	}
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP-date
// (RFC 9110 §10.2.3), as a wait from now. A date in the past is no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
