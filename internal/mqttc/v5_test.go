package mqttc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// MQTT 5 against the fake broker: what the client sends, and what it does
// with each thing a broker may send. Clause numbers refer to MQTT 5.0.

// v5 sets Protocol "5" and then applies tweak.
func v5(tweak func(*Options)) func(*Options) {
	return func(o *Options) {
		o.Protocol = "5"
		if tweak != nil {
			tweak(o)
		}
	}
}

// rawPublish5 returns a QoS 0 MQTT 5 PUBLISH whose property block (with
// its length) is props, as given, for bad input.
func rawPublish5(topic string, props []byte, payload string) []byte {
	body := mqttwire.AppendString(nil, topic)
	body = append(body, props...)
	body = append(body, payload...)
	b := mqttwire.AppendRemainingLength([]byte{mqttwire.TypePublish << 4}, len(body))
	return append(b, body...)
}

// publish5 returns an MQTT 5 PUBLISH with props.
func publish5(t *testing.T, topic, payload string, qos byte, id uint16, props *mqttwire.Properties) []byte {
	t.Helper()
	b, err := mqttwire.AppendPublish5(nil, topic, []byte(payload), qos, false, false, id, props)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectDisconnect5 reads the client's DISCONNECT and checks its reason.
func expectDisconnect5(t *testing.T, fc *fakeConn, want mqttwire.ReasonCode) {
	t.Helper()
	p := fc.expectType(mqttwire.TypeDisconnect)
	var d mqttwire.Disconnect5
	if err := mqttwire.DecodeDisconnect5(p, &d); err != nil {
		t.Fatalf("the client's DISCONNECT: %v", err)
	}
	if d.Reason != want {
		t.Errorf("DISCONNECT %s (reason string %q), want %s", d.Reason, d.Properties.ReasonString, want)
	}
}

// lossLine returns the last "connection to broker lost" line of role.
func lossLine(logs *logBuffer, role string) string {
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "connection to broker lost") && strings.Contains(l, "connection="+role) {
			line = l
		}
	}
	return line
}

// TestConnect5: the MQTT 5 CONNECT of each connection: the subscriber's
// keeps its session as 3.1.1's persistent session does (Session Expiry
// Interval never, or Options.SessionExpiry), leaves what the broker may
// send unacknowledged to the broker (no Receive Maximum, as under 3.1.1:
// regression, mochi deadlocked with one), accepts topic aliases and
// carries the will without will properties; the publisher's session ends
// with its connection.
func TestConnect5(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tweak      func(*Options)
		wantExpiry uint32
		wantClean  bool
	}{
		{"default", nil, 0xFFFFFFFF, false},
		{"session expiry 1h", func(o *Options) { o.SessionExpiry = time.Hour }, 3600, false},
		{"session expiry 1.5s", func(o *Options) { o.SessionExpiry = 1500 * time.Millisecond }, 2, false},
		{"clean session", func(o *Options) { o.CleanSession = true }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker(t)
			opts, _ := options(t, b.URL(), newRecorder())
			v5(tc.tweak)(&opts)
			opts.Username, opts.Password = "user", "secret"
			statusOptions(&opts, "svc/status", 1)
			start(t, opts)
			sub, pub := b.next("subscriber"), b.next("publisher")
			if sub.version != mqttwire.Version5 || pub.version != mqttwire.Version5 {
				t.Fatalf("protocol versions %d and %d, want 5", sub.version, pub.version)
			}
			c := &sub.connect5
			p := &c.Properties
			if c.CleanStart != tc.wantClean || p.SessionExpiryInterval != tc.wantExpiry {
				t.Errorf("subscriber: clean start %v, session expiry %d, want %v, %d", c.CleanStart, p.SessionExpiryInterval, tc.wantClean, tc.wantExpiry)
			}
			// No Receive Maximum (65535, the broker's own limit): see v5.go.
			if p.Present.Has(mqttwire.PropReceiveMaximum) || p.TopicAliasMaximum != topicAliasMaximum {
				t.Errorf("subscriber: Receive Maximum %d (present %v), Topic Alias Maximum %d; want none and %d",
					p.ReceiveMaximum, p.Present.Has(mqttwire.PropReceiveMaximum), p.TopicAliasMaximum, topicAliasMaximum)
			}
			if p.Present.Has(mqttwire.PropAuthenticationMethod) {
				t.Error("subscriber asks for enhanced authentication")
			}
			if w := c.Will; w == nil || w.Topic != "svc/status" || string(w.Payload) != "offline" || w.QoS != 1 || !w.Retain || w.Properties.Present != 0 {
				t.Errorf("subscriber's will %+v, want svc/status=offline, QoS 1, retained, no properties", w)
			}
			if sub.user != "user" || sub.pass != "secret" {
				t.Errorf("subscriber: user %q password %q", sub.user, sub.pass)
			}
			pc := &pub.connect5
			if !pc.CleanStart || pc.Properties.Present.Has(mqttwire.PropSessionExpiryInterval) || pc.Will != nil {
				t.Errorf("publisher: clean start %v, properties %+v, will %v; want a clean start without session expiry or will", pc.CleanStart, pc.Properties, pc.Will)
			}
		})
	}
}

