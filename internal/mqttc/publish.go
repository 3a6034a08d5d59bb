package mqttc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// maxAttempts bounds how often one publish is sent when the publisher
// connection keeps dropping before its acknowledgement.
const maxAttempts = 3

// item is one publish on its way: in the queue, the retry list, the
// in-flight window or a goroutine's hands — in exactly one place at a time,
// so done is called exactly once.
type item struct {
	p        *actions.Publish
	done     func(error)
	attempts int
}

// inflight is a publish handed to paho, awaiting its token.
type inflight struct {
	it  *item
	tok paho.Token
}

// publishQueue is the bounded buffer between Publish and the publisher
// connection, and the pipelining window behind it.
//
// Publish puts items into queue without blocking. sendLoop takes them (the
// retry list first), waits while the publisher is down, hands each to paho
// without waiting and pushes the token into window; waitLoop awaits the
// tokens in order and calls done.
type publishQueue struct {
	mu     sync.RWMutex // guards closed against concurrent sends to queue
	closed bool
	queue  chan *item
	window chan inflight

	retryMu sync.Mutex
	retry   []*item // sent while the connection dropped; sent again first

	progress   chan struct{} // cap 1: waitLoop settled a publish
	inflightN  atomic.Int64  // items between sendLoop's send and waitLoop's verdict
	draining   chan struct{} // closed by Close: finish what is queued, then stop
	abort      chan struct{} // closed by Close when its ctx ended: fail what is left
	waiterDone chan struct{} // closed when waitLoop has exited (sendLoop before it)
	abortedN   atomic.Int64  // items failed because of abort

	published, failed, queueFull, retried atomic.Uint64
}

func (q *publishQueue) init(queue, window int) {
	q.queue = make(chan *item, queue)
	q.window = make(chan inflight, window)
	q.progress = make(chan struct{}, 1)
	q.draining = make(chan struct{})
	q.abort = make(chan struct{})
	q.waiterDone = make(chan struct{})
}

func (it *item) finish(q *publishQueue, err error) {
	if err == nil {
		q.published.Add(1)
	} else {
		q.failed.Add(1)
	}
	it.done(err)
}

// Publish queues p for the publisher connection without blocking and calls
// done exactly once: with nil once the broker took it (PUBACK for QoS 1,
// PUBCOMP for QoS 2, written to the connection for QoS 0), with
// actions.ErrQueueFull at once when PublishQueue publishes are already
// waiting, or with another error. While the broker is unreachable publishes
// wait in the queue. done is called on one of the Client's goroutines (or
// the caller's) and must not block. p must not be changed afterwards.
func (c *Client) Publish(p *actions.Publish, done func(error)) {
	q := &c.pq
	if err := checkPublish(p); err != nil {
		q.failed.Add(1)
		done(err)
		return
	}
	it := &item{p: p, done: done}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		q.failed.Add(1)
		done(fmt.Errorf("publish to %s: %w", p.Topic, errShuttingDown))
		return
	}
	select {
	case q.queue <- it:
		q.mu.RUnlock()
	default:
		q.mu.RUnlock()
		q.queueFull.Add(1)
		done(actions.ErrQueueFull)
	}
}

// checkPublish refuses what would make the broker drop the connection.
func checkPublish(p *actions.Publish) error {
	switch {
	case p == nil:
		return errors.New("publish: nil request")
	case p.Topic == "" || strings.ContainsAny(p.Topic, "+#\x00"):
		return fmt.Errorf("publish: invalid topic %q (empty, or holds '+', '#' or NUL)", p.Topic)
	case p.QoS > 2:
		return fmt.Errorf("publish to %s: invalid QoS %d", p.Topic, p.QoS)
	}
	return nil
}

// sendLoop hands queued publishes to paho while the publisher is connected.
func (c *Client) sendLoop() {
	defer c.wg.Done()
	q := &c.pq
	defer close(q.window) // lets waitLoop finish
	drainCh := q.draining
	draining := false
	for {
		it := q.pop()
		if it == nil {
			if draining && q.inflightN.Load() == 0 && q.retryLen() == 0 {
				return
			}
			select {
			case it = <-q.queue:
			case <-q.progress:
				continue
			case <-drainCh:
				draining, drainCh = true, nil
				continue
			case <-q.abort:
				return
			}
		}
		if !c.awaitPublisher() {
			q.abortedN.Add(1)
			it.finish(q, fmt.Errorf("publish to %s: %w", it.p.Topic, errShuttingDown))
			return
		}
		it.attempts++
		tok := c.pub.cli.Publish(it.p.Topic, it.p.QoS, it.p.Retain, it.p.Payload)
		q.inflightN.Add(1)
		select {
		case q.window <- inflight{it: it, tok: tok}:
		case <-q.abort:
			q.inflightN.Add(-1)
			q.abortedN.Add(1)
			it.finish(q, fmt.Errorf("publish to %s: %w", it.p.Topic, errShuttingDown))
			return
		}
	}
}

