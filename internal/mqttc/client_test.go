package mqttc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

func TestSubscribeReceive(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		// A retained message published before we subscribe arrives with
		// the retained flag.
		testbroker.Publish(t, b.URL(), "home/hall/temp", []byte("19"), 1, true)

		rec := newRecorder()
		opts, _ := options(t, b.URL(), rec)
		c := start(t, opts)
		subscribe(t, c, "home/+/temp")

		m := rec.expect(t, "home/hall/temp", "19")
		if !m.Retained {
			t.Errorf("retained message: Retained = false, want true")
		}

		p := testbroker.NewPublisher(t, b.URL())
		p.Publish("home/kitchen/temp", []byte("21.5"), 0, false)
		m = rec.expect(t, "home/kitchen/temp", "21.5")
		if m.QoS != 0 || m.Retained {
			t.Errorf("QoS 0 message: QoS %d retained %v, want 0 false", m.QoS, m.Retained)
		}
		p.Publish("home/kitchen/temp", []byte(`{"value":22}`), 1, false)
		m = rec.expect(t, "home/kitchen/temp", `{"value":22}`)
		if m.QoS != 1 {
			t.Errorf("QoS 1 message: QoS = %d, want 1", m.QoS)
		}
		// Not subscribed.
		p.Publish("home/kitchen/humidity", []byte("40"), 1, false)
		rec.expectNone(t, 200*time.Millisecond)

		if got := c.Filters(); !slices.Equal(got, []string{"home/+/temp"}) {
			t.Errorf("Filters() = %q, want [home/+/temp]", got)
		}
		if !c.Connected() {
			t.Errorf("Connected() = false, want true")
		}
	})
}

// TestOverlappingSubscriptions pins what a message matching two of our
// subscriptions does. The client installs no per-subscription callbacks, so
// paho calls OnMessage once per PUBLISH packet; how many packets arrive is
// the broker's choice (MQTT 3.1.1 §3.3.5 allows one or one per
// subscription).
//
// Measured on this machine: over MQTT 3.1.1, mosquitto 2.0.11 sends ONE
// message (no duplicate), whether the filters came in one SUBSCRIBE
// packet or in two; mochi-mqtt v2.7.9 (the embedded broker) also sends
// one. Over MQTT 5, mosquitto sends one copy per matching subscription
// (MQTT 5 §3.3.4 allows it), one after the other, each with the
// Subscription Identifier of its subscription; the client delivers one
// of them (copyGroup). So a rule engine on either broker sees each
// message once; the engine still must not rely on it (other brokers may
// send copies apart, or without identifiers).
func TestOverlappingSubscriptions(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		for _, separate := range []bool{false, true} {
			t.Run(fmt.Sprintf("separate_subscribe_packets=%v", separate), func(t *testing.T) {
				rec := newRecorder()
				opts, _ := options(t, b.URL(), rec)
				c := start(t, opts)
				if separate {
					subscribe(t, c, "ov/#")
					subscribe(t, c, "ov/+")
				} else {
					subscribe(t, c, "ov/#", "ov/+")
				}
				p := testbroker.NewPublisher(t, b.URL())
				p.Publish("ov/x", []byte("q1"), 1, false)
				p.Publish("ov/y", []byte("q0"), 0, false)
				p.Publish("ov/end", []byte("end"), 1, false) // marks the end of the deliveries

				want := []string{"ov/x=q1", "ov/y=q0", "ov/end=end"}
				var got []string
				for len(got) < len(want) {
					m, ok := rec.tryNext(wait)
					if !ok {
						break
					}
					got = append(got, m.Topic+"="+string(m.Payload))
				}
				rec.expectNone(t, 200*time.Millisecond) // no late duplicate
				if !slices.Equal(got, want) {
					t.Fatalf("OnMessage calls for messages matching ov/# and ov/+: got %q, want %q", got, want)
				}
			})
		}
	})
}