// TestAutoFallback: with Protocol auto, a broker that refuses MQTT 5 —
// with a 3.1.1 CONNACK return code 1, or by closing the connection — is
// spoken to in 3.1.1 from then on, also after a reconnect. With Protocol
// "5" the client does not fall back, and says why it cannot connect.
func TestAutoFallback(t *testing.T) {
	refuse := map[string]func(fc *fakeConn){
		"connack_code_1": func(fc *fakeConn) {
			fc.write([]byte{mqttwire.TypeConnack << 4, 2, 0, mqttwire.ConnackBadProtocolVersion})
		},
		"connection_closed": func(fc *fakeConn) { fc.nc.Close() },
		"connack_0x84": func(fc *fakeConn) {
			fc.connack5(&mqttwire.Connack5{Reason: mqttwire.ReasonUnsupportedProtocolVersion})
		},
	}
	for name, refusal := range refuse {
		t.Run(name, func(t *testing.T) {
			b := newFakeBroker(t)
			rec := newRecorder()
			opts, logs := options(t, b.URL(), rec)
			opts.Protocol = "auto"
			c := start(t, opts)
			for _, role := range []string{"subscriber", "publisher"} {
				fc := b.next(role)
				if fc.version != mqttwire.Version5 && role == "subscriber" {
					t.Fatalf("first CONNECT of version %d, want 5", fc.version)
				}
				if fc.version == mqttwire.Version5 {
					refusal(fc)
					fc = b.next(role)
				}
				if fc.version != mqttwire.Version311 {
					t.Fatalf("%s: CONNECT of version %d after the refusal, want 4 (3.1.1)", role, fc.version)
				}
				fc.connack(false, 0)
				if role == "subscriber" {
					// The connection drops: the reconnect stays at 3.1.1.
					fc.nc.Close()
					again := b.next(role)
					if again.version != mqttwire.Version311 {
						t.Fatalf("reconnect of version %d, want 4 (3.1.1)", again.version)
					}
					again.connack(false, 0)
				}
			}
			eventually(t, wait, "Connected()", c.Connected)
			if got := c.Protocol(); got != "3.1.1" {
				t.Errorf("Protocol() = %q, want 3.1.1", got)
			}
			if !strings.Contains(logs.String(), "the broker does not accept MQTT 5: using MQTT 3.1.1 from now on") ||
				!strings.Contains(logs.String(), `msg="connected to broker" broker=`+b.URL()) ||
				!strings.Contains(logs.String(), "protocol=3.1.1") {
				t.Errorf("log does not say the fallback or the version in use:\n%s", logs)
			}
		})
	}
	t.Run("protocol_5_does_not_fall_back", func(t *testing.T) {
		b := newFakeBroker(t)
		opts, logs := options(t, b.URL(), newRecorder())
		opts.Protocol = "5"
		start(t, opts)
		b.next("subscriber").write([]byte{mqttwire.TypeConnack << 4, 2, 0, mqttwire.ConnackBadProtocolVersion})
		want := `level=ERROR msg="broker refused the connection: 0x84 unsupported protocol version; it does not speak MQTT 5 (use protocol 3.1.1 or auto)"`
		eventually(t, wait, "refusal logged", hasLog(logs, want))
		if again := b.next("subscriber"); again.version != mqttwire.Version5 {
			t.Errorf("retry of version %d, want 5", again.version)
		}
	})
}

// TestConnackRefused5: an MQTT 5 refusal is reported with its reason code
// and reason string.
func TestConnackRefused5(t *testing.T) {
	b := newFakeBroker(t)
	opts, logs := options(t, b.URL(), newRecorder())
	errs := make(chan error, 4)
	v5(func(o *Options) {
		o.OnConnectError = func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
	})(&opts)
	start(t, opts)
	var ca mqttwire.Connack5
	ca.Reason = mqttwire.ReasonBadUsernameOrPassword
	ca.Properties.ReasonString = "token expired"
	b.next("subscriber").connack5(&ca)
	select {
	case err := <-errs:
		want := `connection refused: 0x86 bad user name or password (reason: "token expired")`
		if err.Error() != want {
			t.Errorf("OnConnectError(%q), want %q", err, want)
		}
	case <-time.After(wait):
		t.Fatal("OnConnectError not called")
	}
	want := `level=ERROR msg="broker refused the connection: 0x86 bad user name or password (reason: \"token expired\")" broker=` + b.URL()
	eventually(t, wait, "refusal logged", hasLog(logs, want))
	if !strings.Contains(logs.String(), "reason_code=0x86") {
		t.Errorf("log has no reason_code=0x86:\n%s", logs)
	}
}

