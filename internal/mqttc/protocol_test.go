package mqttc

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// TestMalformedFromBroker: a packet that breaks MQTT 3.1.1, or a stream
// that ends inside a packet, ends the connection with a clear error (no
// panic) and the client connects again.
func TestMalformedFromBroker(t *testing.T) {
	tests := []struct {
		name string
		send []byte
		want string // in the "connection to broker lost" line
	}{
		{"remaining length over four bytes", []byte{mqttwire.TypePublish << 4, 0xff, 0xff, 0xff, 0xff, 0x01}, "remaining length longer than four bytes"},
		{"topic longer than the packet", []byte{mqttwire.TypePublish << 4, 4, 0, 9, 'a', 'b'}, "PUBLISH topic of 9 bytes"},
		{"publish without topic", []byte{mqttwire.TypePublish << 4, 1, 0}, "PUBLISH without a topic"},
		{"QoS 3", append([]byte{mqttwire.TypePublish<<4 | 3<<1, 5, 0, 1, 'a'}, 0, 1), "QoS 3"},
		{"QoS 1 without packet id", []byte{mqttwire.TypePublish<<4 | 1<<1, 3, 0, 1, 'a'}, "without a packet id"},
		{"SUBACK without packet id", []byte{mqttwire.TypeSuback << 4, 1, 0}, "SUBACK of 1 bytes"},
		{"PUBREL without packet id", []byte{mqttwire.TypePubrel<<4 | 2, 0}, "PUBREL of 0 bytes"},
		{"unexpected CONNACK", []byte{mqttwire.TypeConnack << 4, 2, 0, 0}, "unexpected CONNACK"},
		{"reserved type", []byte{0, 0}, "unexpected reserved"},
		{"truncated body", []byte{mqttwire.TypePublish << 4, 100, 0, 3, 'a', 'b', 'c'}, "unexpected EOF"},
		{"truncated length", []byte{mqttwire.TypePublish << 4, 0x80}, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBroker(t)
			rec := newRecorder()
			_, sub, _, logs := startFake(t, b, rec, nil)
			sub.write(tt.send)
			sub.nc.(interface{ CloseWrite() error }).CloseWrite()
			eventually(t, wait, "the loss logged", hasLog(logs, "connection to broker lost"))
			line := ""
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "connection to broker lost") && strings.Contains(l, "connection=subscriber") {
					line = l
				}
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("loss logged as\n%s\nwant it to say %q", line, tt.want)
			}
			again := b.next("subscriber") // reconnects
			again.connack(false, 0)
			if m, ok := rec.tryNext(0); ok {
				t.Errorf("OnMessage got %s=%s from a malformed packet", m.Topic, m.Payload)
			}
		})
	}
}

// TestInboundQoS1AckAfterHandler: the PUBACK for a QoS 1 message is sent
// only after OnMessage returned (so an engine crash in between leaves the
// message with the broker).
func TestInboundQoS1AckAfterHandler(t *testing.T) {
	b := newFakeBroker(t)
	release := make(chan struct{})
	entered := make(chan Message, 1)
	_, sub, _, _ := startFake(t, b, newRecorder(), func(o *Options) {
		o.OnMessage = func(m Message) {
			entered <- m
			<-release
		}
	})
	sub.write(fakePublish("a/b", "x", 1, false, 42))
	select {
	case m := <-entered:
		if m.Topic != "a/b" || string(m.Payload) != "x" || m.QoS != 1 {
			t.Errorf("OnMessage(%+v), want a/b=x at QoS 1", m)
		}
	case <-time.After(wait):
		t.Fatal("OnMessage not called")
	}
	if p, err := sub.tryRead(200 * time.Millisecond); err == nil {
		t.Fatalf("got %s while OnMessage runs, want nothing before it returns", mqttwire.TypeName(p.Type()))
	}
	close(release)
	p := sub.expectType(mqttwire.TypePuback)
	if id, _ := mqttwire.DecodeID(p); id != 42 {
		t.Errorf("PUBACK for id %d, want 42", id)
	}
}

