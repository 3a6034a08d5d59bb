package mqttc

import (
	"log/slog"
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
func BenchmarkPublishQoS1(b *testing.B) {
	fb := newFakeBroker(b)
	opts := Options{Broker: fb.URL(), ClientID: "bench", Logger: slog.New(slog.DiscardHandler), PublishBackpressure: time.Minute}
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
