package mqttc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// maxAttempts bounds how often one publish is sent when the publisher
// connection keeps dropping before its acknowledgement.
const maxAttempts = 3

// maxTopicLength is the longest topic a PUBLISH can carry [MQTT-1.5.3].
const maxTopicLength = mqttwire.MaxStringLength

// item is one QoS 1 or 2 publish on its way (or a QoS 0 one that had to
// wait): in the queue or in the in-flight window — in exactly one place at
// a time, so done is called exactly once.
type item struct {
	p        *actions.Publish
	done     func(error)
	err      error  // its outcome, when settled in a batch (see fill)
	seq      uint64 // order of acceptance; kept when sent again
	attempts int
	ticks    int // publisher ticks since it was sent, for PublishTimeout
}

// expired marks a packet id whose publish timed out (done was called with
// an error): the id stays in use until the broker acknowledges it or the
// connection ends, so that a late acknowledgement cannot settle another
// publish.
var expired = &item{}

var itemPool = sync.Pool{New: func() any { return new(item) }}

// publishQueue holds the publishes between Publish and the broker: a
// bounded queue of those waiting (for the connection, or for room in the
// window) and the in-flight window of those sent and not yet acknowledged,
// indexed by packet id.
//
// Publish sends at once when the publisher is up, nothing waits before it
// and the window has room: it appends the packet to the session's write
// buffer. A PUBACK (PUBCOMP at QoS 2) frees the id, and the publisher's
// reader sends the next waiting publish with it.
type publishQueue struct {
	mu       sync.Mutex
	sess     *session // the publisher's session while it is up
	closed   bool
	closing  bool // Close began: Publish queues beyond limit rather than wait (the drain follows)
	queue    ring
	limit    int     // most items in queue: PublishQueue, plus the next to send
	slots    []*item // by packet id (1..window); nil: free
	free     []uint16
	spare    int           // free ids left unused: the broker's Receive Maximum is below the window
	inflight int           // slots holding a publish (not expired)
	room     chan struct{} // closed when room appears or the connection changes; nil: nobody waits
	waiters  atomic.Int32  // Publish calls waiting for room
	seq      uint64

	outstanding atomic.Int64 // items whose done was not called yet
	draining    atomic.Bool
	drained     chan struct{} // closed once draining and nothing is outstanding
	drainOnce   sync.Once

	published, failed, queueFull, retried atomic.Uint64
}

func (q *publishQueue) init(queue, window int) {
	q.limit = queue + 1
	q.slots = make([]*item, window+1)
	q.free = make([]uint16, 0, window)
	for id := window; id >= 1; id-- {
		q.free = append(q.free, uint16(id))
	}
	q.drained = make(chan struct{})
}

// hasRoom reports whether a QoS 1 or 2 publish may be sent now: a packet id
// is free, and the broker's Receive Maximum allows one more unacknowledged
// [MQTT-4.9.0-2]; q.mu is held.
func (q *publishQueue) hasRoom() bool { return len(q.free) > q.spare }