// awaitPublisher waits until the publisher connection is up; false means
// Close gave up waiting.
func (c *Client) awaitPublisher() bool {
	for {
		up, changed := c.pub.state()
		if up && c.pub.cli.IsConnectionOpen() {
			return true
		}
		var poll <-chan time.Time
		if up {
			// paho already saw the connection drop; our loop will soon.
			poll = time.After(10 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-poll:
		case <-c.pq.abort:
			return false
		}
	}
}

// waitLoop awaits the in-flight tokens in order and settles each publish.
func (c *Client) waitLoop() {
	defer c.wg.Done()
	q := &c.pq
	defer close(q.waiterDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for f := range q.window {
		err := c.awaitToken(f.tok, timer)
		switch {
		case err == nil:
			f.it.finish(q, nil)
		case errors.Is(err, errShuttingDown):
			q.abortedN.Add(1)
			f.it.finish(q, fmt.Errorf("publish to %s: %w", f.it.p.Topic, err))
		case errors.Is(err, paho.ErrNotConnected) && !q.aborted():
			// paho refused it without sending: the connection dropped
			// before our connection loop noticed. Not an attempt.
			f.it.attempts--
			q.pushRetry(f.it)
		case retryable(err) && f.it.attempts < maxAttempts && !q.aborted():
			q.retried.Add(1)
			q.pushRetry(f.it)
		default:
			f.it.finish(q, fmt.Errorf("publish to %s: %w", f.it.p.Topic, err))
		}
		q.inflightN.Add(-1)
		select {
		case q.progress <- struct{}{}:
		default:
		}
	}
}

// awaitToken waits for tok at most PublishTimeout, or until Close aborts.
func (c *Client) awaitToken(tok paho.Token, timer *time.Timer) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
	}
	timer.Reset(c.s.PublishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-timer.C:
		return fmt.Errorf("no acknowledgement from the broker within %v", c.s.PublishTimeout)
	case <-c.pq.abort:
		select {
		case <-tok.Done():
			return tok.Error()
		default:
			return errShuttingDown
		}
	}
}

// retryable reports whether err means the publish never reached the broker
// because the publisher connection was down or dropped (paho's errors).
func retryable(err error) bool {
	if errors.Is(err, paho.ErrNotConnected) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection lost before Publish completed") ||
		strings.Contains(msg, "publish was broken by timeout")
}

func (q *publishQueue) aborted() bool {
	select {
	case <-q.abort:
		return true
	default:
		return false
	}
}

// pop returns the next item, from the retry list first, or nil.
func (q *publishQueue) pop() *item {
	q.retryMu.Lock()
	if len(q.retry) > 0 {
		it := q.retry[0]
		q.retry[0] = nil
		q.retry = q.retry[1:]
		q.retryMu.Unlock()
		return it
	}
	q.retryMu.Unlock()
	select {
	case it := <-q.queue:
		return it
	default:
		return nil
	}
}

func (q *publishQueue) pushRetry(it *item) {
	q.retryMu.Lock()
	q.retry = append(q.retry, it)
	q.retryMu.Unlock()
}

func (q *publishQueue) retryLen() int {
	q.retryMu.Lock()
	defer q.retryMu.Unlock()
	return len(q.retry)
}

// shut refuses further publishes and fails those still waiting; it returns
// how many it failed. The send and wait loops must have exited (or never
// started).
func (q *publishQueue) shut() int {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	n := 0
	for {
		select {
		case it := <-q.queue:
			it.finish(q, fmt.Errorf("publish to %s: %w", it.p.Topic, errShuttingDown))
			n++
			continue
		default:
		}
		break
	}
	q.retryMu.Lock()
	rest := q.retry
	q.retry = nil
	q.retryMu.Unlock()
	for _, it := range rest {
		it.finish(q, fmt.Errorf("publish to %s: %w", it.p.Topic, errShuttingDown))
		n++
	}
	return n
}

// Stats are the Client's publish counters since New.
type Stats struct {
	Published     uint64 // publishes the broker took
	PublishErrors uint64 // publishes that failed, not counting QueueFull
	QueueFull     uint64 // publishes refused because the queue was full
	Retried       uint64 // publishes sent again after the publisher connection dropped
	Queued        int    // publishes waiting in the queue now
	InFlight      int    // publishes sent and not yet acknowledged now
}

// Stats returns the publish counters.
func (c *Client) Stats() Stats {
	q := &c.pq
	return Stats{
		Published:     q.published.Load(),
		PublishErrors: q.failed.Load(),
		QueueFull:     q.queueFull.Load(),
		Retried:       q.retried.Load(),
		Queued:        len(q.queue),
		InFlight:      int(q.inflightN.Load()),
	}
}
