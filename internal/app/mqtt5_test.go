package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// client5 is an MQTT 5 test client on our own MQTT client: it records
// what it receives on its filters.
type client5 struct {
	c    *mqttc.Client
	mu   sync.Mutex
	msgs []mqttc.Message
}

func newClient5(t *testing.T, url, protocol string, filters ...string) *client5 {
	t.Helper()
	cl := &client5{}
	c, err := mqttc.New(mqttc.Options{
		Broker:       url,
		ClientID:     "test5-" + strings.ReplaceAll(t.Name(), "/", "-"),
		CleanSession: true,
		Protocol:     protocol,
		OnMessage: func(m mqttc.Message) {
			cl.mu.Lock()
			cl.msgs = append(cl.msgs, m)
			cl.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.c = c
	if err := c.Subscribe(context.Background(), filters...); err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	waitFor(t, 10*time.Second, "the test client to be ready", c.Ready)
	return cl
}

func (cl *client5) publish(t *testing.T, p *actions.Publish) {
	t.Helper()
	done := make(chan error, 1)
	cl.c.Publish(p, func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish not acknowledged")
	}
}

func (cl *client5) next(t *testing.T, topic string) mqttc.Message {
	t.Helper()
	var got mqttc.Message
	waitFor(t, 10*time.Second, "a message on "+topic, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		for i, m := range cl.msgs {
			if m.Topic == topic {
				got = m
				cl.msgs = append(cl.msgs[:i], cl.msgs[i+1:]...)
				return true
			}
		}
		return false
	})
	return got
}

const answerRule = `
rules:
  - name: answer
    topic: req/time
    when: properties.response_topic != ""
    actions:
      - publish:
          topic: "{{ properties.response_topic }}"
          payload: "{{ properties.user.who }} asked ({{ properties.content_type }})"
          qos: 1
          properties:
            correlation_data: "{{ properties.correlation_data }}"
            user: {answered-by: mqtt-rules}
            content_type: text/plain
            message_expiry: 1m
`

// TestRequestResponse5: a rule answers an MQTT 5 request on its response
// topic with its correlation data, on mosquitto and the embedded broker.
func TestRequestResponse5(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		a := start(t, Config{Rules: []string{writeRules(t, answerRule)}, Broker: url, Protocol: "auto"})
		waitFor(t, 10*time.Second, "MQTT 5", func() bool { return a.Brokers()[0].Protocol == "5" })
		cl := newClient5(t, url, "5", "resp/#")
		cl.publish(t, &actions.Publish{Topic: "req/time", Payload: []byte("?"), QoS: 1, Properties: &actions.Properties{
			ResponseTopic: "resp/ann", CorrelationData: []byte("c-7"), ContentType: "text/query",
			User: []actions.UserProperty{{Name: "who", Value: "ann"}},
		}})
		m := cl.next(t, "resp/ann")
		if string(m.Payload) != "ann asked (text/query)" {
			t.Errorf("payload %q", m.Payload)
		}
		p := m.Properties
		if p == nil {
			t.Fatal("the answer has no properties")
		}
		if string(p.CorrelationData) != "c-7" || p.ContentType != "text/plain" ||
			len(p.User) != 1 || p.User[0] != (actions.UserProperty{Name: "answered-by", Value: "mqtt-rules"}) {
			t.Errorf("properties %+v", p)
		}
		if p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > 60 {
			t.Errorf("message expiry %v, want 60 s or a little less", p.MessageExpiry)
		}
	})
}

// TestPropertiesDroppedOver311: under --protocol 3.1.1 a rule's properties
// are not sent, and that is logged once per rule.
func TestPropertiesDroppedOver311(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(b)
	}), nil))
	a := start(t, Config{Rules: []string{writeRules(t, `
rules:
  - name: tagged
    topic: in/#
    actions: [{publish: {topic: out/x, qos: 1, properties: {user: {a: b}}}}]
`)}, Broker: url, Protocol: "3.1.1", Logger: log})
	if p := a.Brokers()[0].Protocol; p != "3.1.1" {
		t.Fatalf("protocol %q", p)
	}
	cl := newClient5(t, url, "5", "out/#")
	for range 3 {
		testbroker.Publish(t, url, "in/a", []byte("1"), 1, false)
		if m := cl.next(t, "out/x"); m.Properties != nil {
			t.Errorf("properties %+v arrived over 3.1.1", m.Properties)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "MQTT 5 properties not sent"); n != 1 {
		t.Errorf("logged %d times, want once for the rule:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