// TestInboundQoS2: a QoS 2 message is delivered once, on its first
// PUBLISH; a DUP before PUBREL is acknowledged (PUBREC) but not delivered
// again; PUBREL is answered with PUBCOMP and frees the id [MQTT-4.3.3].
func TestInboundQoS2(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, nil)

	expectAck := func(typ byte, id uint16) {
		t.Helper()
		p := sub.expectType(typ)
		if got, _ := mqttwire.DecodeID(p); got != id {
			t.Fatalf("%s for id %d, want %d", mqttwire.TypeName(typ), got, id)
		}
	}
	sub.write(fakePublish("q2/a", "first", 2, false, 7))
	expectAck(mqttwire.TypePubrec, 7)
	if m := rec.expect(t, "q2/a", "first"); m.QoS != 2 {
		t.Errorf("QoS %d, want 2", m.QoS)
	}
	sub.write(fakePublish("q2/a", "first", 2, true, 7)) // our PUBREC "got lost"
	expectAck(mqttwire.TypePubrec, 7)
	rec.expectNone(t, 100*time.Millisecond)
	sub.write([]byte{mqttwire.HeaderPubrel, 2, 0, 7})
	expectAck(mqttwire.TypePubcomp, 7)
	sub.write(fakePublish("q2/a", "second", 2, false, 7)) // the id is free again
	expectAck(mqttwire.TypePubrec, 7)
	rec.expect(t, "q2/a", "second")
	sub.write([]byte{mqttwire.HeaderPubrel, 2, 0, 99}) // unknown id: complete it anyway
	expectAck(mqttwire.TypePubcomp, 99)
}

// TestKeepAlive: PINGREQ goes out when the connection is idle; a broker
// that stops answering is noticed within the ping timeout.
func TestKeepAlive(t *testing.T) {
	b := newFakeBroker(t)
	start := time.Now()
	_, sub, _, logs := startFake(t, b, newRecorder(), func(o *Options) {
		o.KeepAlive = time.Second
		o.ConnectTimeout = time.Second
	})
	// The first PINGREQ is answered, the second not.
	for i := range 2 {
		_ = sub.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		p, err := sub.pr.Next()
		if err != nil {
			t.Fatalf("PINGREQ %d: %v", i+1, err)
		}
		if p.Type() != mqttwire.TypePingreq {
			t.Fatalf("got %s, want PINGREQ", mqttwire.TypeName(p.Type()))
		}
		if i == 0 {
			sub.write([]byte{mqttwire.TypePingresp << 4, 0})
		}
	}
	eventually(t, 5*time.Second, "the silent broker noticed", hasLog(logs, "no answer to PINGREQ within 1s"))
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("noticed after %v, want within about 3s", took)
	}
	b.next("subscriber").connack(false, 0) // and connects again
}

// TestConnectTimeout: a broker that accepts the connection but never
// answers CONNECT is given up on after ConnectTimeout.
func TestConnectTimeout(t *testing.T) {
	b := newFakeBroker(t)
	opts, logs := options(t, b.URL(), newRecorder())
	opts.ConnectTimeout = 300 * time.Millisecond
	start(t, opts)
	b.next("subscriber") // never answered
	eventually(t, wait, "the timeout logged", hasLog(logs, "no answer within the connect timeout"))
	if !strings.Contains(logs.String(), `msg="cannot connect to broker"`) {
		t.Errorf("log has no \"cannot connect to broker\":\n%s", logs)
	}
}