// TestBadInput5: what breaks MQTT 5 in a packet from the broker ends the
// connection: the client sends DISCONNECT with the reason code, logs a
// line naming the packet and the property, and connects again. Never a
// panic.
func TestBadInput5(t *testing.T) {
	tests := []struct {
		name   string
		send   []byte
		reason mqttwire.ReasonCode
		want   string // in the "connection to broker lost" line
	}{
		{"property length beyond the packet", rawPublish5("a/b", []byte{50, 0x03, 0, 1, 'x'}, ""),
			mqttwire.ReasonMalformedPacket, "PUBLISH property length 50 is beyond"},
		{"oversized property length", rawPublish5("a/b", []byte{0xff, 0xff, 0xff, 0xff, 0x7f}, ""),
			mqttwire.ReasonMalformedPacket, "PUBLISH property length longer than four bytes"},
		{"malformed string property", rawPublish5("a/b", []byte{4, 0x03, 0, 9, 'x'}, ""),
			mqttwire.ReasonMalformedPacket, "PUBLISH property Content Type: 9 bytes"},
		{"duplicate unique property", rawPublish5("a/b", []byte{8, 0x03, 0, 1, 'x', 0x03, 0, 1, 'y'}, ""),
			mqttwire.ReasonProtocolError, "PUBLISH property Content Type more than once"},
		{"unknown property", rawPublish5("a/b", []byte{2, 0x7f, 0}, ""),
			mqttwire.ReasonMalformedPacket, "PUBLISH property identifier 0x7f is unknown"},
		{"property not for PUBLISH", rawPublish5("a/b", []byte{5, 0x11, 0, 0, 0, 1}, ""),
			mqttwire.ReasonMalformedPacket, "PUBLISH may not carry property Session Expiry Interval"},
		{"topic alias 0", rawPublish5("a/b", []byte{3, 0x23, 0, 0}, ""),
			mqttwire.ReasonTopicAliasInvalid, "PUBLISH property Topic Alias is 0"},
		{"topic alias over the maximum", rawPublish5("a/b", []byte{3, 0x23, 0, 101}, ""),
			mqttwire.ReasonTopicAliasInvalid, "PUBLISH property Topic Alias 101 is over the Topic Alias Maximum of 100"},
		{"unknown topic alias", rawPublish5("", []byte{3, 0x23, 0, 7}, ""),
			mqttwire.ReasonProtocolError, "PUBLISH property Topic Alias 7 without a topic name"},
		{"AUTH", []byte{mqttwire.TypeAuth << 4, 0},
			mqttwire.ReasonProtocolError, "AUTH from the broker, but the client did not ask for enhanced authentication"},
		{"SUBACK property not for SUBACK", []byte{mqttwire.TypeSuback << 4, 6, 0, 1, 2, 0x01, 1, 0},
			mqttwire.ReasonMalformedPacket, "SUBACK may not carry property Payload Format Indicator"},
		{"unexpected CONNACK", []byte{mqttwire.TypeConnack << 4, 3, 0, 0, 0},
			mqttwire.ReasonProtocolError, "unexpected CONNACK from the broker"},
		{"PUBLISH QoS 3", []byte{mqttwire.TypePublish<<4 | 3<<1, 4, 0, 1, 'a', 0},
			mqttwire.ReasonMalformedPacket, "PUBLISH with QoS 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBroker(t)
			rec := newRecorder()
			_, sub, _, logs := startFake(t, b, rec, v5(nil))
			sub.write(tt.send)
			expectDisconnect5(t, sub, tt.reason)
			if !sub.closed(wait) {
				t.Error("the client did not close the connection after its DISCONNECT")
			}
			eventually(t, wait, "the loss logged", hasLog(logs, "connection to broker lost"))
			line := lossLine(logs, "subscriber")
			if !strings.Contains(line, tt.want) || !strings.Contains(line, "sent DISCONNECT "+tt.reason.String()) {
				t.Errorf("loss logged as\n%s\nwant it to say %q and that DISCONNECT %s was sent", line, tt.want, tt.reason)
			}
			b.next("subscriber").connack(false, 0) // reconnects
			if m, ok := rec.tryNext(0); ok {
				t.Errorf("OnMessage got %s=%s from a bad packet", m.Topic, m.Payload)
			}
		})
	}
}

