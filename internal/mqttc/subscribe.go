package mqttc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// subscribeChunk is how many filters go into one SUBSCRIBE packet.
const subscribeChunk = 64

// errNotConnected is returned inside the package when the subscriber is not
// connected; Subscribe and Unsubscribe treat it as "done on connect".
var errNotConnected = errors.New("not connected")

// brokerFilter is the filter as subscribed on the broker.
func (c *Client) brokerFilter(f string) string {
	if c.s.ShareGroup == "" {
		return f
	}
	return "$share/" + c.s.ShareGroup + "/" + f
}

// Subscribe adds filters to the desired set. When the subscriber is
// connected it subscribes to the new ones (at Options.SubscribeQoS,
// default 1) and returns once the broker acknowledged them, or ctx ended;
// otherwise they are subscribed on the next connect and Subscribe returns
// nil at once. A filter the broker refuses (SUBACK 0x80) is an error
// naming it; it stays in the desired set (so Ready stays false) and is
// tried again on every reconnect.
func (c *Client) Subscribe(ctx context.Context, filters ...string) error {
	for _, f := range filters {
		if err := ValidFilter(f); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return fmt.Errorf("subscribe %s: %w", quote(filters), errShuttingDown)
	}
	for _, f := range filters {
		c.desired[f] = struct{}{}
		delete(c.pendingUnsub, f)
	}
	up := c.subUp
	c.mu.Unlock()
	if !up {
		return nil
	}
	return c.exchange(ctx, "subscribe", filters, func(epoch uint64) error {
		var todo []string
		seen := make(map[string]struct{}, len(filters))
		c.mu.Lock()
		for _, f := range filters {
			_, want := c.desired[f]
			_, done := c.acked[f]
			_, dup := seen[f]
			if want && !done && !dup {
				todo = append(todo, f)
				seen[f] = struct{}{}
			}
		}
		c.mu.Unlock()
		return c.subscribeNow(todo, epoch)
	})
}

// Unsubscribe removes filters from the desired set and, when connected,
// unsubscribes them and returns once the broker acknowledged, or ctx
// ended. When not connected the filters are unsubscribed on the next
// connect if the broker kept the session.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return fmt.Errorf("unsubscribe %s: %w", quote(filters), errShuttingDown)
	}
	for _, f := range filters {
		delete(c.desired, f)
		delete(c.acked, f)
		c.pendingUnsub[f] = struct{}{}
	}
	up := c.subUp
	c.mu.Unlock()
	if !up {
		return nil
	}
	return c.exchange(ctx, "unsubscribe", filters, func(uint64) error {
		return c.unsubscribeNow(filters)
	})
}

// Filters returns the desired set of filters, sorted.
func (c *Client) Filters() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := make([]string, 0, len(c.desired))
	for f := range c.desired {
		fs = append(fs, f)
	}
	slices.Sort(fs)
	return fs
}

// exchange runs op (one (un)subscribe exchange with the broker) while
// holding opSem, on a goroutine of its own so that a caller whose ctx ends
// does not cut it short: the acknowledgement is still recorded. op gets
// the connection epoch it runs in.
func (c *Client) exchange(ctx context.Context, what string, filters []string, op func(epoch uint64) error) error {
	select {
	case c.opSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", what, quote(filters), ctx.Err())
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.opSem
		return fmt.Errorf("%s %s: %w", what, quote(filters), errShuttingDown)
	}
	epoch, up := c.epoch, c.subUp
	c.wg.Add(1)
	c.mu.Unlock()
	if !up {
		c.wg.Done()
		<-c.opSem
		return nil
	}
	res := make(chan error, 1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.opSem }()
		res <- op(epoch)
	}()
	select {
	case err := <-res:
		if errors.Is(err, errNotConnected) {
			return nil // done again on the next connect
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", what, quote(filters), ctx.Err())
	}
}