// TestBackpressure: while the publisher is connected and its window and
// queue are full, Publish blocks until the broker acknowledges (the
// engine's intake slows down) instead of dropping; after
// PublishBackpressure it gives up with ErrQueueFull.
func TestBackpressure(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), func(o *Options) {
		o.PublishInFlight = 2
		o.PublishQueue = 2
		o.PublishBackpressure = time.Minute
	})
	o := newOutcome(10)
	// Two in flight, three waiting (the queue and the next to send).
	for i := range 5 {
		c.Publish(pub_("bp/"+string(rune('a'+i)), 1), o.done)
	}
	var ids []uint16
	for range 2 {
		p := pub.expectType(mqttwire.TypePublish)
		m, _ := mqttwire.DecodePublish(p)
		ids = append(ids, m.ID)
	}
	returned := make(chan struct{})
	go func() {
		c.Publish(pub_("bp/f", 1), o.done)
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Publish returned with the window and queue full, want it to block")
	case err := <-o.ch:
		t.Fatalf("a publish was settled (%v) with nothing acknowledged", err)
	case <-time.After(300 * time.Millisecond):
	}
	if s := c.Stats(); s.InFlight != 2 || s.Queued != 2 || s.QueueFull != 0 {
		t.Errorf("Stats() while blocked = %+v, want InFlight 2 Queued 2 QueueFull 0", s)
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, ids[0]))
	select {
	case <-returned:
	case <-time.After(wait):
		t.Fatal("Publish still blocked after a PUBACK made room")
	}
	// Acknowledge everything as it comes: all six succeed, in order.
	var topics []string
	for len(topics) < 4 {
		p := pub.expectType(mqttwire.TypePublish)
		m, _ := mqttwire.DecodePublish(p)
		topics = append(topics, string(m.Topic))
		pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, m.ID))
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, ids[1]))
	if got, want := strings.Join(topics, " "), "bp/c bp/d bp/e bp/f"; got != want {
		t.Errorf("sent after room: %s, want %s", got, want)
	}
	for i, err := range o.all(t, 6, wait) {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	if s := c.Stats(); s.Published != 6 || s.QueueFull != 0 {
		t.Errorf("Stats() = %+v, want Published 6, QueueFull 0", s)
	}
}

// TestBackpressureBound: Publish waits at most PublishBackpressure.
func TestBackpressureBound(t *testing.T) {
	b := newFakeBroker(t)
	c, _, _, _ := startFake(t, b, newRecorder(), func(o *Options) {
		o.PublishInFlight = 1
		o.PublishQueue = 1
		o.PublishBackpressure = 200 * time.Millisecond
	})
	o := newOutcome(3)
	for range 3 {
		c.Publish(pub_("bound/x", 1), o.done) // one in flight, two waiting
	}
	start := time.Now()
	var got error
	c.Publish(pub_("bound/y", 1), func(err error) { got = err })
	took := time.Since(start)
	if !errors.Is(got, actions.ErrQueueFull) {
		t.Errorf("Publish with everything full: %v, want ErrQueueFull", got)
	}
	if took < 150*time.Millisecond || took > 5*time.Second {
		t.Errorf("Publish returned after %v, want about 200ms", took)
	}
	if s := c.Stats(); s.QueueFull != 1 {
		t.Errorf("Stats().QueueFull = %d, want 1", s.QueueFull)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with three publishes unacknowledged: %v, want DeadlineExceeded", err)
	}
}

// TestOutboundQoS2: PUBLISH, PUBREC, PUBREL, PUBCOMP; done(nil) on
// PUBCOMP only.
func TestOutboundQoS2(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), nil)
	o := newOutcome(1)
	c.Publish(pub_("q2/out", 2), o.done)
	p := pub.expectType(mqttwire.TypePublish)
	m, _ := mqttwire.DecodePublish(p)
	if m.QoS != 2 || string(m.Topic) != "q2/out" {
		t.Fatalf("got PUBLISH %s at QoS %d, want q2/out at 2", m.Topic, m.QoS)
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePubrec<<4, m.ID))
	rel := pub.expectType(mqttwire.TypePubrel)
	if rel.Header != mqttwire.HeaderPubrel {
		t.Errorf("PUBREL header %#x, want %#x", rel.Header, mqttwire.HeaderPubrel)
	}
	if id, _ := mqttwire.DecodeID(rel); id != m.ID {
		t.Errorf("PUBREL for %d, want %d", id, m.ID)
	}
	select {
	case err := <-o.ch:
		t.Fatalf("settled (%v) before PUBCOMP", err)
	case <-time.After(100 * time.Millisecond):
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePubcomp<<4, m.ID))
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("done(%v), want nil", err)
	}
}