// TestBadConnack5: a CONNACK that breaks MQTT 5 — a Receive Maximum of 0
// (§3.2.2.3.3), a property twice, an unknown one — fails the attempt with
// a clear line; the client sends DISCONNECT and tries again.
func TestBadConnack5(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props []byte
		want  string
	}{
		{"receive maximum 0", []byte{3, 0x21, 0, 0}, "protocol error: CONNACK property Receive Maximum is 0"},
		{"property twice", []byte{4, 0x24, 0, 0x24, 1}, "protocol error: CONNACK property Maximum QoS more than once"},
		{"unknown property", []byte{2, 0x7e, 0}, "malformed packet: CONNACK property identifier 0x7e is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker(t)
			opts, logs := options(t, b.URL(), newRecorder())
			v5(nil)(&opts)
			start(t, opts)
			sub := b.next("subscriber")
			body := append([]byte{0, 0}, tc.props...)
			sub.write(append([]byte{mqttwire.TypeConnack << 4, byte(len(body))}, body...))
			p := sub.expectType(mqttwire.TypeDisconnect)
			var d mqttwire.Disconnect5
			_ = mqttwire.DecodeDisconnect5(p, &d)
			if d.Reason < 0x80 {
				t.Errorf("DISCONNECT %s, want a failure", d.Reason)
			}
			eventually(t, wait, "the failure logged", hasLog(logs, tc.want))
			if !strings.Contains(logs.String(), `msg="cannot connect to broker"`) {
				t.Errorf("log:\n%s", logs)
			}
			b.next("subscriber").connack(false, 0) // tries again
		})
	}
}

// TestReceiveMaximum5: the broker's Receive Maximum bounds the publishes
// in flight below PublishInFlight [MQTT-4.9.0-2].
func TestReceiveMaximum5(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	v5(nil)(&opts)
	c := start(t, opts)
	b.next("subscriber").connack(false, 0)
	pub := b.next("publisher")
	var ca mqttwire.Connack5
	ca.Properties.ReceiveMaximum = 2
	pub.connack5(&ca)
	eventually(t, wait, "Connected()", c.Connected)
	o := newOutcome(5)
	for range 5 {
		c.Publish(pub_("rm/x", 1), o.done)
	}
	var ids []uint16
	for range 2 {
		m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish))
		ids = append(ids, m.ID)
	}
	if p, err := pub.tryRead(200 * time.Millisecond); err == nil {
		t.Fatalf("got %s with 2 unacknowledged and a Receive Maximum of 2", mqttwire.TypeName(p.Type()))
	}
	if st := c.Stats(); st.InFlight != 2 {
		t.Errorf("Stats().InFlight = %d, want 2", st.InFlight)
	}
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, ids[0]))
	m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, ids[1]))
	pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, m.ID))
	for range 2 {
		m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish))
		pub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, m.ID))
	}
	for i, err := range o.all(t, 5, wait) {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
}

func decodePublish5(t *testing.T, p mqttwire.Packet) (mqttwire.Publish5, mqttwire.Properties) {
	t.Helper()
	var m mqttwire.Publish5
	if err := mqttwire.DecodePublish5(p, &m); err != nil {
		t.Fatal(err)
	}
	return m, m.Properties
}

// TestBrokerLimits5: what the broker's CONNACK rules out: a QoS above its
// Maximum QoS is lowered, for publishes and subscriptions [MQTT-3.2.2-11];
// a retained publish without Retain Available, and one over its Maximum
// Packet Size, fail alone, the connection stays.
func TestBrokerLimits5(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	v5(nil)(&opts)
	c := start(t, opts)
	var ca mqttwire.Connack5
	ca.Properties.Present = ca.Properties.Present.With(mqttwire.PropMaximumQoS).With(mqttwire.PropRetainAvailable)
	ca.Properties.MaximumQoS = 0
	ca.Properties.RetainAvailable = false
	ca.Properties.MaximumPacketSize = 100
	sub := b.next("subscriber")
	sub.connack5(&ca)
	pub := b.next("publisher")
	pub.connack5(&ca)
	eventually(t, wait, "Connected()", c.Connected)

	// Subscriptions at QoS 0.
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		errc <- c.Subscribe(ctx, "a/#")
	}()
	sp := sub.expectType(mqttwire.TypeSubscribe)
	var sm mqttwire.Subscribe5
	if err := mqttwire.DecodeSubscribe5(sp, &sm); err != nil {
		t.Fatal(err)
	}
	if got := sm.Subscriptions[0].QoS; got != 0 {
		t.Errorf("SUBSCRIBE at QoS %d with a Maximum QoS of 0, want 0", got)
	}
	sub.suback(sp, 0)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	o := newOutcome(1)
	c.Publish(pub_("lim/qos", 1), o.done)
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("QoS 1 publish lowered to QoS 0: %v", err)
	}
	if m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish)); m.QoS != 0 || string(m.Topic) != "lim/qos" {
		t.Errorf("sent %s at QoS %d, want lim/qos at QoS 0", m.Topic, m.QoS)
	}

	c.Publish(&actions.Publish{Topic: "lim/retained", Payload: []byte("x"), Retain: true}, o.done)
	if err := o.all(t, 1, wait)[0]; err == nil || err.Error() != "publish to lim/retained: the broker does not support retained messages (CONNACK Retain Available 0)" {
		t.Errorf("retained publish: %v, want the broker's refusal of retained messages", err)
	}
	c.Publish(&actions.Publish{Topic: "lim/big", Payload: make([]byte, 200), QoS: 1}, o.done)
	if err := o.all(t, 1, wait)[0]; err == nil || !strings.Contains(err.Error(), "publish to lim/big: PUBLISH of ") ||
		!strings.Contains(err.Error(), " bytes is over the broker's Maximum Packet Size of 100") {
		t.Errorf("big publish: %v, want it over the Maximum Packet Size", err)
	}
	c.Publish(pub_("lim/after", 1), o.done)
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("publish after the refused ones: %v", err)
	}
	if m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish)); string(m.Topic) != "lim/after" {
		t.Errorf("sent %s, want lim/after (nothing of the refused ones)", m.Topic)
	}
	if !c.Connected() {
		t.Error("refused publishes dropped the connection")
	}
}

