package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// collector keeps copies of the messages a client receives.
type collector struct {
	mu   sync.Mutex
	msgs []mqttwire.Publish
	want int
	all  chan struct{} // closed once want messages arrived
}

func newCollector(want int) *collector {
	return &collector{want: want, all: make(chan struct{})}
}

func (c *collector) onPublish(m *mqttwire.Publish) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *m
	cp.Topic = append([]byte(nil), m.Topic...)
	cp.Payload = append([]byte(nil), m.Payload...)
	c.msgs = append(c.msgs, cp)
	if len(c.msgs) == c.want {
		close(c.all)
	}
}

func (c *collector) wait(t *testing.T) []mqttwire.Publish {
	t.Helper()
	select {
	case <-c.all:
	case <-time.After(testTimeout):
		c.mu.Lock()
		n := len(c.msgs)
		c.mu.Unlock()
		t.Fatalf("received %d messages within %v, want %d", n, testTimeout, c.want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]mqttwire.Publish(nil), c.msgs...)
}

// dialTest connects a client for t and closes it in t.Cleanup.
func dialTest(t *testing.T, url, id string, o clientOptions) *client {
	t.Helper()
	o.ClientID = id
	o.CleanSession = true
	c, err := dialClient(t.Context(), url, o)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds or testTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientPublishSubscribe(t *testing.T) {
	b := testbroker.Mosquitto(t, testbroker.WithConfig("max_queued_messages 0"))
	tests := []struct {
		name string
		qos  byte
		n    int
		sub  clientOptions
		pub  clientOptions
	}{
		{name: "qos0", qos: 0, n: 5000},
		{name: "qos1", qos: 1, n: 5000},
		{name: "qos1 small window", qos: 1, n: 2000, pub: clientOptions{Window: 3}},
		// mosquitto's default max_inflight_messages (20) is below ackBatch:
		// the subscriber only progresses if the delayed flush works.
		{name: "qos1 delayed acks and reads", qos: 1, n: 3000,
			sub: clientOptions{AckDelay: 2 * time.Millisecond},
			pub: clientOptions{ReadDelay: time.Millisecond, Window: 50}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector(tt.n)
			tt.sub.OnPublish = col.onPublish
			sub := dialTest(t, b.URL(), fmt.Sprintf("sub-%d", i), tt.sub)
			prefix := fmt.Sprintf("t%d/", i)
			if err := sub.Subscribe(t.Context(), []string{prefix + "#"}, tt.qos); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			pub := dialTest(t, b.URL(), fmt.Sprintf("pub-%d", i), tt.pub)
			maxInFlight := 0
			for j := range tt.n {
				topic := prefix + strconv.Itoa(j%7)
				if err := pub.Publish(t.Context(), topic, []byte(strconv.Itoa(j)), tt.qos); err != nil {
					t.Fatalf("publish %d: %v", j, err)
				}
				maxInFlight = max(maxInFlight, pub.InFlight())
			}
			if err := pub.WaitAcks(t.Context()); err != nil {
				t.Fatalf("wait acks: %v", err)
			}
			if tt.pub.Window > 0 && maxInFlight > tt.pub.Window {
				t.Errorf("in flight reached %d, window is %d", maxInFlight, tt.pub.Window)
			}
			if got := pub.pubacks.Load(); tt.qos == 1 && got != int64(tt.n) {
				t.Errorf("pubacks = %d, want %d", got, tt.n)
			}
			if pub.InFlight() != 0 {
				t.Errorf("in flight after WaitAcks = %d, want 0", pub.InFlight())
			}
			msgs := col.wait(t)
			next := map[string]int{} // per topic, the broker keeps order
			for _, m := range msgs {
				j, err := strconv.Atoi(string(m.Payload))
				if err != nil {
					t.Fatalf("payload %q: %v", m.Payload, err)
				}
				if want := prefix + strconv.Itoa(j%7); string(m.Topic) != want {
					t.Errorf("message %d on %q, want %q", j, m.Topic, want)
				}
				if m.QoS != tt.qos || m.Dup || m.Retain {
					t.Errorf("message %d: qos %d dup %v retain %v, want qos %d", j, m.QoS, m.Dup, m.Retain, tt.qos)
				}
				topic := string(m.Topic)
				if j < next[topic] {
					t.Errorf("message %d on %s after %d", j, topic, next[topic]-7)
				}
				next[topic] = j + 7
			}
		})
	}
}