func TestPublishArrives(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		sub := testbroker.Subscribe(t, b.URL(), "out/#")
		opts, _ := options(t, b.URL(), newRecorder())
		c := start(t, opts)

		o := newOutcome(3)
		c.Publish(pub("out/q0", "zero", 0, false), o.done)
		c.Publish(pub("out/q1", "one", 1, false), o.done)
		c.Publish(pub("out/q2", "two", 2, false), o.done)
		for i, err := range o.all(t, 3, wait) {
			if err != nil {
				t.Errorf("publish %d: done(%v), want done(nil)", i, err)
			}
		}
		// One connection publishes in order.
		sub.Expect(t, wait, "out/q0", "zero")
		if m := sub.Expect(t, wait, "out/q1", "one"); m.QoS != 1 {
			t.Errorf("out/q1 arrived with QoS %d, want 1", m.QoS)
		}
		sub.Expect(t, wait, "out/q2", "two")

		// Retain flag.
		o = newOutcome(1)
		c.Publish(pub("out/retained", "r", 1, true), o.done)
		if err := o.all(t, 1, wait)[0]; err != nil {
			t.Fatalf("retained publish: %v", err)
		}
		sub.Expect(t, wait, "out/retained", "r")
		// The broker keeps it. Not asked of mochi v2.7.9: a SUBSCRIBE
		// right after a retained PUBLISH on another connection is a data
		// race in it (TopicsIndex.RetainMessage writes a node's retainPath
		// under the node's lock, scanMessages reads it without), which
		// -race reports here now and then.
		if !strings.Contains(t.Name(), "/embedded/") {
			late := testbroker.Subscribe(t, b.URL(), "out/retained")
			if m := late.Expect(t, wait, "out/retained", "r"); !m.Retained {
				t.Errorf("late subscriber: Retained = false, want true")
			}
		}

		if s := c.Stats(); s.Published != 4 || s.PublishErrors != 0 {
			t.Errorf("Stats() = %+v, want Published 4, PublishErrors 0", s)
		}
	})
}

func TestPublishInvalid(t *testing.T) {
	c, err := New(Options{Broker: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*actions.Publish{nil, pub("", "x", 0, false), pub("a/+", "x", 0, false), pub("a/#", "x", 0, false), pub("a", "x", 3, false)} {
		var got error
		c.Publish(p, func(err error) { got = err }) // settled before Publish returns
		if got == nil {
			t.Errorf("Publish(%+v): done(nil), want an error", p)
		}
	}
	if err := c.Close(context.Background()); err != nil {
		t.Errorf("Close of a never started client: %v", err)
	}
}

// TestPublishPipelined sends 5,000 QoS 1 publishes without waiting between
// them; every one must be acknowledged and arrive exactly once.
func TestPublishPipelined(t *testing.T) {
	const n = 5000
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		sub := testbroker.Subscribe(t, b.URL(), "pipe/#")
		opts, _ := options(t, b.URL(), newRecorder())
		c := start(t, opts)

		o := newOutcome(n)
		for i := range n {
			c.Publish(pub("pipe/"+strconv.Itoa(i%10), strconv.Itoa(i), 1, false), o.done)
		}
		var failed []error
		for _, err := range o.all(t, n, 60*time.Second) {
			if err != nil {
				failed = append(failed, err)
			}
		}
		if len(failed) > 0 {
			t.Fatalf("%d of %d publishes failed, first: %v", len(failed), n, failed[0])
		}

		seen := make(map[string]int, n)
		for range n {
			m, ok := sub.TryNext(wait)
			if !ok {
				t.Fatalf("received %d distinct of %d messages, then nothing for %v", len(seen), n, wait)
			}
			seen[string(m.Payload)]++
		}
		sub.ExpectNone(t, 200*time.Millisecond)
		for i := range n {
			if got := seen[strconv.Itoa(i)]; got != 1 {
				t.Fatalf("message %d received %d times, want 1", i, got)
			}
		}
		if s := c.Stats(); s.Published != n || s.QueueFull != 0 || s.InFlight != 0 || s.Queued != 0 {
			t.Errorf("Stats() = %+v, want Published %d and nothing queued or in flight", s, n)
		}
	},
		// mosquitto queues at most 1000 QoS 1 messages for a subscriber
		// beyond its 20 in flight and drops the rest ("Outgoing messages
		// are being dropped"); the test subscriber must not lose any.
		testbroker.WithConfig("max_queued_messages 0"))
}