// TestServerKeepAlive5: the broker's Server Keep Alive replaces the
// client's [MQTT-3.2.2-21].
func TestServerKeepAlive5(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	v5(func(o *Options) { o.KeepAlive = time.Minute })(&opts)
	start(t, opts)
	var ca mqttwire.Connack5
	ca.Properties.ServerKeepAlive = 1
	sub := b.next("subscriber")
	begin := time.Now()
	sub.connack5(&ca)
	b.next("publisher").connack(false, 0)
	_ = sub.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := sub.pr.Next()
	if err != nil || p.Type() != mqttwire.TypePingreq {
		t.Fatalf("got %v (%v), want PINGREQ within the Server Keep Alive of 1s", p, err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("PINGREQ after %v, want within about 1s", took)
	}
}

// TestAckReasons5: a failure reason code in PUBACK, PUBREC or PUBCOMP is
// the publish's error, with its reason string; PUBREC's ends the exchange
// without PUBREL [MQTT-4.3.3-4]; 0x10 (no matching subscribers) is a
// success.
func TestAckReasons5(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), v5(nil))
	ack := func(typ byte, id uint16, reason mqttwire.ReasonCode, why string) []byte {
		h := typ << 4
		if typ == mqttwire.TypePubrel {
			h = mqttwire.HeaderPubrel
		}
		var props *mqttwire.Properties
		if why != "" {
			props = &mqttwire.Properties{ReasonString: why}
		}
		out, err := mqttwire.AppendAck5(nil, h, id, reason, props)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	o := newOutcome(1)
	c.Publish(pub_("ack/denied", 1), o.done)
	m, _ := decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	pub.write(ack(mqttwire.TypePuback, m.ID, mqttwire.ReasonNotAuthorized, "acl"))
	if err := o.all(t, 1, wait)[0]; err == nil || err.Error() != `publish to ack/denied: PUBACK refused: 0x87 not authorized (reason: "acl")` {
		t.Errorf("refused publish: %v", err)
	} else {
		var re *mqttwire.ReasonError
		if !errors.As(err, &re) || re.Reason != mqttwire.ReasonNotAuthorized {
			t.Errorf("error %v is not a *mqttwire.ReasonError with 0x87", err)
		}
	}

	c.Publish(pub_("ack/nobody", 1), o.done)
	m, _ = decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	pub.write(ack(mqttwire.TypePuback, m.ID, mqttwire.ReasonNoMatchingSubscribers, ""))
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("publish with no matching subscribers: %v, want success", err)
	}

	c.Publish(pub_("ack/q2", 2), o.done)
	m, _ = decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	pub.write(ack(mqttwire.TypePubrec, m.ID, mqttwire.ReasonQuotaExceeded, ""))
	if err := o.all(t, 1, wait)[0]; err == nil || err.Error() != "publish to ack/q2: PUBREC refused: 0x97 quota exceeded" {
		t.Errorf("QoS 2 publish refused by PUBREC: %v", err)
	}
	if p, err := pub.tryRead(200 * time.Millisecond); err == nil {
		t.Errorf("got %s after a refusing PUBREC, want nothing", mqttwire.TypeName(p.Type()))
	}

	c.Publish(pub_("ack/q2ok", 2), o.done)
	m, _ = decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	pub.write(ack(mqttwire.TypePubrec, m.ID, 0, ""))
	rel := pub.expectType(mqttwire.TypePubrel)
	if id, _ := mqttwire.DecodeID(rel); id != m.ID {
		t.Errorf("PUBREL for %d, want %d", id, m.ID)
	}
	pub.write(ack(mqttwire.TypePubcomp, m.ID, 0, ""))
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Errorf("QoS 2 publish: %v", err)
	}
}

