package mqttc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// MQTT 5 against mosquitto and the embedded broker (mochi).

// brokers5 runs fn against mosquitto and the embedded broker under MQTT 5
// (in subtests "mosquitto/v5" and "embedded/v5", see protocolFor).
func brokers5(t *testing.T, fn func(t *testing.T, b *testbroker.Broker)) {
	run := func(t *testing.T, b *testbroker.Broker) {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("broker log:\n%s", b.Log())
			}
		})
		fn(t, b)
	}
	t.Run("mosquitto", func(t *testing.T) {
		t.Run("v5", func(t *testing.T) { run(t, testbroker.Mosquitto(t)) })
	})
	t.Run("embedded", func(t *testing.T) {
		t.Run("v5", func(t *testing.T) { run(t, testbroker.Embedded(t)) })
	})
}

// TestProperties5: a publish's properties reach a subscriber through the
// broker as they were sent: user properties in order, repeats kept,
// content type, response topic, correlation data, payload format. Over
// MQTT 3.1.1 the subscriber gets none.
func TestProperties5(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		rec := newRecorder()
		opts, _ := options(t, b.URL(), rec)
		var dropped atomic.Int32
		opts.OnPropertiesDropped = func() { dropped.Add(1) }
		c := start(t, opts)
		subscribe(t, c, "props/#")
		format := byte(1)
		sent := &actions.Properties{
			User:            []actions.UserProperty{{Name: "site", Value: "a"}, {Name: "unit", Value: "°C"}, {Name: "site", Value: "b"}},
			ContentType:     "application/json",
			ResponseTopic:   "props/reply",
			CorrelationData: []byte{0xde, 0xad, 0, 1},
			PayloadFormat:   &format,
		}
		o := newOutcome(1)
		c.Publish(&actions.Publish{Topic: "props/x", Payload: []byte(`{"v":1}`), QoS: 1, Properties: sent}, o.done)
		if err := o.all(t, 1, wait)[0]; err != nil {
			t.Fatal(err)
		}
		m := rec.expect(t, "props/x", `{"v":1}`)
		if protocolFor(t) != "5" {
			if m.Properties != nil {
				t.Errorf("over MQTT 3.1.1: Properties %+v, want nil", m.Properties)
			}
			if dropped.Load() != 1 {
				t.Errorf("OnPropertiesDropped called %d times, want 1", dropped.Load())
			}
			return
		}
		p := m.Properties
		if p == nil {
			t.Fatal("Properties nil")
		}
		if !slices.Equal(p.User, sent.User) || p.ContentType != sent.ContentType || p.ResponseTopic != sent.ResponseTopic ||
			!bytes.Equal(p.CorrelationData, sent.CorrelationData) || p.PayloadFormat == nil || *p.PayloadFormat != 1 {
			t.Errorf("received properties %+v, want %+v", p, sent)
		}
		if dropped.Load() != 0 {
			t.Errorf("OnPropertiesDropped called over MQTT 5")
		}
	})
}

// TestRequestResponse5: a request with a response topic and correlation
// data is answered on that topic with the same correlation data, as a
// rule answers one (docs/mqtt5.md).
func TestRequestResponse5(t *testing.T) {
	brokers5(t, func(t *testing.T, b *testbroker.Broker) {
		var responder *Client
		ropts, _ := options(t, b.URL(), newRecorder())
		ropts.OnMessage = func(m Message) {
			if m.Properties == nil || m.Properties.ResponseTopic == "" {
				return
			}
			responder.Publish(&actions.Publish{
				Topic:   m.Properties.ResponseTopic,
				Payload: append([]byte("re: "), m.Payload...),
				QoS:     1,
				Properties: &actions.Properties{
					CorrelationData: m.Properties.CorrelationData,
					User:            []actions.UserProperty{{Name: "answered-by", Value: "responder"}},
				},
			}, func(error) {})
		}
		responder = start(t, ropts)
		subscribe(t, responder, "svc/request")

		rec := newRecorder()
		qopts, _ := options(t, b.URL(), rec)
		requester := start(t, qopts)
		subscribe(t, requester, "svc/reply/me")
		for _, corr := range []string{"req-1", "req-2"} {
			requester.Publish(&actions.Publish{Topic: "svc/request", Payload: []byte(corr), QoS: 1,
				Properties: &actions.Properties{ResponseTopic: "svc/reply/me", CorrelationData: []byte(corr)}}, func(error) {})
			m := rec.expect(t, "svc/reply/me", "re: "+corr)
			if m.Properties == nil || string(m.Properties.CorrelationData) != corr ||
				!slices.Equal(m.Properties.User, []actions.UserProperty{{Name: "answered-by", Value: "responder"}}) {
				t.Errorf("response properties %+v, want correlation data %q and the responder's user property", m.Properties, corr)
			}
		}
	})
}