func TestReconnectResubscribes(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		rec := newRecorder()
		opts, logs := options(t, b.URL(), rec)
		c := start(t, opts)
		subscribe(t, c, "rc/#")
		eventually(t, wait, "Connected()", c.Connected)

		b.Stop()
		eventually(t, wait, "Ready() false after the broker stopped", func() bool { return !c.Ready() })
		eventually(t, wait, "Connected() false after the broker stopped", func() bool { return !c.Connected() })

		b.Start() // a fresh broker: no sessions, no subscriptions
		eventually(t, reconnectWait, "Ready() again after the broker restarted", c.Ready)
		eventually(t, reconnectWait, "Connected() again", c.Connected)

		testbroker.Publish(t, b.URL(), "rc/after", []byte("restart"), 1, false)
		rec.expect(t, "rc/after", "restart")

		if got, want := rec.connChanges(), []bool{true, false, true}; !slices.Equal(got, want) {
			t.Errorf("OnConnectionChange calls: got %v, want %v", got, want)
		}
		for _, want := range []string{"connection to broker lost", "connected to broker"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log has no %q", want)
			}
		}
	})
}

// TestPublishWhileBrokerDown: publishes wait in the queue while the broker
// is away and are delivered when it is back; beyond PublishQueue they fail
// at once with ErrQueueFull. The broker restarts empty, so the publishes
// are retained and a subscriber checks them after the restart.
func TestPublishWhileBrokerDown(t *testing.T) {
	const queue = 5
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		opts, _ := options(t, b.URL(), newRecorder())
		opts.PublishQueue = queue
		c := start(t, opts)
		eventually(t, wait, "Connected()", c.Connected)

		b.Stop()
		// Connected() turns false with the first of the two connections
		// to notice; the publishes below need the publisher to have
		// noticed (else they go out on the dying connection).
		eventually(t, wait, "Connected() false", func() bool { return !c.Connected() && !c.pub.isUp() })

		o := newOutcome(queue + 1)
		// The sender takes the first publish off the queue and holds it
		// until the broker is back; then queue more fill the queue.
		c.Publish(pub("down/0", "0", 1, true), o.done)
		eventually(t, wait, "sender took the first publish", func() bool { return c.Stats().Queued == 0 })
		for i := 1; i <= queue; i++ {
			c.Publish(pub("down/"+strconv.Itoa(i), strconv.Itoa(i), 1, true), o.done)
		}
		for i := queue + 1; i <= queue+3; i++ {
			var got error
			settled := false
			c.Publish(pub("down/"+strconv.Itoa(i), "x", 1, true), func(err error) { got, settled = err, true })
			if !settled || !errors.Is(got, actions.ErrQueueFull) {
				t.Fatalf("publish %d with a full queue: settled %v with %v, want ErrQueueFull at once", i, settled, got)
			}
		}
		select {
		case err := <-o.ch:
			t.Fatalf("a queued publish was settled while the broker is down: %v", err)
		default:
		}

		b.Start()
		for i, err := range o.all(t, queue+1, reconnectWait) {
			if err != nil {
				t.Errorf("queued publish %d: done(%v), want done(nil)", i, err)
			}
		}
		sub := testbroker.Subscribe(t, b.URL(), "down/#")
		got := map[string]string{}
		for range queue + 1 {
			m := sub.Next(t, wait)
			got[m.Topic] = string(m.Payload)
		}
		for i := 0; i <= queue; i++ {
			if p := got["down/"+strconv.Itoa(i)]; p != strconv.Itoa(i) {
				t.Errorf("down/%d after the restart: payload %q, want %q (all: %v)", i, p, strconv.Itoa(i), got)
			}
		}
		// The overflow was not published. (A copy of the last queued
		// publish may come: mochi stores a retained message and sends
		// PUBACK before it delivers it to subscribers, so a subscription
		// made right after the PUBACK can get it retained and live.)
		for {
			m, ok := sub.TryNext(200 * time.Millisecond)
			if !ok {
				break
			}
			if n, _ := strconv.Atoi(strings.TrimPrefix(m.Topic, "down/")); n > queue {
				t.Fatalf("got %s=%s from the overflow, want it not published", m.Topic, m.Payload)
			}
		}
		if s := c.Stats(); s.QueueFull != 3 || s.Published != queue+1 {
			t.Errorf("Stats() = %+v, want QueueFull 3, Published %d", s, queue+1)
		}
	})
}

