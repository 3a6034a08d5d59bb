package testbroker

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// opTimeout bounds every connect, subscribe and publish of the helpers.
const opTimeout = 10 * time.Second

// Msg is a message received by a Subscriber.
type Msg struct {
	Topic     string
	Payload   []byte
	QoS       byte
	Retained  bool
	Duplicate bool
}

// String returns "topic=payload", handy in failure messages.
func (m Msg) String() string { return m.Topic + "=" + string(m.Payload) }

// Subscriber is an independent MQTT client subscribed at QoS 1 that keeps
// every message it receives, in order, until the test takes it.
type Subscriber struct {
	c      paho.Client
	mu     sync.Mutex
	queue  []Msg
	notify chan struct{} // cap 1: a message was queued
}

var clientSeq atomic.Int64

// clientID returns a client id unique within the process and readable in
// broker logs.
func clientID(t testing.TB, role string) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("tb-%s-%s-%d", role, name, clientSeq.Add(1))
}

// Subscribe connects a new clean-session client to url and subscribes it
// to filters at QoS 1, returning once the broker acknowledged. The client
// is disconnected in t.Cleanup. It does not reconnect: after Broker.Stop
// and Start, subscribe again.
func Subscribe(t testing.TB, url string, filters ...string) *Subscriber {
	t.Helper()
	s := &Subscriber{notify: make(chan struct{}, 1)}
	opts := baseOptions(url, clientID(t, "sub")).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.queue = append(s.queue, Msg{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retained: m.Retained(), Duplicate: m.Duplicate()})
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	})
	s.c = connect(t, opts)
	subs := make(map[string]byte, len(filters))
	for _, f := range filters {
		subs[f] = 1
	}
	tok := s.c.SubscribeMultiple(subs, nil)
	if err := await(tok); err != nil {
		t.Fatalf("testbroker: subscribe %q on %s: %v", filters, url, err)
	}
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x80 {
			t.Fatalf("testbroker: subscribe %q on %s: refused by the broker", f, url)
		}
	}
	return s
}

// TryNext returns the next message, waiting up to timeout; ok is false
// when none arrived in time.
func (s *Subscriber) TryNext(timeout time.Duration) (m Msg, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			m = s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return m, true
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-timer.C:
			return Msg{}, false
		}
	}
}

// Next returns the next message, failing the test when none arrives within
// timeout.
func (s *Subscriber) Next(t testing.TB, timeout time.Duration) Msg {
	t.Helper()
	m, ok := s.TryNext(timeout)
	if !ok {
		t.Fatalf("testbroker: no message within %v", timeout)
	}
	return m
}

// Expect takes the next message and fails the test unless it has the
// given topic and payload.
func (s *Subscriber) Expect(t testing.TB, timeout time.Duration, topic, payload string) Msg {
	t.Helper()
	m, ok := s.TryNext(timeout)
	if !ok {
		t.Fatalf("testbroker: got no message within %v, want %s=%s", timeout, topic, payload)
	}
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("testbroker: got message %s, want %s=%s", m, topic, payload)
	}
	return m
}

// ExpectNone fails the test if a message arrives within d (it waits the
// whole of d when none does).
func (s *Subscriber) ExpectNone(t testing.TB, d time.Duration) {
	t.Helper()
	if m, ok := s.TryNext(d); ok {
		t.Fatalf("testbroker: got message %s, want none within %v", m, d)
	}
}

// Pending returns how many received messages have not been taken yet.
func (s *Subscriber) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Publisher is an independent clean-session MQTT client for feeding
// messages into a broker.
type Publisher struct {
	t   testing.TB
	url string
	c   paho.Client
}

// NewPublisher connects a publishing client to url; it is disconnected in
// t.Cleanup. It does not reconnect after Broker.Stop.
func NewPublisher(t testing.TB, url string) *Publisher {
	t.Helper()
	return &Publisher{t: t, url: url, c: connect(t, baseOptions(url, clientID(t, "pub")))}
}

// Publish publishes one message and waits until the broker took it (PUBACK
// for QoS 1, written for QoS 0). It must be called from the test's
// goroutine.
func (p *Publisher) Publish(topic string, payload []byte, qos byte, retain bool) {
	p.t.Helper()
	if err := await(p.c.Publish(topic, qos, retain, payload)); err != nil {
		p.t.Fatalf("testbroker: publish %s on %s: %v", topic, p.url, err)
	}
}

// PublishAsync publishes without waiting and returns a function that waits
// for the outcome (bounded) and returns it; it may be called from any
// goroutine.
func (p *Publisher) PublishAsync(topic string, payload []byte, qos byte, retain bool) func() error {
	tok := p.c.Publish(topic, qos, retain, payload)
	return func() error { return await(tok) }
}

// Publish connects a client to url, publishes one message, waits until the
// broker took it and disconnects.
func Publish(t testing.TB, url, topic string, payload []byte, qos byte, retain bool) {
	t.Helper()
	p := NewPublisher(t, url)
	p.Publish(topic, payload, qos, retain)
	p.c.Disconnect(250)
}

func baseOptions(url, id string) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(url).
		SetClientID(id).
		SetCleanSession(true).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(opTimeout).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true)
}

func connect(t testing.TB, opts *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(opts)
	if err := await(c.Connect()); err != nil {
		t.Fatalf("testbroker: connect to %s: %v", opts.Servers[0], err)
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c
}

// await waits for tok at most opTimeout and returns its error.
func await(tok paho.Token) error {
	timer := time.NewTimer(opTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-timer.C:
		return fmt.Errorf("%w within %v", errTimeout, opTimeout)
	}
}