// TestSubackReasons5: SUBACK reason codes from 0x80 refuse their filters,
// named with the code; the reason string is in the error.
func TestSubackReasons5(t *testing.T) {
	b := newFakeBroker(t)
	c, sub, _, _ := startFake(t, b, newRecorder(), v5(nil))
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		errc <- c.Subscribe(ctx, "ok/#", "no/#", "bad/#")
	}()
	// One SUBSCRIBE per filter, each with its subscription identifier.
	for i, code := range []mqttwire.ReasonCode{1, mqttwire.ReasonNotAuthorized, mqttwire.ReasonTopicFilterInvalid} {
		p := sub.expectType(mqttwire.TypeSubscribe)
		var m mqttwire.Subscribe5
		if err := mqttwire.DecodeSubscribe5(p, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Subscriptions) != 1 || !slices.Equal(m.Properties.SubscriptionIdentifiers, []uint32{uint32(i + 1)}) {
			t.Errorf("SUBSCRIBE %d: %d filters, subscription identifiers %v; want 1 filter, identifier %d", i, len(m.Subscriptions), m.Properties.SubscriptionIdentifiers, i+1)
		}
		var props *mqttwire.Properties
		if code == mqttwire.ReasonNotAuthorized {
			props = &mqttwire.Properties{ReasonString: "see the ACL"}
		}
		out, err := mqttwire.AppendSuback5(nil, m.ID, []mqttwire.ReasonCode{code}, props)
		if err != nil {
			t.Fatal(err)
		}
		sub.write(out)
	}
	want := `subscribe "no/#" (SUBACK 0x87 not authorized), "bad/#" (SUBACK 0x8f topic filter invalid): refused by the broker (reason: "see the ACL")`
	if err := <-errc; err == nil || err.Error() != want {
		t.Errorf("Subscribe: %v\nwant %s", err, want)
	}
	if c.Ready() {
		t.Error("Ready() with refused filters")
	}
}

// TestBrokerDisconnect5: a DISCONNECT from the broker is logged with its
// reason code, reason string and server reference; the client answers
// with no DISCONNECT of its own and connects again.
func TestBrokerDisconnect5(t *testing.T) {
	b := newFakeBroker(t)
	_, sub, _, logs := startFake(t, b, newRecorder(), v5(nil))
	out, err := mqttwire.AppendDisconnect5(nil, mqttwire.ReasonUseAnotherServer,
		&mqttwire.Properties{ReasonString: "maintenance", ServerReference: "other:1883"})
	if err != nil {
		t.Fatal(err)
	}
	sub.write(out)
	if p, err := sub.tryRead(wait); err == nil {
		t.Errorf("got %s after the broker's DISCONNECT, want the connection closed", mqttwire.TypeName(p.Type()))
	}
	eventually(t, wait, "the loss logged", hasLog(logs, "connection to broker lost"))
	want := `the broker sent DISCONNECT: 0x9c use another server (reason: \"maintenance\", server reference: \"other:1883\")`
	if line := lossLine(logs, "subscriber"); !strings.Contains(line, want) {
		t.Errorf("loss logged as\n%s\nwant it to contain %s", line, want)
	}
	b.next("subscriber").connack(false, 0)
}

// TestTopicAlias5: a PUBLISH with a topic name and an alias sets the
// alias; one with the alias alone is delivered under that topic. Aliases
// are per connection.
func TestTopicAlias5(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, v5(nil))
	sub.write(publish5(t, "home/hall/temp", "1", 0, 0, &mqttwire.Properties{TopicAlias: 5}))
	sub.write(publish5(t, "", "2", 1, 9, &mqttwire.Properties{TopicAlias: 5}))
	sub.write(publish5(t, "home/kitchen/temp", "3", 0, 0, &mqttwire.Properties{TopicAlias: 5})) // remapped
	sub.write(publish5(t, "", "4", 0, 0, &mqttwire.Properties{TopicAlias: 5}))
	rec.expect(t, "home/hall/temp", "1")
	rec.expect(t, "home/hall/temp", "2")
	rec.expect(t, "home/kitchen/temp", "3")
	rec.expect(t, "home/kitchen/temp", "4")
	if id, _ := mqttwire.DecodeID(sub.expectType(mqttwire.TypePuback)); id != 9 {
		t.Errorf("PUBACK for %d, want 9", id)
	}
}