// TestPersistentSession: QoS 1 messages published while the engine is
// stopped are delivered when it comes back with the same client id (the
// subscriber's session is persistent and Close does not unsubscribe).
func TestPersistentSession(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		rec1 := newRecorder()
		opts, _ := options(t, b.URL(), rec1)
		c1, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		c1.Start()
		subscribe(t, c1, "ps/#")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c1.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}

		p := testbroker.NewPublisher(t, b.URL())
		for i := range 3 {
			p.Publish("ps/"+strconv.Itoa(i), []byte(strconv.Itoa(i)), 1, false)
		}
		p.Publish("ps/qos0", []byte("maybe"), 0, false) // QoS 0 to an offline session: the broker may drop it

		rec2 := newRecorder()
		opts2, _ := options(t, b.URL(), rec2)
		opts2.ClientID = opts.ClientID
		c2 := start(t, opts2)
		// mosquitto delivers the stored messages in order; mochi resends
		// its stored messages in no particular order.
		got := map[string]string{}
		for len(got) < 3 {
			m := rec2.next(t, wait)
			if m.Topic == "ps/qos0" {
				continue
			}
			if m.QoS != 1 {
				t.Errorf("%s: QoS %d, want 1", m.Topic, m.QoS)
			}
			got[m.Topic] = string(m.Payload)
		}
		for i := range 3 {
			if p := got["ps/"+strconv.Itoa(i)]; p != strconv.Itoa(i) {
				t.Errorf("ps/%d after restart: payload %q, want %q (all: %v)", i, p, strconv.Itoa(i), got)
			}
		}
		subscribe(t, c2, "ps/#")
		p.Publish("ps/live", []byte("live"), 1, false)
		for {
			m := rec2.next(t, wait)
			if m.Topic == "ps/qos0" {
				continue
			}
			if m.Topic != "ps/live" {
				t.Fatalf("got %s=%s, want ps/live=live", m.Topic, m.Payload)
			}
			break
		}
		if m, ok := rec1.tryNext(0); ok {
			t.Errorf("closed client received %s=%s, want nothing", m.Topic, m.Payload)
		}
	})
}

// TestCloseDrains: Close lets every queued publish reach the broker before
// it disconnects.
func TestCloseDrains(t *testing.T) {
	const n = 2000
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		sub := testbroker.Subscribe(t, b.URL(), "drain/#")
		opts, _ := options(t, b.URL(), newRecorder())
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		eventually(t, wait, "Connected()", c.Connected)

		o := newOutcome(n)
		for i := range n {
			c.Publish(pub("drain/x", strconv.Itoa(i), 1, false), o.done)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if len(o.ch) != n {
			t.Fatalf("after Close returned, %d of %d publishes were settled, want all", len(o.ch), n)
		}
		for i, err := range o.all(t, n, time.Second) {
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		for i := range n {
			m := sub.Next(t, wait)
			if string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: payload %q, want %q", i, m.Payload, strconv.Itoa(i))
			}
		}

		// After Close, Publish fails at once.
		var got error
		c.Publish(pub("drain/late", "x", 1, false), func(err error) { got = err })
		if got == nil || !strings.Contains(got.Error(), "shutting down") {
			t.Errorf("Publish after Close: %v, want a shutting down error", got)
		}
		if c.Connected() || c.Ready() {
			t.Errorf("after Close: Connected %v Ready %v, want false false", c.Connected(), c.Ready())
		}
	},
		// As in TestPublishPipelined: mosquitto would drop what the test
		// subscriber cannot take as fast as the client publishes.
		testbroker.WithConfig("max_queued_messages 0"))
}

