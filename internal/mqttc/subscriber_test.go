package mqttc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestSubscribeQoS: SUBSCRIBE asks for Options.SubscribeQoS, 1 by default.
func TestSubscribeQoS(t *testing.T) {
	for _, tc := range []struct {
		name string
		qos  *byte
		want byte
	}{
		{"default", nil, 1},
		{"0", new(byte(0)), 0},
		{"1", new(byte(1)), 1},
		{"2", new(byte(2)), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker(t)
			c, sub, _, _ := startFake(t, b, newRecorder(), func(o *Options) { o.SubscribeQoS = tc.qos })
			errc := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				errc <- c.Subscribe(ctx, "a/#")
			}()
			p := sub.expectType(mqttwire.TypeSubscribe)
			// The body ends with the last filter's requested QoS byte.
			if got := p.Body[len(p.Body)-1]; got != tc.want {
				t.Errorf("SUBSCRIBE asks for QoS %d, want %d", got, tc.want)
			}
			sub.suback(p, tc.want)
			if err := <-errc; err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			eventually(t, wait, "Ready()", c.Ready)
		})
	}
}

// TestCleanSessionFlag: with CleanSession the subscriber's CONNECT asks for
// a clean session (the publisher's always does).
func TestCleanSessionFlag(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	opts.CleanSession = true
	start(t, opts)
	sub, pub := b.next("subscriber"), b.next("publisher")
	if !sub.clean || !pub.clean {
		t.Errorf("clean session: subscriber %v publisher %v, want true true", sub.clean, pub.clean)
	}
}

// TestCleanSessionLeavesNoSession: a client with CleanSession leaves no
// session on the broker once closed [MQTT-3.1.2-6], where one without it
// does. A later persistent connection under the same client id reads
// that from CONNACK's session-present flag. (mosquitto only: on a
// take-over it never hands a clean session on, whatever the order in
// which it sees the two connections.)
func TestCleanSessionLeavesNoSession(t *testing.T) {
	b := testbroker.Mosquitto(t)
	for _, clean := range []bool{false, true} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			opts, _ := options(t, b.URL(), newRecorder())
			opts.CleanSession = clean
			c := start(t, opts)
			subscribe(t, c, "cs/#")
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if present := sessionPresent(t, b.Addr(), opts.ClientID); present == clean {
				t.Errorf("session present after a client with CleanSession=%v closed: %v, want %v", clean, present, !clean)
			}
		})
	}
}

// sessionPresent connects to addr as id with a persistent session and
// returns CONNACK's session-present flag.
func sessionPresent(t *testing.T, addr, id string) bool {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	pkt, err := mqttwire.AppendConnect(nil, mqttwire.Connect{ClientID: id, KeepAlive: 30})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(pkt); err != nil {
		t.Fatal(err)
	}
	p, err := mqttwire.NewReader(bufio.NewReader(nc)).Next()
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	present, code, err := mqttwire.DecodeConnack(p)
	if err != nil || code != mqttwire.ConnackAccepted {
		t.Fatalf("CONNACK: code %d, %v", code, err)
	}
	// Leave no session behind either.
	_, _ = nc.Write([]byte{mqttwire.TypeDisconnect << 4, 0})
	return present
}

// TestOnConnectError: every failed attempt to connect the subscriber is
// reported, a refusal with the broker's reason.
func TestOnConnectError(t *testing.T) {
	collect := func(o *Options) chan error {
		errs := make(chan error, 16)
		o.OnConnectError = func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		return errs
	}
	first := func(t *testing.T, errs chan error) error {
		t.Helper()
		select {
		case err := <-errs:
			return err
		case <-time.After(wait):
			t.Fatalf("OnConnectError not called within %v", wait)
			return nil
		}
	}

	t.Run("unreachable", func(t *testing.T) {
		url := fmt.Sprintf("tcp://127.0.0.1:%d", testbroker.FreePort(t))
		opts, _ := options(t, url, newRecorder())
		errs := collect(&opts)
		start(t, opts)
		if err := first(t, errs); !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("OnConnectError(%q), want a refused connection", err)
		}
		// And again on the next attempt.
		if err := first(t, errs); err == nil {
			t.Error("OnConnectError(nil) on the second attempt")
		}
	})

	t.Run("refused by the broker", func(t *testing.T) {
		b := newFakeBroker(t)
		opts, _ := options(t, b.URL(), newRecorder())
		errs := collect(&opts)
		c := start(t, opts)
		b.next("subscriber").connack(false, mqttwire.ConnackNotAuthorized)
		want := "broker refused the connection: not authorized (CONNACK return code 5)"
		if err := first(t, errs); err.Error() != want {
			t.Errorf("OnConnectError(%q), want %q", err, want)
		}
		// A publisher that cannot connect is not reported: the callback
		// is about the subscriber.
		b.next("publisher").connack(false, mqttwire.ConnackNotAuthorized)
		sub := b.next("subscriber") // the retry
		sub.connack(false, 0)
		eventually(t, wait, "subscriber connected", c.sub.isUp)
		select {
		case err := <-errs:
			t.Errorf("OnConnectError(%q) after the subscriber's refusal, want no call", err)
		default:
		}
	})
}

