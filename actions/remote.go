package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// remote is an action delivered to a service over the network (webhook,
// notify): queued per destination, each attempt bounded by a timeout,
// retried with backoff on failures worth retrying, and dead-lettered when
// it finally fails (docs/reliability.md).
type remote interface {
	Action
	// destination returns the queue the action waits in: its
	// scheme://host[:port]; an error (secrets masked) when it has none.
	destination(secrets []string) (string, error)
	// target returns what the action calls, for errors ("POST
	// https://host/x") and for logs (the URL), secrets redacted.
	target(secrets []string) (label, url string)
	// policy returns the timeout of one attempt and the retries after the
	// first.
	policy() (timeout time.Duration, retries int)
	// attempt makes one attempt within ctx. Its error must hold no
	// secret (no URL with credentials, no token).
	attempt(ctx context.Context, x *Executor) attemptResult
	// letter returns the request as a dead letter shows it, secrets
	// redacted and masked.
	letter(secrets []string) any
}

// attemptResult is the outcome of one attempt.
type attemptResult struct {
	err        error
	status     int           // the HTTP status, 0 when none
	retry      bool          // worth another attempt
	retryAfter time.Duration // the server's Retry-After, or -1
}

// StatusError is an attempt answered with an HTTP status of 400 or more.
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

// statusResult classifies an HTTP response: below 400 a success; 429 and
// 5xx worth retrying (honouring Retry-After on 429 and 503); other 4xx
// final, as the request itself is wrong.
func statusResult(resp *http.Response) attemptResult {
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

// runRemote runs one queued remote action to its final outcome and
// reports it.
func (x *Executor) runRemote(r *Request) {
	start := time.Now()
	a := r.Action.(remote)
	label, redacted := a.target(r.Secrets)
	kind := r.Kind
	var once reportOnce
	defer func() {
		if p := recover(); p != nil {
			x.log.Error("action panicked", "rule", r.Rule, "topic", r.Topic, "action", kind.String(), "url", redacted, "panic", p)
			if once.claim() {
				x.rep.ActionDone(r.Rule, kind, fmt.Errorf("%s action panicked: %v", kind, p), time.Since(start))
			}
		}
	}()

	if x.base.Err() != nil {
		x.cancelled.Add(1)
		once.claim()
		x.rep.ActionDone(r.Rule, kind, fmt.Errorf("%s: not sent: %w", label, ErrShuttingDown), time.Since(start))
		return
	}
	timeout, retries := a.policy()
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	retries = max(retries, 0)

	var (
		res       attemptResult
		attempts  int
		cancelled bool
	)
	for {
		attempts++
		res = x.attemptWithin(a, timeout)
		if res.err == nil {
			once.claim()
			x.rep.ActionDone(r.Rule, kind, nil, time.Since(start))
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

	// attempt's errors hold no secrets: each kind strips or masks them.
	took := time.Since(start)
	if cancelled {
		x.cancelled.Add(1)
		once.claim()
		x.rep.ActionDone(r.Rule, kind, fmt.Errorf("%s: cancelled after %s: %w: %w", label, plural(attempts, "attempt"), ErrShuttingDown, res.err), took)
		return
	}
	err := fmt.Errorf("%s: %w after %s", label, res.err, plural(attempts, "attempt"))
	args := []any{"rule", r.Rule, "topic", r.Topic, "action", kind.String(), "url", redacted}
	if res.status > 0 {
		args = append(args, "status", res.status)
	}
	args = append(args, "attempts", attempts, "err", err)
	x.log.Warn(kind.String()+" failed", args...)
	once.claim()
	x.rep.ActionDone(r.Rule, kind, err, took)
	x.deadLetter(r, a, res.status, attempts, err)
}

// attemptWithin makes one attempt bounded by timeout.
func (x *Executor) attemptWithin(a remote, timeout time.Duration) attemptResult {
	ctx, cancel := context.WithTimeout(x.base, timeout)
	defer cancel()
	res := a.attempt(ctx, x)
	if errors.Is(res.err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) && x.base.Err() == nil {
		res.err = fmt.Errorf("no response within %s: %w", timeout, context.DeadlineExceeded)
		res.retry = true
	}
	return res
}

// deadLetter publishes a remote action that finally failed to the
// dead-letter topic, when one is set (docs/reliability.md): the rule, the
// error and the rendered request, with its secrets redacted as in logs.
func (x *Executor) deadLetter(r *Request, a remote, status, attempts int, failure error) {
	if x.deadLetterTopic == "" || x.pub == nil {
		return
	}
	rec := struct {
		Rule     string    `json:"rule"`
		Action   string    `json:"action"`
		Topic    string    `json:"topic,omitempty"`
		Key      string    `json:"key,omitempty"`
		Error    string    `json:"error"`
		Status   int       `json:"status,omitempty"`
		Attempts int       `json:"attempts"`
		Time     time.Time `json:"time"`
		Request  any       `json:"request"`
	}{
		Rule: r.Rule, Action: r.Kind.String(), Topic: r.Topic, Key: r.Key, Error: Mask(failure.Error(), r.Secrets),
		Status: status, Attempts: attempts, Time: time.Now(), Request: a.letter(r.Secrets),
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		x.log.Error("dead letter not published", "rule", r.Rule, "action", r.Kind.String(), "err", err)
		return
	}
	x.pub.Publish(&Publish{Topic: x.deadLetterTopic, Payload: payload, QoS: 1}, func(err error) {
		if err != nil {
			x.log.Error("dead letter not published", "rule", r.Rule, "action", r.Kind.String(), "topic", x.deadLetterTopic, "err", err)
		}
	})
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

// maxResponseBody is how much of a response is read before it is closed.
const maxResponseBody = 64 << 10

// drain reads at most maxResponseBody bytes of a response and closes it,
// so that small responses leave their connection reusable.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxResponseBody))
	_ = body.Close()
}