// subscribeNow subscribes filters on the current connection and records
// the acknowledged ones if the connection (epoch) is still the same.
//
// Under MQTT 5 each filter has a Subscription Identifier of its own (when
// the broker has them, §3.2.2.3.12), and so a SUBSCRIBE packet of its
// own, all of a chunk written at once: a broker that sends a message once
// per matching subscription (mosquitto does, to MQTT 5 clients) marks each
// copy with its subscription, and the reader delivers one (see
// copyGroup).
func (c *Client) subscribeNow(filters []string, epoch uint64) error {
	var (
		refused    []string // quoted, with the reason code under MQTT 5
		refusedWhy string   // a Reason String of a SUBACK that refused
		v5         bool
	)
	for chunk := range slices.Chunk(filters, subscribeChunk) {
		bf := make([]string, len(chunk))
		for i, f := range chunk {
			bf[i] = c.brokerFilter(f)
		}
		ids := c.subscriptionIDs(chunk)
		results, err := c.exchangeNow(epoch, func(s *session) []requestBuild {
			switch {
			case !s.v5:
				return []requestBuild{func(b []byte, id uint16) ([]byte, error) {
					return mqttwire.AppendSubscribe(b, id, bf, c.s.subQoS), nil
				}}
			case s.noSubIDs:
				return []requestBuild{func(b []byte, id uint16) ([]byte, error) {
					subs := make([]mqttwire.Subscription, len(bf))
					for i, f := range bf {
						subs[i] = s.subscription(f, c.s.subQoS)
					}
					return mqttwire.AppendSubscribe5(b, id, subs, nil)
				}}
			}
			builds := make([]requestBuild, len(bf))
			for i, f := range bf {
				builds[i] = func(b []byte, id uint16) ([]byte, error) {
					props := &mqttwire.Properties{SubscriptionIdentifiers: []uint32{ids[i]}}
					return mqttwire.AppendSubscribe5(b, id, []mqttwire.Subscription{s.subscription(f, c.s.subQoS)}, props)
				}
			}
			return builds
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", quote(chunk), err)
		}
		var codes []byte
		for _, r := range results {
			codes = append(codes, r.codes...)
			v5 = r.v5
			if r.v5 && r.reason != "" && slices.ContainsFunc(r.codes, func(c byte) bool { return c >= mqttwire.SubackFailure }) {
				refusedWhy = r.reason
			}
		}
		if len(codes) != len(chunk) {
			return fmt.Errorf("subscribe %s: SUBACK with %d return codes for %d filters", quote(chunk), len(codes), len(chunk))
		}
		var granted []string
		for i, f := range chunk {
			if codes[i] >= mqttwire.SubackFailure { // 0x80 [MQTT-3.9.3]; MQTT 5: every code from 0x80 [MQTT-3.9.3]
				if v5 {
					f = fmt.Sprintf("%q (SUBACK %s)", f, mqttwire.ReasonCode(codes[i]))
				} else {
					f = strconv.Quote(f)
				}
				refused = append(refused, f)
				continue
			}
			granted = append(granted, f)
		}
		c.mu.Lock()
		if c.epoch == epoch {
			for _, f := range granted {
				if _, want := c.desired[f]; want {
					c.acked[f] = struct{}{}
				}
			}
		}
		c.mu.Unlock()
	}
	switch {
	case len(refused) == 0:
		return nil
	case !v5:
		return fmt.Errorf("subscribe %s: refused by the broker (SUBACK 0x%02x)", strings.Join(refused, ", "), mqttwire.SubackFailure)
	case refusedWhy != "":
		return fmt.Errorf("subscribe %s: refused by the broker (reason: %q)", strings.Join(refused, ", "), refusedWhy)
	}
	return fmt.Errorf("subscribe %s: refused by the broker", strings.Join(refused, ", "))
}

// subscriptionIDs returns the Subscription Identifiers of filters,
// assigning new ones to filters that have none: one per filter for the
// life of the Client, so that a resubscription keeps it.
func (c *Client) subscriptionIDs(filters []string) []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint32, len(filters))
	for i, f := range filters {
		id, ok := c.subIDs[f]
		if !ok {
			c.lastSubID++
			if c.lastSubID > mqttwire.MaxVarInt { // §3.8.2.1.2; not in practice
				c.lastSubID = 1
			}
			id = c.lastSubID
			c.subIDs[f] = id
		}
		ids[i] = id
	}
	return ids
}