// Publish sends p on the publisher connection and calls done exactly
// once: with nil once the broker took it (PUBACK for QoS 1, PUBCOMP for
// QoS 2, handed to the connection's writer for QoS 0), or with an error.
//
// Under MQTT 5, p.Properties are sent with it; a failure reason code in
// the broker's acknowledgement is the error ("publish to T: PUBACK
// refused: 0x87 not authorized (reason: …)"), and so is a publish the
// broker's CONNACK rules out (a retained one when it has no retained
// messages, one over its Maximum Packet Size). A QoS above the broker's
// Maximum QoS is lowered to it [MQTT-3.2.2-11]. Under MQTT 3.1.1 the
// properties are left out (see Options.OnPropertiesDropped).
// done is called on one of the Client's goroutines or the caller's and
// must not block; it should not call Publish (which may wait, see below,
// for room that only the goroutine calling done can make). p must not be
// changed afterwards.
//
// Publish does not wait for the network. While the broker is unreachable
// publishes wait in the queue (PublishQueue); beyond it done gets
// actions.ErrQueueFull at once. While the publisher is connected but its
// in-flight window (PublishInFlight) and queue are full, Publish blocks
// until there is room, at most PublishBackpressure (then
// actions.ErrQueueFull): the caller, the subscriber's reader through the
// engine, slows down, TCP pushes back to the broker, and nothing is lost.
func (c *Client) Publish(p *actions.Publish, done func(error)) {
	q := &c.pq
	if err := checkPublish(p); err != nil {
		q.failed.Add(1)
		done(err)
		return
	}
	var timer *time.Timer
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			q.failed.Add(1)
			done(fmt.Errorf("publish to %s: %w", p.Topic, errShuttingDown))
			return
		}
		s := q.sess
		if s != nil && s.isClosed() {
			s = nil // lost; its goroutine is about to say so
		}
		if qos := p.QoS; s != nil && q.queue.len() == 0 {
			if qos = s.publishQoS(qos); qos == 0 || q.hasRoom() {
				var (
					n   int
					err error
					it  *item
				)
				if qos == 0 {
					b := s.begin()
					if s.plain(p.Properties) {
						b = mqttwire.AppendPublish(b, p.Topic, p.Payload, 0, p.Retain, false, 0)
					} else {
						b, err = s.appendPublishOther(b, p.Topic, p.Payload, 0, p.Retain, false, 0, p.Properties)
					}
					n = s.end(b)
				} else {
					it = q.newItem(p, done)
					n, err = q.send(s, it, qos)
				}
				q.mu.Unlock()
				c.written(s, n)
				if p.Properties != nil {
					c.reportDropped(s)
				}
				if err != nil {
					err = fmt.Errorf("publish to %s: %w", p.Topic, err)
				}
				switch {
				case it != nil && err != nil:
					q.finish(it, err)
				case it != nil:
				case err != nil:
					q.failed.Add(1)
					done(err)
				default:
					q.published.Add(1)
					done(nil)
				}
				if timer != nil {
					timer.Stop()
				}
				return
			}
		}
		if q.queue.len() < q.limit || q.closing {
			q.queue.push(q.newItem(p, done))
			q.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		if s == nil {
			q.mu.Unlock()
			q.queueFull.Add(1)
			done(actions.ErrQueueFull)
			return
		}
		// Connected, window and queue full: wait for room.
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		if timer == nil {
			// What waits in the write buffer must go out for room to come.
			s.flush()
			timer = time.NewTimer(c.s.PublishBackpressure)
		}
		q.waiters.Add(1)
		select {
		case <-room:
			q.waiters.Add(-1)
		case <-timer.C:
			q.waiters.Add(-1)
			q.queueFull.Add(1)
			done(actions.ErrQueueFull)
			return
		}
	}
}

// written makes sure the n bytes pending on s are written soon: by the
// subscriber's reader when the publish came from OnMessage (it flushes
// once it has handled what it read), else by s's flusher.
func (c *Client) written(s *session, n int) {
	if !c.inHandler.Load() {
		s.kickFlusher()
	} else if n >= maxPending {
		s.flush()
	}
}

// checkPublish refuses what would make the broker drop the connection.
func checkPublish(p *actions.Publish) error {
	switch {
	case p == nil:
		return errors.New("publish: nil request")
	case p.Topic == "" || strings.ContainsAny(p.Topic, "+#\x00") || !utf8.ValidString(p.Topic):
		return fmt.Errorf("publish: invalid topic %q (empty, not UTF-8, or holds '+', '#' or NUL)", p.Topic)
	case len(p.Topic) > maxTopicLength:
		return fmt.Errorf("publish: topic of %d bytes is over the MQTT limit of %d", len(p.Topic), maxTopicLength)
	case p.QoS > 2:
		return fmt.Errorf("publish to %s: invalid QoS %d", p.Topic, p.QoS)
	case mqttwire.PublishLength(p.Topic, p.Payload, p.QoS) > mqttwire.MaxRemainingLength:
		return fmt.Errorf("publish to %s: payload of %d bytes is over the MQTT limit", p.Topic, len(p.Payload))
	}
	return nil
}

