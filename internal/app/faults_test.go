package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestRestartKeepsQueuedMessages stops the engine, publishes QoS 1
// messages while it is away, and starts it again with the same client id:
// the broker kept them in the engine's session and every one is processed.
func TestRestartKeepsQueuedMessages(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	dir := writeRules(t, "rules: [{name: relay, topic: in/+, actions: [{publish: {topic: out, qos: 1}}]}]")
	cfg := Config{Rules: []string{dir}, Broker: url, ClientID: "restart-test"}
	first := start(t, cfg)
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	sub := testbroker.Subscribe(t, url, "out")
	pub := testbroker.NewPublisher(t, url)
	const n = 200
	for i := range n {
		pub.Publish(fmt.Sprintf("in/%d", i%3), fmt.Appendf(nil, "%d", i), 1, false)
	}
	start(t, cfg)
	seen := map[string]bool{}
	for range n {
		m := sub.Next(t, 10*time.Second)
		if seen[string(m.Payload)] {
			t.Errorf("%s processed twice", m.Payload)
		}
		seen[string(m.Payload)] = true
	}
	if len(seen) != n {
		t.Errorf("%d of %d queued messages processed", len(seen), n)
	}
}

// TestPublishesWaitForTheBroker: a rule fires (by timer) while the broker
// is down; its publish waits in the bounded queue and reaches the broker
// once it is back.
func TestPublishesWaitForTheBroker(t *testing.T) {
	b := testbroker.Mosquitto(t)
	dir := writeRules(t, `
rules:
  - name: silent
    topic: beat
    absent: 300ms
    actions: [{publish: {topic: alarm, payload: "beat stopped", qos: 1, retain: true}}]
`)
	a := start(t, Config{Rules: []string{dir}, Broker: b.URL()})
	testbroker.Publish(t, b.URL(), "beat", []byte("1"), 1, false)
	b.Stop()
	waitFor(t, 10*time.Second, "the absence to fire while the broker is down", func() bool {
		return a.Counters().Rule("silent").Fires.Load() == 1
	})
	if a.Connected() {
		t.Fatal("connected to a stopped broker")
	}
	b.Start()
	// The broker restarts empty; the queued publish arrives as a retained
	// message once the engine has reconnected.
	waitFor(t, 40*time.Second, "the engine to reconnect", a.Ready)
	sub := testbroker.Subscribe(t, b.URL(), "alarm")
	m := sub.Next(t, 10*time.Second)
	if string(m.Payload) != "beat stopped" {
		t.Errorf("got %s", m)
	}
}