// subscription is the MQTT 5 subscription to filter at qos, at most the
// broker's Maximum QoS (§3.2.2.3.4): it would grant no more. Retained
// messages are sent at every SUBSCRIBE, and the retain flag is the
// broker's, as under 3.1.1.
func (s *session) subscription(filter string, qos byte) mqttwire.Subscription {
	return mqttwire.Subscription{Filter: filter, QoS: min(qos, s.maxQoS)}
}

// unsubscribeNow unsubscribes filters on the current connection.
func (c *Client) unsubscribeNow(filters []string) error {
	c.mu.Lock()
	epoch := c.epoch
	c.mu.Unlock()
	bf := make([]string, len(filters))
	for i, f := range filters {
		bf[i] = c.brokerFilter(f)
	}
	var refused []string
	for chunk := range slices.Chunk(bf, subscribeChunk) {
		results, err := c.exchangeNow(epoch, func(s *session) []requestBuild {
			return []requestBuild{func(b []byte, id uint16) ([]byte, error) {
				if !s.v5 {
					return mqttwire.AppendUnsubscribe(b, id, chunk), nil
				}
				return mqttwire.AppendUnsubscribe5(b, id, chunk, nil)
			}}
		})
		if err != nil {
			return fmt.Errorf("unsubscribe %s: %w", quote(filters), err)
		}
		for i, code := range results[0].codes { // MQTT 5 only: UNSUBACK of 3.1.1 has none
			if code >= 0x80 && i < len(chunk) {
				refused = append(refused, fmt.Sprintf("%q (UNSUBACK %s)", chunk[i], mqttwire.ReasonCode(code)))
			}
		}
	}
	c.mu.Lock()
	for _, f := range filters {
		if _, want := c.desired[f]; !want {
			delete(c.pendingUnsub, f)
		}
	}
	c.mu.Unlock()
	if len(refused) > 0 {
		// Not tried again: the broker would refuse again.
		return fmt.Errorf("unsubscribe %s: refused by the broker", strings.Join(refused, ", "))
	}
	return nil
}

// exchangeResult is the acknowledgement of an (UN)SUBSCRIBE, and whether
// it came over MQTT 5 (reason codes and a Reason String) or 3.1.1.
type exchangeResult struct {
	ackResult
	v5 bool
}

// requestBuild appends one (UN)SUBSCRIBE with packet id id.
type requestBuild func(b []byte, id uint16) ([]byte, error)

// exchangeNow sends the (UN)SUBSCRIBE packets that plan returns for the
// subscriber's session of epoch (in its protocol), in one go, and waits
// for their acknowledgements, at most ackTimeout or until Close; it
// returns them in order. An error because the connection is not (or no
// longer) up is errNotConnected.
func (c *Client) exchangeNow(epoch uint64, plan func(s *session) []requestBuild) ([]exchangeResult, error) {
	c.mu.Lock()
	lost := c.epoch != epoch || !c.subUp
	c.mu.Unlock()
	s := c.sub.session()
	if lost || s == nil || s.isClosed() {
		return nil, errNotConnected
	}
	builds := plan(s)
	ids := make([]uint16, 0, len(builds))
	chans := make([]chan ackResult, 0, len(builds))
	forget := func() {
		for _, id := range ids {
			s.forget(id)
		}
	}
	for _, build := range builds {
		id, ch, err := s.request(build)
		if err != nil {
			forget()
			return nil, err
		}
		ids, chans = append(ids, id), append(chans, ch)
	}
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	results := make([]exchangeResult, len(chans))
	for i, ch := range chans {
		select {
		case res, ok := <-ch:
			if !ok {
				return nil, fmt.Errorf("%w: connection lost: %w", errNotConnected, s.err)
			}
			results[i] = exchangeResult{res, s.v5}
		case <-t.C:
			forget()
			return nil, fmt.Errorf("no acknowledgement from the broker within %v", ackTimeout)
		case <-c.sub.ctx.Done():
			forget()
			return nil, errShuttingDown
		}
	}
	return results, nil
}