// newItem returns an item for p; q.mu is held.
func (q *publishQueue) newItem(p *actions.Publish, done func(error)) *item {
	it := itemPool.Get().(*item)
	q.seq++
	*it = item{p: p, done: done, seq: q.seq}
	q.outstanding.Add(1)
	return it
}

// send writes it to s at qos (1 or 2) with a free packet id; q.mu is held
// and there is room. It returns the bytes pending on s, and the error of
// a publish s refuses (which then takes no id).
func (q *publishQueue) send(s *session, it *item, qos byte) (int, error) {
	id := q.free[len(q.free)-1]
	b := s.begin()
	var err error
	if s.plain(it.p.Properties) {
		b = mqttwire.AppendPublish(b, it.p.Topic, it.p.Payload, qos, it.p.Retain, it.attempts > 0, id)
	} else {
		b, err = s.appendPublishOther(b, it.p.Topic, it.p.Payload, qos, it.p.Retain, it.attempts > 0, id, it.p.Properties)
	}
	n := s.end(b)
	if err != nil {
		return n, err
	}
	q.free = q.free[:len(q.free)-1]
	q.slots[id] = it
	q.inflight++
	it.attempts++
	it.ticks = 0
	return n, nil
}

// fill sends waiting publishes while the window has room; q.mu is held and
// the publisher is up. Waiting QoS 0 publishes (and those the broker's
// Maximum QoS lowers to 0) need no id: they are written and returned in
// settled, to be finished by the caller with their err, as are those s
// refuses.
func (q *publishQueue) fill(s *session, settled []*item) []*item {
	n := q.queue.len()
	for q.queue.len() > 0 {
		it := q.queue.peek()
		qos := s.publishQoS(it.p.QoS)
		if qos == 0 {
			q.queue.pop()
			b := s.begin()
			b, err := s.appendPublish(b, it.p.Topic, it.p.Payload, 0, it.p.Retain, false, 0, it.p.Properties)
			s.end(b)
			if err != nil {
				it.err = fmt.Errorf("publish to %s: %w", it.p.Topic, err)
			}
			settled = append(settled, it)
			continue
		}
		if !q.hasRoom() {
			break
		}
		q.queue.pop()
		if _, err := q.send(s, it, qos); err != nil {
			it.err = fmt.Errorf("publish to %s: %w", it.p.Topic, err)
			settled = append(settled, it)
		}
	}
	if q.queue.len() < n {
		q.wake()
	}
	return settled
}

// wake releases the Publish calls waiting for room; q.mu is held.
func (q *publishQueue) wake() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// finish settles it: done is called, the counters and the drain updated.
func (q *publishQueue) finish(it *item, err error) {
	if err == nil {
		q.published.Add(1)
	} else {
		q.failed.Add(1)
	}
	done := it.done
	*it = item{}
	itemPool.Put(it)
	done(err)
	q.settled()
}

// settled counts one item less outstanding.
func (q *publishQueue) settled() {
	if q.outstanding.Add(-1) == 0 && q.draining.Load() {
		q.drainOnce.Do(func() { close(q.drained) })
	}
}

// drain returns a channel closed once no publish is queued or in flight.
func (q *publishQueue) drain() <-chan struct{} {
	q.draining.Store(true)
	if q.outstanding.Load() == 0 {
		q.drainOnce.Do(func() { close(q.drained) })
	}
	return q.drained
}

// ackPublish settles the publish with packet id (PUBACK, or PUBCOMP at QoS
// 2; under MQTT 5 also a PUBREC that refused it) and sends the next waiting
// ones. refused is the broker's refusal, or nil. It runs on the
// publisher's reader.
func (c *Client) ackPublish(s *session, id uint16, refused error) {
	q := &c.pq
	q.mu.Lock()
	if int(id) >= len(q.slots) || q.slots[id] == nil {
		q.mu.Unlock()
		return // not ours (any more): ignore
	}
	it := q.slots[id]
	q.slots[id] = nil
	q.free = append(q.free, id)
	if it != expired {
		q.inflight--
	} else {
		it = nil
	}
	var settled []*item
	if q.sess == s && !q.closed {
		settled = q.fill(s, nil)
	}
	q.mu.Unlock()
	if it != nil {
		if refused != nil {
			refused = fmt.Errorf("publish to %s: %w", it.p.Topic, refused)
		}
		q.finish(it, refused)
	}
	for _, w := range settled {
		q.finish(w, w.err)
	}
	c.reportDropped(s)
}