// TestCloseGivesUp: with the broker gone, Close waits for the queue until
// its ctx ends, then fails what is left and returns.
func TestCloseGivesUp(t *testing.T) {
	b := testbroker.Embedded(t)
	opts, _ := options(t, b.URL(), newRecorder())
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	eventually(t, wait, "Connected()", c.Connected)
	b.Stop()
	eventually(t, wait, "Connected() false", func() bool { return !c.Connected() })

	o := newOutcome(3)
	for i := range 3 {
		c.Publish(pub("gone/"+strconv.Itoa(i), "x", 1, false), o.done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Close(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v, want about its 300ms ctx", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 publishes not sent") {
		t.Errorf("Close: %v, want \"3 publishes not sent\" wrapping context.DeadlineExceeded", err)
	}
	for i, err := range o.all(t, 3, time.Second) {
		if err == nil || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("publish %d: %v, want a shutting down error", i, err)
		}
	}
	if err2 := c.Close(context.Background()); err2 != err {
		t.Errorf("second Close: %v, want the first result %v", err2, err)
	}
}

func TestUnsubscribe(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		rec := newRecorder()
		opts, _ := options(t, b.URL(), rec)
		c := start(t, opts)
		subscribe(t, c, "un/a", "un/b")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c.Unsubscribe(ctx, "un/a"); err != nil {
			t.Fatalf("Unsubscribe: %v", err)
		}
		if !c.Ready() {
			t.Errorf("Ready() = false after unsubscribing, want true")
		}
		p := testbroker.NewPublisher(t, b.URL())
		p.Publish("un/a", []byte("gone"), 1, false)
		p.Publish("un/b", []byte("kept"), 1, false)
		rec.expect(t, "un/b", "kept")
		if got := c.Filters(); !slices.Equal(got, []string{"un/b"}) {
			t.Errorf("Filters() = %q, want [un/b]", got)
		}
	})
}

// TestSubscribeWhileDisconnected: filters added while the broker is away
// are subscribed on connect; Ready waits for them.
func TestSubscribeWhileDisconnected(t *testing.T) {
	b := testbroker.Mosquitto(t)
	b.Stop()
	rec := newRecorder()
	opts, logs := options(t, b.URL(), rec)
	c := start(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Subscribe(ctx, "late/#"); err != nil {
		t.Fatalf("Subscribe while not connected: %v, want nil", err)
	}
	if c.Ready() {
		t.Fatal("Ready() = true while the broker is down")
	}
	eventually(t, wait, "a connection failure logged", func() bool {
		return strings.Contains(logs.String(), "cannot connect to broker")
	})
	if !strings.Contains(logs.String(), "broker="+b.URL()) {
		t.Errorf("connection failure log does not name the broker %s", b.URL())
	}
	b.Start()
	eventually(t, reconnectWait, "Ready()", c.Ready)
	testbroker.Publish(t, b.URL(), "late/x", []byte("y"), 1, false)
	rec.expect(t, "late/x", "y")
}

// TestConnectFailureLogRate: while the broker cannot be reached, failures
// are logged for the first attempts, then at most once a minute.
func TestConnectFailureLogRate(t *testing.T) {
	// A listener that accepts and closes at once: every attempt fails fast.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepts := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepts++
			mu.Unlock()
			conn.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()

	opts, logs := options(t, "tcp://"+ln.Addr().String(), newRecorder())
	opts.MaxReconnectInterval = 20 * time.Millisecond
	start(t, opts)
	// Both connections try; wait for many attempts in all.
	eventually(t, wait, "20 connection attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return accepts >= 20
	})
	if got, want := logs.count("cannot connect to broker"), 2*failureLogFirst; got != want {
		t.Errorf("after 20 failed attempts: %d failure log lines, want %d (the first %d per connection)\n%s", got, want, failureLogFirst, logs)
	}
}