// TestPropertiesIn5: Message.Properties holds a PUBLISH's application
// properties — user properties in order with repeats, content type,
// response topic, correlation data, message expiry, payload format — and
// is nil without them.
func TestPropertiesIn5(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, v5(nil))
	props := &mqttwire.Properties{
		PayloadFormatIndicator: 1,
		MessageExpiryInterval:  30,
		ContentType:            "application/json",
		ResponseTopic:          "reply/1",
		CorrelationData:        []byte{0, 1, 2},
		UserProperties:         []mqttwire.StringPair{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}},
	}
	sub.write(publish5(t, "in/props", "x", 1, 1, props))
	sub.write(publish5(t, "in/none", "y", 0, 0, nil))
	sub.write(publish5(t, "in/zero", "z", 0, 0, &mqttwire.Properties{Present: mqttwire.PropSet(0).With(mqttwire.PropMessageExpiryInterval).With(mqttwire.PropPayloadFormatIndicator)}))
	m := rec.expect(t, "in/props", "x")
	p := m.Properties
	if p == nil {
		t.Fatal("Properties nil")
	}
	wantUser := []actions.UserProperty{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}, {Name: "a", Value: "3"}}
	if !slices.Equal(p.User, wantUser) || p.ContentType != "application/json" || p.ResponseTopic != "reply/1" ||
		string(p.CorrelationData) != "\x00\x01\x02" || p.MessageExpiry == nil || *p.MessageExpiry != 30 ||
		p.PayloadFormat == nil || *p.PayloadFormat != 1 {
		t.Errorf("Properties %+v", p)
	}
	if m := rec.expect(t, "in/none", "y"); m.Properties != nil {
		t.Errorf("PUBLISH without properties: Properties %+v, want nil", m.Properties)
	}
	m = rec.expect(t, "in/zero", "z")
	if p := m.Properties; p == nil || p.MessageExpiry == nil || *p.MessageExpiry != 0 || p.PayloadFormat == nil || *p.PayloadFormat != 0 {
		t.Errorf("zero message expiry and payload format: Properties %+v, want both set to 0", p)
	}
}

// TestPropertiesOut5: a publish's properties go out under MQTT 5.
func TestPropertiesOut5(t *testing.T) {
	b := newFakeBroker(t)
	c, _, pub, _ := startFake(t, b, newRecorder(), v5(nil))
	expiry, format := uint32(60), byte(1)
	o := newOutcome(1)
	c.Publish(&actions.Publish{Topic: "out/props", Payload: []byte("x"), Properties: &actions.Properties{
		User:            []actions.UserProperty{{Name: "k", Value: "v"}, {Name: "k", Value: "w"}},
		ContentType:     "text/plain",
		ResponseTopic:   "reply/2",
		CorrelationData: []byte("c-1"),
		MessageExpiry:   &expiry,
		PayloadFormat:   &format,
	}}, o.done)
	if err := o.all(t, 1, wait)[0]; err != nil {
		t.Fatal(err)
	}
	_, p := decodePublish5(t, pub.expectType(mqttwire.TypePublish))
	if !slices.Equal(p.UserProperties, []mqttwire.StringPair{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}}) || p.ContentType != "text/plain" ||
		p.ResponseTopic != "reply/2" || string(p.CorrelationData) != "c-1" || p.MessageExpiryInterval != 60 ||
		!p.Present.Has(mqttwire.PropPayloadFormatIndicator) || p.PayloadFormatIndicator != 1 {
		t.Errorf("sent properties %+v", p)
	}
	// Properties MQTT cannot carry fail the publish alone.
	c.Publish(&actions.Publish{Topic: "out/bad", Properties: &actions.Properties{ContentType: "\xff"}}, o.done)
	if err := o.all(t, 1, wait)[0]; err == nil || !strings.Contains(err.Error(), "publish to out/bad: PUBLISH property Content Type: ill-formed UTF-8") {
		t.Errorf("publish with a bad content type: %v", err)
	}
}

// TestPropertiesDropped: over MQTT 3.1.1 a publish's properties are left
// out; the client logs it and calls OnPropertiesDropped once per
// connection.
func TestPropertiesDropped(t *testing.T) {
	b := newFakeBroker(t)
	var dropped atomic.Int32
	c, _, pub, logs := startFake(t, b, newRecorder(), func(o *Options) {
		o.OnPropertiesDropped = func() { dropped.Add(1) }
	})
	withProps := func(topic string) *actions.Publish {
		return &actions.Publish{Topic: topic, Payload: []byte("x"), Properties: &actions.Properties{ContentType: "text/plain"}}
	}
	o := newOutcome(4)
	c.Publish(pub_("drop/none", 0), o.done)
	c.Publish(&actions.Publish{Topic: "drop/empty", Properties: &actions.Properties{}}, o.done)
	if n := dropped.Load(); n != 0 {
		t.Errorf("OnPropertiesDropped called %d times for publishes without properties", n)
	}
	c.Publish(withProps("drop/1"), o.done)
	c.Publish(withProps("drop/2"), o.done)
	for _, err := range o.all(t, 4, wait) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := dropped.Load(); n != 1 {
		t.Errorf("OnPropertiesDropped called %d times on one connection, want 1", n)
	}
	if n := logs.count("properties dropped: the broker speaks MQTT 3.1.1"); n != 1 {
		t.Errorf("%d log lines about dropped properties, want 1:\n%s", n, logs)
	}
	if got := c.Protocol(); got != "3.1.1" {
		t.Errorf("Protocol() = %q", got)
	}
	// A new connection reports again.
	pub.nc.Close()
	b.next("publisher").connack(false, 0)
	eventually(t, wait, "publisher up", c.pub.isUp)
	c.Publish(withProps("drop/3"), o.done)
	o.all(t, 1, wait)
	if n := dropped.Load(); n != 2 {
		t.Errorf("OnPropertiesDropped called %d times over two connections, want 2", n)
	}
}

