package mqttc

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// BenchmarkPublishQoS1 measures Publish at QoS 1 against a broker that
// acknowledges everything: the cost on the caller's side and the
// allocations per publish (none: items are pooled, packets appended to
// the session's buffer).
func BenchmarkPublishQoS1(b *testing.B) { benchPublish(b, "3.1.1") }

// BenchmarkPublishQoS1V5 is BenchmarkPublishQoS1 over MQTT 5 (a publish
// without properties).
func BenchmarkPublishQoS1V5(b *testing.B) { benchPublish(b, "5") }

func benchPublish(b *testing.B, protocol string) {
	fb := newFakeBroker(b)
	opts := Options{Broker: fb.URL(), Protocol: protocol, ClientID: "bench", Logger: slog.New(slog.DiscardHandler), PublishBackpressure: time.Minute}
	c, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	c.Start()
	defer c.Close(b.Context())
	fb.next("subscriber").connack(false, 0)
	pub := fb.next("publisher")
	pub.connack(false, 0)
	go func() { // acknowledges every PUBLISH until the connection closes
		var out []byte
		for {
			p, err := pub.pr.Next()
			if err != nil {
				return
			}
			if p.Type() != mqttwire.TypePublish {
				continue
			}
			m, _ := mqttwire.DecodePublish(p)
			out = mqttwire.AppendAck(out, mqttwire.TypePuback<<4, m.ID)
			if pub.pr.Complete() {
				continue // acknowledge once what was read is handled
			}
			if _, err := pub.nc.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}()
	for !c.pub.isUp() {
		time.Sleep(time.Millisecond)
	}
	p := &actions.Publish{Topic: "alerts/123/temperature", Payload: []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), QoS: 1}
	var done atomic.Int64
	cb := func(error) { done.Add(1) }
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c.Publish(p, cb)
		n++
	}
	for done.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkReceiveQoS1 measures the subscriber's path for one QoS 1
// message: read, decode, OnMessage, PUBACK, against a broker that sends
// flat out in batches.
func BenchmarkReceiveQoS1(b *testing.B) { benchReceive(b, "3.1.1") }

// BenchmarkReceiveQoS1V5 is BenchmarkReceiveQoS1 over MQTT 5 (messages
// without properties).
func BenchmarkReceiveQoS1V5(b *testing.B) { benchReceive(b, "5") }

// benchReceive runs the receive benchmark in protocol.
func benchReceive(b *testing.B, protocol string) {
	fb := newFakeBroker(b)
	var got atomic.Int64
	opts := Options{Broker: fb.URL(), Protocol: protocol, ClientID: "bench", Logger: slog.New(slog.DiscardHandler),
		OnMessage: func(Message) { got.Add(1) }}
	c, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	c.Start()
	defer c.Close(b.Context())
	sub := fb.next("subscriber")
	sub.connack(false, 0)
	fb.next("publisher").connack(false, 0)
	for !c.sub.isUp() {
		time.Sleep(time.Millisecond)
	}
	go func() { // reads the PUBACKs until the connection closes
		for {
			if _, err := sub.pr.Next(); err != nil {
				return
			}
		}
	}()
	const batch = 256
	var out []byte
	for i := range batch {
		out = append(out, sub.publish("sensors/123/temperature", []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), 1, uint16(i+1))...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(batch, b.N-sent)
		end := len(out) / batch * n
		if _, err := sub.nc.Write(out[:end]); err != nil {
			b.Fatal(err)
		}
		sent += n
		for got.Load() < int64(sent)-batch*4 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	for got.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
}

// benchSession returns a Client and a session on a connection nothing
// reads, for benchmarks of what the reader does with one packet.
func benchSession(b *testing.B, v5 bool) (*Client, *session) {
	c, err := New(Options{Broker: "tcp://127.0.0.1:1", OnMessage: func(Message) {}})
	if err != nil {
		b.Fatal(err)
	}
	nc, peer := net.Pipe()
	b.Cleanup(func() { nc.Close(); peer.Close() })
	s := newSession(nc, sessionConfig{keepAlive: time.Minute, pingTimeout: time.Second, writeTimeout: time.Second, tick: time.Second})
	if v5 {
		s.setV5(&mqttwire.Properties{}, topicAliasMaximum, nil)
	}
	return c, s
}

// BenchmarkHandlePublish measures the subscriber's work for one QoS 1
// PUBLISH that has been read: decode, OnMessage (empty), PUBACK into the
// write buffer. No I/O: CPU per message, 3.1.1 against 5.
func BenchmarkHandlePublish(b *testing.B) {
	payload := []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`)
	for _, tc := range []struct {
		name  string
		v5    bool
		props *mqttwire.Properties
	}{
		{"3.1.1", false, nil},
		{"5", true, nil},
		{"5_subscription_id", true, &mqttwire.Properties{SubscriptionIdentifiers: []uint32{3}}}, // as from mosquitto
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, s := benchSession(b, tc.v5)
			pkt := mqttwire.AppendPublish(nil, "sensors/123/temperature", payload, 1, false, false, 7)
			if tc.v5 {
				pkt, _ = mqttwire.AppendPublish5(nil, "sensors/123/temperature", payload, 1, false, false, 7, tc.props)
			}
			p := mqttwire.Packet{Header: pkt[0], Body: pkt[2:]}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.subscriberPacket(s, p); err != nil {
					b.Fatal(err)
				}
				if i++; i%1024 == 0 {
					s.end(s.begin()[:0])
				}
			}
		})
	}
}

// BenchmarkAppendPublish measures the encoding of one QoS 1 publish
// without properties on a session: 3.1.1 against 5. (The hot paths append
// a plain 3.1.1 publish with mqttwire.AppendPublish directly: see
// session.plain.)
func BenchmarkAppendPublish(b *testing.B) {
	p := &actions.Publish{Topic: "alerts/123/temperature", Payload: []byte(`{"value":31,"run":1,"seq":42,"ts":1732572000123456789}`), QoS: 1}
	for _, v5 := range []bool{false, true} {
		b.Run(versionName(v5), func(b *testing.B) {
			_, s := benchSession(b, v5)
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() { // as publishQueue.send does
				var err error
				if s.plain(p.Properties) {
					buf = mqttwire.AppendPublish(buf[:0], p.Topic, p.Payload, p.QoS, p.Retain, false, 9)
				} else if buf, err = s.appendPublishOther(buf[:0], p.Topic, p.Payload, p.QoS, p.Retain, false, 9, p.Properties); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