// TestMessageExpiry5: a message's expiry interval goes to the broker,
// which passes on what is left of it [MQTT-3.3.2-6]: a retained message
// with 60 s read 1.5 s later has less.
func TestMessageExpiry5(t *testing.T) {
	brokers5(t, func(t *testing.T, b *testbroker.Broker) {
		opts, _ := options(t, b.URL(), newRecorder())
		c := start(t, opts)
		expiry := uint32(60)
		o := newOutcome(1)
		c.Publish(&actions.Publish{Topic: "exp/x", Payload: []byte("soon gone"), QoS: 1, Retain: true,
			Properties: &actions.Properties{MessageExpiry: &expiry}}, o.done)
		if err := o.all(t, 1, wait)[0]; err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // the message waits in the broker: what is measured
		rec := newRecorder()
		ropts, _ := options(t, b.URL(), rec)
		r := start(t, ropts)
		subscribe(t, r, "exp/#")
		m := rec.expect(t, "exp/x", "soon gone")
		if m.Properties == nil || m.Properties.MessageExpiry == nil {
			t.Fatalf("retained message without a message expiry: %+v", m.Properties)
		}
		if got := *m.Properties.MessageExpiry; got >= 60 || got < 50 {
			t.Errorf("message expiry %d s after 1.5 s in the broker, want what is left of 60 s (50..59)", got)
		}
	})
}

// TestAuto: with the default protocol, MQTT 5 with brokers that speak it.
func TestAuto(t *testing.T) {
	for name, b := range map[string]func(testing.TB) *testbroker.Broker{
		"mosquitto": func(t testing.TB) *testbroker.Broker { return testbroker.Mosquitto(t) },
		"embedded":  testbroker.Embedded,
	} {
		t.Run(name, func(t *testing.T) {
			b := b(t)
			rec := newRecorder()
			opts, logs := options(t, b.URL(), rec)
			opts.Protocol = ""
			c := start(t, opts)
			subscribe(t, c, "auto/#")
			testbroker.Publish(t, b.URL(), "auto/x", []byte("1"), 1, false)
			rec.expect(t, "auto/x", "1")
			if got := c.Protocol(); got != "5" {
				t.Errorf("Protocol() = %q, want 5", got)
			}
			if n := logs.count("protocol=5"); n != 2 {
				t.Errorf("%d connect lines with protocol=5, want 2:\n%s", n, logs)
			}
		})
	}
}

// refuseV5 is a mochi hook that drops MQTT 5 connections before CONNACK,
// as a broker that does not speak MQTT 5 may.
type refuseV5 struct {
	mochi.HookBase
	refused atomic.Int32
}

func (h *refuseV5) ID() string { return "refuse-v5" }

func (h *refuseV5) Provides(b byte) bool { return b == mochi.OnConnect }

func (h *refuseV5) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if pk.ProtocolVersion == 5 {
		h.refused.Add(1)
		return errors.New("MQTT 5 refused by the test")
	}
	return nil
}

// TestAutoFallbackMochi: a real broker that closes MQTT 5 connections
// without a CONNACK is spoken to in MQTT 3.1.1.
func TestAutoFallbackMochi(t *testing.T) {
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	hook := new(refuseV5)
	for _, h := range []mochi.Hook{new(auth.AllowHook), hook} {
		if err := srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url := "tcp://" + l.Address()

	rec := newRecorder()
	opts, logs := options(t, url, rec)
	opts.Protocol = "auto"
	c := start(t, opts)
	subscribe(t, c, "fb/#")
	testbroker.Publish(t, url, "fb/x", []byte("over 3.1.1"), 1, false)
	rec.expect(t, "fb/x", "over 3.1.1")
	if got := c.Protocol(); got != "3.1.1" {
		t.Errorf("Protocol() = %q, want 3.1.1", got)
	}
	if n := hook.refused.Load(); n < 1 || n > 2 {
		t.Errorf("%d MQTT 5 connections refused, want 1 or 2 (one per connection at most)", n)
	}
	if !strings.Contains(logs.String(), "the broker does not accept MQTT 5: using MQTT 3.1.1 from now on") {
		t.Errorf("log:\n%s", logs)
	}
}

// TestRefusals5: what a real broker refuses, in its words: a connection
// with a bad password, a subscription and a publish its ACL denies.
func TestRefusals5(t *testing.T) {
	url := mochiWithAuth(t)
	t.Run("bad password", func(t *testing.T) {
		opts, logs := options(t, url, newRecorder())
		opts.Protocol = "5"
		opts.Username, opts.Password = "good", "wrong"
		start(t, opts)
		want := `level=ERROR msg="broker refused the connection: 0x86 bad user name or password (reason: \"bad username or password\")"`
		eventually(t, wait, "refusal logged", hasLog(logs, want))
		if strings.Contains(logs.String(), "wrong") {
			t.Errorf("the password appears in the log:\n%s", logs)
		}
	})
	t.Run("ACL", func(t *testing.T) {
		opts, _ := options(t, url, newRecorder())
		opts.Protocol = "5"
		opts.Username, opts.Password = "good", "secret"
		c := start(t, opts)
		subscribe(t, c, "allowed/#")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := c.Subscribe(ctx, "denied/x", "allowed/y")
		if want := `subscribe "denied/x" (SUBACK 0x87 not authorized): refused by the broker`; err == nil || err.Error() != want {
			t.Errorf("Subscribe: %v, want %s", err, want)
		}
		o := newOutcome(1)
		c.Publish(pub("denied/z", "x", 1, false), o.done)
		if err := o.all(t, 1, wait)[0]; err == nil || err.Error() != `publish to denied/z: PUBACK refused: 0x87 not authorized (reason: "not authorized")` {
			t.Errorf("publish to a denied topic: %v", err)
		}
		if !c.Connected() {
			t.Error("a refused publish dropped the connection")
		}
	})
}