// mochiWithAuth starts a mochi broker that accepts only user "good" with
// password "secret" and refuses subscriptions to denied/#.
func mochiWithAuth(t *testing.T) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
		Auth: auth.AuthRules{{Username: "good", Password: "secret", Allow: true}},
		ACL:  auth.ACLRules{{Filters: auth.Filters{"denied/#": auth.Deny}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + l.Address()
}

// TestConnectRefused: a CONNACK refusal is logged as an error saying what
// the broker answered.
func TestConnectRefused(t *testing.T) {
	t.Run("mosquitto_anonymous_not_allowed_v5", func(t *testing.T) {
		b := testbroker.Mosquitto(t, testbroker.WithConfig("allow_anonymous false"))
		opts, logs := options(t, b.URL(), newRecorder())
		opts.Protocol = "5"
		start(t, opts)
		want := `level=ERROR msg="broker refused the connection: 0x87 not authorized" broker=` + b.URL()
		eventually(t, wait, "refusal logged", func() bool { return strings.Contains(logs.String(), want) })
		if !strings.Contains(logs.String(), "reason_code=0x87") {
			t.Errorf("log has no reason_code=0x87:\n%s", logs)
		}
	})
	t.Run("mosquitto_anonymous_not_allowed", func(t *testing.T) {
		// mosquitto 2 answers CONNACK 5 (not authorized) to MQTT 3.1.1
		// clients it does not accept, with or without credentials.
		b := testbroker.Mosquitto(t, testbroker.WithConfig("allow_anonymous false"))
		opts, logs := options(t, b.URL(), newRecorder())
		start(t, opts)
		want := `level=ERROR msg="broker refused the connection: not authorized" broker=` + b.URL()
		eventually(t, wait, "refusal logged", func() bool { return strings.Contains(logs.String(), want) })
		if !strings.Contains(logs.String(), "connack_code=5") {
			t.Errorf("log has no connack_code=5:\n%s", logs)
		}
	})
	t.Run("mochi_bad_password", func(t *testing.T) {
		// mochi, too, answers a wrong password with CONNACK 5 to MQTT 3.1.1
		// clients (code 4, bad username or password, is MQTT 3.1.1's other
		// answer; see TestRefusalText).
		url := mochiWithAuth(t)
		rec := newRecorder()
		opts, logs := options(t, url, rec)
		opts.Username, opts.Password = "good", "wrong"
		c := start(t, opts)
		want := `level=ERROR msg="broker refused the connection: not authorized"`
		eventually(t, wait, "refusal logged", func() bool { return strings.Contains(logs.String(), want) })
		if c.Connected() || c.Ready() {
			t.Errorf("refused client: Connected %v Ready %v, want false false", c.Connected(), c.Ready())
		}
		if strings.Contains(logs.String(), "wrong") {
			t.Errorf("the password appears in the log:\n%s", logs)
		}
	})
}

// TestSubscribeRefused: a filter the broker refuses (SUBACK 0x80) is an
// error naming it, and keeps Ready false. (mosquitto 2.0.11 grants
// subscriptions its ACL denies and filters on delivery, so this uses a
// mochi broker with an ACL.)
func TestSubscribeRefused(t *testing.T) {
	url := mochiWithAuth(t)
	rec := newRecorder()
	opts, _ := options(t, url, rec)
	opts.Username, opts.Password = "good", "secret"
	c := start(t, opts)
	subscribe(t, c, "allowed/#")

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := c.Subscribe(ctx, "denied/x", "allowed/y")
	if err == nil || !strings.Contains(err.Error(), `"denied/x"`) || strings.Contains(err.Error(), `"allowed/y"`) {
		t.Fatalf("Subscribe(denied/x, allowed/y): %v, want an error naming \"denied/x\" only", err)
	}
	if c.Ready() {
		t.Errorf("Ready() = true with a refused filter, want false")
	}
	if err := c.Unsubscribe(ctx, "denied/x"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if !c.Ready() {
		t.Errorf("Ready() = false after removing the refused filter, want true")
	}
}

// TestShareGroup: two clients in one share group split the messages; each
// message reaches exactly one of them.
func TestShareGroup(t *testing.T) {
	const n = 40
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		var recs []*recorder
		for range 2 {
			rec := newRecorder()
			opts, _ := options(t, b.URL(), rec)
			opts.ShareGroup = "workers"
			c := start(t, opts)
			subscribe(t, c, "sg/#")
			if got := c.Filters(); !slices.Equal(got, []string{"sg/#"}) {
				t.Errorf("Filters() = %q, want the plain filter [sg/#]", got)
			}
			recs = append(recs, rec)
		}
		p := testbroker.NewPublisher(t, b.URL())
		for i := range n {
			p.Publish("sg/"+strconv.Itoa(i), []byte(strconv.Itoa(i)), 1, false)
		}
		seen := map[string]int{}
		eventually(t, wait, fmt.Sprintf("%d messages over both members", n), func() bool {
			for _, r := range recs {
				for {
					m, ok := r.tryNext(0)
					if !ok {
						break
					}
					seen[string(m.Payload)]++
				}
			}
			return len(seen) == n
		})
		for _, r := range recs {
			r.expectNone(t, 100*time.Millisecond)
		}
		for p, k := range seen {
			if k != 1 {
				t.Errorf("message %s delivered %d times to the group, want 1", p, k)
			}
		}
	})
}