// TestResendWithDup: a publish not acknowledged when the connection
// dropped is sent again, with DUP set, after the reconnect.
func TestResendWithDup(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), nil)
	o := newOutcome(1)
	c.Publish(&actions.Publish{Topic: "dup/x", Payload: []byte("payload"), QoS: 1}, o.done)
	first, _ := mqttwire.DecodePublish(pub.expectType(mqttwire.TypePublish))
	if first.Dup {
		t.Error("first PUBLISH has DUP set")
	}
	pub.nc.Close()
	again := b.next("publisher")
	again.connack(false, 0)
	p := again.expectType(mqttwire.TypePublish)
	m, _ := mqttwire.DecodePublish(p)
	if !m.Dup || string(m.Topic) != "dup/x" || string(m.Payload) != "payload" || m.QoS != 1 {
		t.Fatalf("after the reconnect: PUBLISH %s=%s QoS %d DUP %v, want dup/x=payload QoS 1 DUP", m.Topic, m.Payload, m.QoS, m.Dup)
	}
	again.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, m.ID))
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("done(%v), want nil", err)
	}
	if s := c.Stats(); s.Retried != 1 || s.Published != 1 {
		t.Errorf("Stats() = %+v, want Retried 1, Published 1", s)
	}
}

// TestResendLimit: a publish is sent at most maxAttempts times.
func TestResendLimit(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), nil)
	o := newOutcome(1)
	c.Publish(pub_("limit/x", 1), o.done)
	for i := range maxAttempts {
		pub.expectType(mqttwire.TypePublish)
		pub.nc.Close()
		if i < maxAttempts-1 {
			pub = b.next("publisher")
			pub.connack(false, 0)
		}
	}
	err := o.all(t, 1, wait)[0]
	if err == nil || !strings.Contains(err.Error(), "connection lost before the broker acknowledged it (3 attempts)") {
		t.Errorf("done(%v), want a connection lost error after 3 attempts", err)
	}
	if s := c.Stats(); s.PublishErrors != 1 {
		t.Errorf("Stats().PublishErrors = %d, want 1", s.PublishErrors)
	}
}

// TestPublishTimeout: a publish the broker does not acknowledge within
// PublishTimeout fails; its packet id stays reserved, so a late PUBACK
// settles nothing else.
func TestPublishTimeout(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), func(o *Options) {
		o.PublishTimeout = 300 * time.Millisecond
		o.PublishInFlight = 2
	})
	o := newOutcome(2)
	c.Publish(pub_("late/a", 1), o.done)
	a, _ := mqttwire.DecodePublish(pub.expectType(mqttwire.TypePublish))
	err := o.all(t, 1, wait)[0]
	if err == nil || !strings.Contains(err.Error(), "no acknowledgement from the broker within 300ms") {
		t.Fatalf("done(%v), want a timeout", err)
	}
	c.Publish(pub_("late/b", 1), o.done)
	bp, _ := mqttwire.DecodePublish(pub.expectType(mqttwire.TypePublish))
	if bp.ID == a.ID {
		t.Fatalf("the timed-out publish's id %d was used again", a.ID)
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, a.ID)) // late: settles nothing
	select {
	case err := <-o.ch:
		t.Fatalf("a late PUBACK settled a publish: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, bp.ID))
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("done(%v), want nil", err)
	}
}

// TestSubackCodes: SUBACK return codes are matched to the filters in
// order; 0x80 is a refusal naming the filter.
func TestSubackCodes(t *testing.T) {
	b := newFakeBroker(t)
	c, sub, _, _ := startFake(t, b, newRecorder(), nil)
	var codes atomic.Value
	codes.Store([]byte{1, 0x80})
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		errc <- c.Subscribe(ctx, "ok/#", "no/#")
	}()
	p := sub.expectType(mqttwire.TypeSubscribe)
	if p.Header != mqttwire.HeaderSubscribe {
		t.Errorf("SUBSCRIBE header %#x, want %#x", p.Header, mqttwire.HeaderSubscribe)
	}
	id, _ := mqttwire.DecodeID(p)
	sub.write([]byte{mqttwire.TypeSuback << 4, 4, byte(id >> 8), byte(id), 1, mqttwire.SubackFailure})
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), `"no/#"`) || strings.Contains(err.Error(), `"ok/#"`) {
		t.Errorf("Subscribe: %v, want a refusal of \"no/#\" only", err)
	}
	if c.Ready() {
		t.Error("Ready() with a refused filter")
	}
}