// TestInboundQoS2_5: QoS 2 delivery under MQTT 5: PUBREC, PUBREL, PUBCOMP;
// a PUBREL for an unknown id gets PUBCOMP 0x92 (§3.7.2.1).
func TestInboundQoS2_5(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, v5(nil))
	sub.write(publish5(t, "q2/a", "x", 2, 7, nil))
	if id, _ := mqttwire.DecodeID(sub.expectType(mqttwire.TypePubrec)); id != 7 {
		t.Errorf("PUBREC for %d, want 7", id)
	}
	rec.expect(t, "q2/a", "x")
	sub.write(publish5(t, "q2/a", "x", 2, 7, nil)) // a DUP: acknowledged, not delivered
	sub.expectType(mqttwire.TypePubrec)
	rec.expectNone(t, 100*time.Millisecond)
	for _, tc := range []struct {
		id   uint16
		want mqttwire.ReasonCode
	}{{7, 0}, {8, mqttwire.ReasonPacketIdentifierNotFound}} {
		sub.write([]byte{mqttwire.HeaderPubrel, 2, 0, byte(tc.id)})
		var a mqttwire.Ack5
		if err := mqttwire.DecodeAck5(sub.expectType(mqttwire.TypePubcomp), &a); err != nil {
			t.Fatal(err)
		}
		if a.ID != tc.id || a.Reason != tc.want {
			t.Errorf("PUBCOMP for %d with %s, want %d with %s", a.ID, a.Reason, tc.id, tc.want)
		}
	}
}

// TestAssignedClientID5: a client that sends an empty client identifier
// takes the one the broker assigns [MQTT-3.2.2-16], and uses it to
// reconnect to its session.
func TestAssignedClientID5(t *testing.T) {
	b := newFakeBroker(t)
	opts, logs := options(t, b.URL(), newRecorder())
	v5(nil)(&opts)
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.pub.id = "assigned-pub" // the fake broker tells the connections apart by id
	c.sub.id = ""
	c.Start()
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	sub := b.next("subscriber")
	if sub.clientID != "" {
		t.Fatalf("client id %q, want empty", sub.clientID)
	}
	var ca mqttwire.Connack5
	ca.Properties.AssignedClientIdentifier = "auto-42"
	sub.connack5(&ca)
	b.next("publisher").connack(false, 0)
	eventually(t, wait, "Connected()", c.Connected)
	sub.nc.Close()
	if again := b.next("subscriber"); again.clientID != "auto-42" {
		t.Errorf("reconnect with client id %q, want the assigned auto-42", again.clientID)
	}
	if !strings.Contains(logs.String(), "assigned_client_id=auto-42") {
		t.Errorf("log does not show the assigned id:\n%s", logs)
	}
}

// TestCopiesOfOneMessage5: a broker that sends a message once per
// matching subscription marks each copy with its subscription's
// identifier; the client delivers one and acknowledges all. The same
// message published again is delivered again.
func TestCopiesOfOneMessage5(t *testing.T) {
	b := newFakeBroker(t)
	rec := newRecorder()
	_, sub, _, _ := startFake(t, b, rec, v5(nil))
	ids := func(ids ...uint32) *mqttwire.Properties {
		return &mqttwire.Properties{SubscriptionIdentifiers: ids}
	}
	var pid uint16
	send := func(topic, payload string, qos byte, props *mqttwire.Properties) {
		t.Helper()
		pid++
		sub.write(publish5(t, topic, payload, qos, pid, props))
	}
	send("c/a", "1", 1, ids(1)) // matches subscriptions 1 and 2: two copies
	send("c/a", "1", 1, ids(2))
	send("c/a", "1", 1, ids(1)) // published again
	send("c/a", "1", 1, ids(2))
	send("c/a", "1", 1, ids(1)) // again, matching one subscription only
	send("c/a", "1", 1, ids(1))
	send("c/a", "2", 1, ids(2))    // another payload
	send("c/b", "2", 1, ids(3))    // another topic
	send("c/b", "2", 0, ids(4))    // another QoS
	send("c/d", "4", 0, ids(1, 2)) // one copy for two subscriptions (mochi)
	send("c/d", "4", 0, nil)       // no identifiers: not taken for a copy
	send("c/d", "4", 0, nil)
	want := []string{"c/a=1", "c/a=1", "c/a=1", "c/a=1", "c/a=2", "c/b=2", "c/b=2", "c/d=4", "c/d=4", "c/d=4"}
	var got []string
	for range want {
		m := rec.next(t, wait)
		got = append(got, m.Topic+"="+string(m.Payload))
	}
	rec.expectNone(t, 100*time.Millisecond)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
	acked := map[uint16]bool{}
	for len(acked) < 8 {
		id, _ := mqttwire.DecodeID(sub.expectType(mqttwire.TypePuback))
		acked[id] = true
	}
}