// TestOnMessageOrder: OnMessage sees messages one at a time, in the order
// they were published on one connection.
func TestOnMessageOrder(t *testing.T) {
	const n = 500
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		var (
			mu      sync.Mutex
			got     []string
			inside  atomic.Int32
			overlap atomic.Bool
		)
		rec := newRecorder()
		opts, _ := options(t, b.URL(), rec)
		opts.OnMessage = func(m Message) {
			if inside.Add(1) > 1 {
				overlap.Store(true)
			}
			defer inside.Add(-1)
			mu.Lock()
			got = append(got, string(m.Payload))
			mu.Unlock()
			runtime.Gosched() // give a concurrent call the chance to show
		}
		c := start(t, opts)
		subscribe(t, c, "ord/#")
		p := testbroker.NewPublisher(t, b.URL())
		var waits []func() error
		for i := range n {
			waits = append(waits, p.PublishAsync("ord/"+strconv.Itoa(i%3), []byte(strconv.Itoa(i)), 1, false))
		}
		for _, w := range waits {
			if err := w(); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, wait, fmt.Sprintf("%d messages", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n
		})
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if got[i] != strconv.Itoa(i) {
				t.Fatalf("message %d: payload %s, want %d (order lost)", i, got[i], i)
			}
		}
		if overlap.Load() {
			t.Errorf("OnMessage ran concurrently with itself")
		}
	})
}

// TestPublishConnectionCut: when the publisher's connection drops with
// publishes in flight, the unacknowledged ones are sent again after the
// reconnect; every publish ends with done(nil) and reaches the broker at
// least once. A proxy cuts the connection so the broker keeps running.
func TestPublishConnectionCut(t *testing.T) {
	const n = 20000
	b := testbroker.Mosquitto(t, testbroker.WithConfig("max_queued_messages 0"))
	proxy := testbroker.NewProxy(t, b.Addr())
	sub := testbroker.Subscribe(t, b.URL(), "cut/#")
	opts, logs := options(t, proxy.URL(), newRecorder())
	opts.PublishQueue = n
	c := start(t, opts)
	eventually(t, wait, "Connected()", c.Connected)

	o := newOutcome(n)
	for i := range n {
		c.Publish(pub("cut/x", strconv.Itoa(i), 1, false), o.done)
	}
	eventually(t, wait, "2000 publishes acknowledged", func() bool { return c.Stats().Published >= 2000 })
	proxy.Cut()
	for i, err := range o.all(t, n, 60*time.Second) {
		if err != nil {
			t.Fatalf("publish %d: done(%v), want done(nil)", i, err)
		}
	}
	seen := make(map[string]bool, n)
	for len(seen) < n {
		m, ok := sub.TryNext(wait)
		if !ok {
			t.Fatalf("received %d distinct of %d messages, then nothing for %v", len(seen), n, wait)
		}
		seen[string(m.Payload)] = true
	}
	s := c.Stats()
	if !strings.Contains(logs.String(), "connection to broker lost") {
		t.Errorf("the cut was not noticed (no \"connection to broker lost\" in the log); Stats() = %+v", s)
	}
	t.Logf("after the cut: %+v", s)
}

// TestUnsubscribeWhileDisconnected: a filter removed while the connection
// is down is unsubscribed on reconnect when the broker kept the session
// (it would keep delivering otherwise).
func TestUnsubscribeWhileDisconnected(t *testing.T) {
	b := testbroker.Mosquitto(t)
	proxy := testbroker.NewProxy(t, b.Addr())
	rec := newRecorder()
	opts, _ := options(t, proxy.URL(), rec)
	c := start(t, opts)
	subscribe(t, c, "w/a", "w/b")

	proxy.Refuse(true)
	proxy.Cut()
	eventually(t, wait, "Ready() false after the cut", func() bool { return !c.Ready() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Unsubscribe(ctx, "w/a"); err != nil {
		t.Fatalf("Unsubscribe while disconnected: %v, want nil", err)
	}
	proxy.Refuse(false)
	eventually(t, reconnectWait, "Ready() after reconnecting", c.Ready)

	p := testbroker.NewPublisher(t, b.URL())
	p.Publish("w/a", []byte("removed"), 1, false)
	p.Publish("w/b", []byte("kept"), 1, false)
	rec.expect(t, "w/b", "kept")
	rec.expectNone(t, 200*time.Millisecond)
}