// TestSubscribeDuringConnect: a Subscribe that runs between the connect
// and the resubscription of the desired set sends its SUBSCRIBE once: the
// resubscription leaves the acknowledged filter alone, so the broker does
// not send its retained messages twice [MQTT-3.8.4-3].
func TestSubscribeDuringConnect(t *testing.T) {
	b := newFakeBroker(t)
	opts, _ := options(t, b.URL(), newRecorder())
	var c *Client
	done := make(chan error, 1)
	// OnConnectionChange(true) runs before the resubscription, on the
	// same goroutine: a Subscribe made in it is the one that comes first.
	opts.OnConnectionChange = func(up bool) {
		if up && len(c.Filters()) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			done <- c.Subscribe(ctx, "a/#")
		}
	}
	var err error
	if c, err = New(opts); err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	sub := b.next("subscriber")
	sub.connack(false, 0)
	b.next("publisher").connack(false, 0)
	p := sub.expectType(mqttwire.TypeSubscribe)
	sub.suback(p, 1)
	if err := <-done; err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	eventually(t, wait, "Ready()", c.Ready)
	if p, err := sub.tryRead(500 * time.Millisecond); err == nil {
		t.Errorf("got a second %s from the client, want none", mqttwire.TypeName(p.Type()))
	}
}

// TestResubscribeWithQueuedMessages: the resubscription after a reconnect
// to a session that holds messages is acknowledged. Regression: mochi
// v2.7.9 refuses a SUBSCRIBE whose packet id is that of one of its own
// messages in flight to the client (SUBACK 0x91, or 0x80 over 3.1.1),
// though MQTT keeps the two apart (§2.3.1: client and server assign ids
// independently); the broker numbers its messages from 1, as the client
// did its SUBSCRIBEs.
func TestResubscribeWithQueuedMessages(t *testing.T) {
	byProtocol(t, func(t *testing.T) {
		b := testbroker.Embedded(t)
		opts, _ := options(t, b.URL(), newRecorder())
		c1 := start(t, opts)
		subscribe(t, c1, "q/#")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c1.Close(ctx); err != nil {
			t.Fatal(err)
		}
		p := testbroker.NewPublisher(t, b.URL())
		for i := range 20 {
			p.Publish(fmt.Sprintf("q/%d", i), []byte("x"), 1, false)
		}
		// The first message is held, unacknowledged, until the SUBSCRIBE
		// is on its way: the broker has ids 1..20 in flight meanwhile.
		var c2 *Client
		var once sync.Once
		opts2, logs := options(t, b.URL(), newRecorder())
		opts2.ClientID = opts.ClientID
		opts2.OnMessage = func(Message) {
			once.Do(func() {
				for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					s := c2.sub.session()
					s.ackMu.Lock()
					requested := len(s.acks) > 0
					s.ackMu.Unlock()
					if requested {
						return
					}
				}
			})
		}
		c2, err := New(opts2)
		if err != nil {
			t.Fatal(err)
		}
		c2.desired["q/#"] = struct{}{} // subscribed on connect, as after a restart
		c2.Start()
		t.Cleanup(func() { _ = c2.Close(context.Background()) })
		eventually(t, wait, "Ready() with 20 messages in flight", c2.Ready)
		if strings.Contains(logs.String(), "resubscribe failed") {
			t.Errorf("log:\n%s", logs)
		}
	})
}