// reportDropped logs, and reports to Options.OnPropertiesDropped, that s
// (MQTT 3.1.1) left out a publish's properties: once per connection.
func (c *Client) reportDropped(s *session) {
	if s.dropped.Load() && s.dropReported.CompareAndSwap(false, true) {
		c.pub.log.Warn("properties dropped: the broker speaks MQTT 3.1.1, which has none; publishes go without them")
		if c.s.OnPropertiesDropped != nil {
			c.s.OnPropertiesDropped()
		}
	}
}

// received handles PUBREC for id: the broker has the QoS 2 publish; it is
// released with PUBREL and settled on PUBCOMP [MQTT-4.3.3].
func (c *Client) received(s *session, id uint16) {
	b := s.begin()
	b = mqttwire.AppendAck(b, mqttwire.HeaderPubrel, id)
	s.end(b)
}

// publisherSession starts the publisher's reader: acknowledgements settle
// publishes and make room for the next.
func (c *Client) publisherSession(s *session, _ bool) {
	s.onTick = func(time.Time) { c.expire(s) }
	s.quickAck = nil // it writes often enough; acknowledgements ride along
	s.mayPause = func() bool { return c.pq.waiters.Load() == 0 }
	s.start(func(p mqttwire.Packet) error { return c.publisherPacket(s, p) }, func() bool { s.flush(); return true })
}

func (c *Client) publisherPacket(s *session, p mqttwire.Packet) error {
	if s.v5 {
		return c.publisherPacket5(s, p)
	}
	switch p.Type() {
	case mqttwire.TypePuback, mqttwire.TypePubcomp:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		c.ackPublish(s, id, nil)
	case mqttwire.TypePubrec:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		c.received(s, id)
	case mqttwire.TypePingresp:
	case mqttwire.TypeDisconnect:
		return errBrokerDisconnect
	case mqttwire.TypePublish:
		// The publisher subscribes to nothing; acknowledge and drop.
		m, err := mqttwire.DecodePublish(p)
		if err != nil {
			return err
		}
		if m.QoS > 0 {
			h := mqttwire.TypePuback << 4
			if m.QoS == 2 {
				h = mqttwire.TypePubrec << 4
			}
			b := s.begin()
			b = mqttwire.AppendAck(b, h, m.ID)
			s.end(b)
		}
	case mqttwire.TypePubrel:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.TypePubcomp<<4, id)
		s.end(b)
	default:
		return fmt.Errorf("unexpected %s from the broker: %w", mqttwire.TypeName(p.Type()), mqttwire.ErrMalformed)
	}
	return nil
}

// publisherUp sends what waits, from the publishes that the last
// connection left unacknowledged on.
func (c *Client) publisherUp(s *session, _ bool) {
	q := &c.pq
	q.mu.Lock()
	q.sess = s
	q.spare = 0
	if window := len(q.slots) - 1; s.sendMax != 0 && int(s.sendMax) < window {
		q.spare = window - int(s.sendMax)
	}
	var settled []*item
	if !q.closed {
		settled = q.fill(s, nil)
	}
	q.wake()
	q.mu.Unlock()
	c.pubSess.Store(s)
	s.kickFlusher()
	for _, it := range settled {
		q.finish(it, it.err)
	}
	c.reportDropped(s)
}