// TestConnectCarriesCredentials: CONNECT holds the client ids, the
// session flags and the user name and password.
func TestConnectCarriesCredentials(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	opts.Username, opts.Password = "user", "secret"
	start(t, opts)
	sub, pub := b.next("subscriber"), b.next("publisher")
	if sub.clientID != opts.ClientID || pub.clientID != opts.ClientID+"-pub" {
		t.Errorf("client ids %q and %q, want %q and %q", sub.clientID, pub.clientID, opts.ClientID, opts.ClientID+"-pub")
	}
	if sub.clean || !pub.clean {
		t.Errorf("clean session: subscriber %v publisher %v, want false true", sub.clean, pub.clean)
	}
	for _, fc := range []*fakeConn{sub, pub} {
		if fc.user != "user" || fc.pass != "secret" {
			t.Errorf("%s: user %q password %q, want user secret", fc.clientID, fc.user, fc.pass)
		}
	}
}

func pub_(topic string, qos byte) *actions.Publish {
	return &actions.Publish{Topic: topic, Payload: []byte(topic), QoS: qos}
}

// TestInboundQoS2FreshSessionForgetsIDs: a QoS 2 delivery whose PUBREL
// never came is forgotten when the broker reconnects without the session,
// so a new message that reuses its packet id is delivered, not taken for
// a duplicate.
func TestInboundQoS2FreshSessionForgetsIDs(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, nil)
	sub.write(fakePublish("q2/a", "first", 2, false, 7))
	sub.expectType(mqttwire.TypePubrec)
	rec.expect(t, "q2/a", "first")
	sub.nc.Close() // the PUBREL never comes
	again := b.next("subscriber")
	again.connack(false, 0) // no session kept
	again.write(fakePublish("q2/a", "second", 2, false, 7))
	again.expectType(mqttwire.TypePubrec)
	rec.expect(t, "q2/a", "second")
}

// TestCloseDoesNotWaitOutBackpressure: Close while OnMessage waits for
// room in a full window queues that publish and returns within its
// context, instead of waiting PublishBackpressure per publish.
func TestCloseDoesNotWaitOutBackpressure(t *testing.T) {
	b := newFakeBroker(t)
	var c *Client
	c, sub, _, _ := startFake(t, b, newRecorder(), func(o *Options) {
		o.PublishInFlight = 1
		o.PublishQueue = 1
		o.PublishBackpressure = time.Minute
		o.OnMessage = func(Message) {
			for range 4 { // the third waits for room the broker never makes
				c.Publish(&actions.Publish{Topic: "out/x", Payload: []byte("y"), QoS: 1}, func(error) {})
			}
		}
	})
	sub.write(fakePublish("in/a", "1", 1, false, 1))
	eventually(t, wait, "OnMessage waiting for room", func() bool { return c.pq.waiters.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Close(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want the publishes not sent for its context's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s of a 200 ms context")
	}
}

// TestKeepAliveWhileHandlerBusy: a PINGRESP that waits unread while the
// reader is in OnMessage does not make the client drop a live broker.
func TestKeepAliveWhileHandlerBusy(t *testing.T) {
	b := newFakeBroker(t)
	release := make(chan struct{})
	_, sub, pub, logs := startFake(t, b, newRecorder(), func(o *Options) {
		o.KeepAlive = 2 * time.Second
		o.ConnectTimeout = time.Second // the PINGRESP timeout
		o.OnMessage = func(Message) { <-release }
	})
	go func() { // owner: the test; answers the publisher's PINGREQs until the client closes
		for !pub.closed(wait) {
		}
	}()
	sub.write(fakePublish("in/a", "1", 1, false, 1))
	// For 3 s — past the PINGRESP timeout (1 s) after the first PINGREQ
	// (at about 1.5 s) — the broker answers every PINGREQ at once and
	// sees nothing else: the reader is held, so no PUBACK yet.
	if p, err := sub.tryRead(3 * time.Second); err == nil {
		t.Fatalf("got %s while OnMessage was held", mqttwire.TypeName(p.Type()))
	}
	close(release)
	sub.expectType(mqttwire.TypePuback)
	if logs.count("no answer to PINGREQ") > 0 || logs.count("connection to broker lost") > 0 {
		t.Errorf("a live broker was dropped:\n%s", logs)
	}
}