// subscriberUp runs on the subscriber's goroutine after every connect: it
// publishes the online message (Options.OnlineMessage), unsubscribes filters removed while disconnected if the broker kept the
// session, then subscribes the desired set (retained messages of these
// filters are delivered again, as after any SUBSCRIBE). Filters a
// Subscribe call already had acknowledged on this connection (it can run
// between the connect and this) are left alone: a second SUBSCRIBE would
// make the broker send their retained messages again [MQTT-3.8.4-3].
func (c *Client) subscriberUp(s *session, sessionPresent bool) {
	if w := c.s.OnlineMessage; w != nil {
		// Not waited for: a connection lost first publishes it again on
		// the next connect.
		if _, err := c.publishStatus(s, w); err != nil {
			c.sub.log.Error("cannot publish the online message", "topic", w.Topic, "err", err)
		}
	}
	c.setSubscriber(true, sessionPresent)
	select {
	case c.opSem <- struct{}{}:
	case <-c.sub.ctx.Done():
		return
	}
	defer func() { <-c.opSem }()
	c.mu.Lock()
	epoch := c.epoch
	want := make([]string, 0, len(c.desired))
	for f := range c.desired {
		if _, done := c.acked[f]; !done {
			want = append(want, f)
		}
	}
	var stale []string
	for f := range c.pendingUnsub {
		stale = append(stale, f)
	}
	c.mu.Unlock()
	slices.Sort(want)
	// Filters removed while disconnected go first: Ready (every desired
	// filter acknowledged) must not come before they stop delivering.
	if len(stale) > 0 {
		if err := c.unsubscribeNow(stale); err != nil {
			if errors.Is(err, errNotConnected) || errors.Is(err, errShuttingDown) {
				return
			}
			c.sub.log.Warn("unsubscribe of removed filters failed", "err", err)
		}
	}
	if len(want) > 0 {
		if err := c.subscribeNow(want, epoch); err != nil {
			if errors.Is(err, errNotConnected) || errors.Is(err, errShuttingDown) {
				return
			}
			c.sub.log.Error("resubscribe failed", "err", err)
		} else {
			c.sub.log.Info("subscribed", "filters", len(want))
		}
	}
}

// subscriberDown runs after the subscriber connection ended.
func (c *Client) subscriberDown() {
	c.setSubscriber(false, false)
}

// setSubscriber records a change of the subscriber connection: a new epoch,
// nothing acknowledged on it yet. OnConnectionChange is called in the
// order of changes, outside the state lock (so it may call Ready).
func (c *Client) setSubscriber(up, sessionPresent bool) {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	c.mu.Lock()
	changed := c.subUp != up
	c.subUp = up
	c.epoch++
	clear(c.acked)
	if up && !sessionPresent {
		clear(c.pendingUnsub) // a new session holds no old subscriptions
	}
	c.mu.Unlock()
	if changed && c.s.OnConnectionChange != nil {
		c.s.OnConnectionChange(up)
	}
}

// quote formats filters for errors: "a/#", "b/+".
func quote(filters []string) string {
	q := make([]string, len(filters))
	for i, f := range filters {
		q[i] = fmt.Sprintf("%q", f)
	}
	return strings.Join(q, ", ")
}