// publisherDown puts the publishes that were not acknowledged back at the
// front of the queue, in their order, to be sent again after the
// reconnect; those sent maxAttempts times fail.
func (c *Client) publisherDown(s *session) {
	c.pubSess.CompareAndSwap(s, nil)
	q := &c.pq
	q.mu.Lock()
	if q.sess == s {
		q.sess = nil
	}
	var again, failed []*item
	for id, it := range q.slots {
		if it == nil {
			continue
		}
		q.slots[id] = nil
		q.free = append(q.free, uint16(id))
		if it == expired {
			continue
		}
		if it.attempts >= maxAttempts || q.closed {
			failed = append(failed, it)
		} else {
			again = append(again, it)
		}
	}
	q.inflight = 0
	slices.SortFunc(q.free, func(a, b uint16) int { return int(b) - int(a) })
	slices.SortFunc(again, func(a, b *item) int { return cmp.Compare(a.seq, b.seq) })
	q.queue.pushFront(again)
	q.retried.Add(uint64(len(again)))
	q.wake()
	q.mu.Unlock()
	for _, it := range failed {
		q.finish(it, fmt.Errorf("publish to %s: connection lost before the broker acknowledged it (%d attempts): %w",
			it.p.Topic, it.attempts, s.err))
	}
}

// expire fails the publishes that waited PublishTimeout for their
// acknowledgement. It runs on the publisher's flusher every tick.
func (c *Client) expire(s *session) {
	q := &c.pq
	limit := int(c.s.PublishTimeout / s.tick)
	var late []*item
	q.mu.Lock()
	if q.sess == s && q.inflight > 0 {
		for id, it := range q.slots {
			if it == nil || it == expired {
				continue
			}
			if it.ticks++; it.ticks > limit {
				q.slots[id] = expired
				q.inflight--
				late = append(late, it)
			}
		}
	}
	// Every id waiting for an acknowledgement that does not come: nothing
	// can be sent until the connection starts over.
	stuck := len(late) > 0 && !q.hasRoom() && q.inflight == 0
	q.mu.Unlock()
	for _, it := range late {
		q.finish(it, fmt.Errorf("publish to %s: no acknowledgement from the broker within %v", it.p.Topic, c.s.PublishTimeout))
	}
	if stuck {
		s.fail(fmt.Errorf("no publish acknowledged within %v", c.s.PublishTimeout))
	}
}

// shut refuses further publishes and fails those still queued or in
// flight; it returns how many it failed.
func (q *publishQueue) shut() int {
	q.mu.Lock()
	q.closed = true
	var rest []*item
	for q.queue.len() > 0 {
		rest = append(rest, q.queue.pop())
	}
	for id, it := range q.slots {
		if it == nil {
			continue
		}
		q.slots[id] = nil
		if it != expired {
			rest = append(rest, it)
		}
	}
	q.free = q.free[:0]
	q.inflight = 0
	q.wake()
	q.mu.Unlock()
	for _, it := range rest {
		q.finish(it, fmt.Errorf("publish to %s: %w", it.p.Topic, errShuttingDown))
	}
	return len(rest)
}

// ring is a FIFO of items.
type ring struct {
	buf  []*item
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) peek() *item { return r.buf[r.head] }

func (r *ring) push(it *item) {
	if r.n == len(r.buf) {
		r.grow(1)
	}
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
}

func (r *ring) pop() *item {
	it := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return it
}

// pushFront puts its before the queued items, in their order.
func (r *ring) pushFront(its []*item) {
	if len(its) == 0 {
		return
	}
	if r.n+len(its) > len(r.buf) {
		r.grow(len(its))
	}
	for i := len(its) - 1; i >= 0; i-- {
		r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
		r.buf[r.head] = its[i]
		r.n++
	}
}

func (r *ring) grow(extra int) {
	nb := make([]*item, max(16, 2*len(r.buf), r.n+extra))
	for i := range r.n {
		nb[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = nb, 0
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

// Stats returns the publish counters. Queued does not count the publish
// at the head of the queue, the next to send, which waits apart from the
// PublishQueue others.
func (c *Client) Stats() Stats {
	q := &c.pq
	q.mu.Lock()
	queued, inflight := max(q.queue.len()-1, 0), q.inflight
	q.mu.Unlock()
	return Stats{
		Published:     q.published.Load(),
		PublishErrors: q.failed.Load(),
		QueueFull:     q.queueFull.Load(),
		Retried:       q.retried.Load(),
		Queued:        queued,
		InFlight:      inflight,
	}
}