func TestClientConnectRefused(t *testing.T) {
	b := testbroker.Mosquitto(t)
	// An empty client id needs a clean session [MQTT-3.1.3-8].
	_, err := dialClient(t.Context(), b.URL(), clientOptions{ClientID: "", CleanSession: false})
	if err == nil || !strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("connect with empty id and persistent session: err = %v, want identifier rejected", err)
	}
}

// fakeBroker accepts one connection on 127.0.0.1, answers CONNECT with
// a successful CONNACK and every SUBSCRIBE with SUBACK codes from suback,
// then reads until the client leaves. mosquitto 2.0 grants every
// subscription to 3.1.1 clients, so refusals are tested against this.
func fakeBroker(t *testing.T, suback func(filters int) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() { // owner: the test; exits when the client or Cleanup closes the connection
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := mqttwire.NewReader(bufio.NewReader(conn))
		for {
			p, err := r.Next()
			if err != nil {
				return
			}
			switch p.Type() {
			case mqttwire.TypeConnect:
				_, err = conn.Write([]byte{mqttwire.TypeConnack << 4, 2, 0, 0})
			case mqttwire.TypeSubscribe:
				filters := 0
				for b := p.Body[2:]; len(b) >= 2; filters++ {
					b = b[2+(int(b[0])<<8|int(b[1]))+1:]
				}
				codes := suback(filters)
				pkt := append([]byte{mqttwire.TypeSuback << 4, byte(2 + len(codes)), p.Body[0], p.Body[1]}, codes...)
				_, err = conn.Write(pkt)
			}
			if err != nil {
				return
			}
		}
	}()
	return "tcp://" + ln.Addr().String()
}

func TestClientSubscribeRefused(t *testing.T) {
	tests := []struct {
		name   string
		codes  func(n int) []byte
		filter []string
		want   string
	}{
		{"granted", func(n int) []byte { return make([]byte, n) }, []string{"a", "b"}, ""},
		{"refused", func(n int) []byte { return append(make([]byte, n-1), 0x80) }, []string{"a", "denied"}, `subscribe "denied": refused`},
		{"wrong count", func(int) []byte { return []byte{0} }, []string{"a", "b"}, "1 return codes for 2 filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTest(t, fakeBroker(t, tt.codes), "sub", clientOptions{})
			err := c.Subscribe(t.Context(), tt.filter, 1)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Subscribe = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClientPingAndKeepAlive(t *testing.T) {
	b := testbroker.Mosquitto(t)
	c := dialTest(t, b.URL(), "pinger", clientOptions{})
	if err := c.Ping(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	waitFor(t, "PINGRESP", func() bool { return c.PingResponses() == 1 })

	// An idle client with a 1 s keep-alive pings by itself every 0.5 s.
	k := dialTest(t, b.URL(), "keepalive", clientOptions{KeepAlive: time.Second})
	waitFor(t, "keep-alive PINGRESP", func() bool { return k.PingResponses() >= 2 })
	if err := k.Err(); err != nil {
		t.Errorf("connection: %v", err)
	}
}

func TestClientConnectionLost(t *testing.T) {
	b := testbroker.Mosquitto(t)
	c := dialTest(t, b.URL(), "lost", clientOptions{Window: 1})
	b.Stop()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("Done not closed after the broker stopped")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("Err = %v, want connection lost", err)
	}
	// The window has one id: the second QoS 1 publish must wait and fail.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var err error
	for range 2 {
		if err = c.Publish(ctx, "t", []byte("x"), 1); err != nil {
			break
		}
	}
	if err == nil {
		t.Error("publish on a lost connection: no error")
	}
	if err := c.Close(); err == nil {
		t.Error("Close after a lost connection: no error")
	}
}

func TestClientClose(t *testing.T) {
	b := testbroker.Mosquitto(t)
	c, err := dialClient(t.Context(), b.URL(), clientOptions{ClientID: "closer", CleanSession: true, KeepAlive: time.Second, AckDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Subscribe(t.Context(), []string{"a"}, 0); err == nil {
		t.Error("subscribe after Close: no error")
	}
}

func TestBrokerAddr(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "tcp://127.0.0.1:1884", want: "127.0.0.1:1884"},
		{in: "mqtt://localhost", want: "localhost:1883"},
		{in: "127.0.0.1:9", want: "127.0.0.1:9"},
		{in: "ssl://host:8883", err: true},
	}
	for _, tt := range tests {
		got, err := brokerAddr(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("brokerAddr(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
