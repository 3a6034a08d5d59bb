package mqttc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// statusOptions adds a status topic's will and online message to opts.
func statusOptions(opts *Options, topic string, qos byte) {
	opts.Will = &Will{Topic: topic, Payload: []byte("offline"), QoS: qos, Retain: true}
	opts.OnlineMessage = &Will{Topic: topic, Payload: []byte("online"), QoS: qos, Retain: true}
}

// TestWillOnTheWire: the subscriber's CONNECT carries the will (and the
// publisher's none); the online message is the first packet after
// CONNACK; a clean Close publishes the will's message and waits for its
// acknowledgement before DISCONNECT. Both go at QoS 1 for a QoS 2 will.
func TestWillOnTheWire(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			b := newFakeBroker(t)
			opts, _ := options(t, b.URL(), newRecorder())
			statusOptions(&opts, "svc/status", qos)
			c := start(t, opts)
			sub, pub := b.next("subscriber"), b.next("publisher")
			if w := sub.will; w == nil || w.Topic != "svc/status" || string(w.Payload) != "offline" || w.QoS != qos || !w.Retain {
				t.Errorf("subscriber's will %+v, want svc/status=offline at QoS %d, retained", w, qos)
			}
			if pub.will != nil {
				t.Errorf("publisher's CONNECT has a will %+v, want none", pub.will)
			}
			sub.connack(false, 0)
			pub.connack(false, 0)

			// expectStatus reads the status PUBLISH and completes its
			// exchange as a broker does.
			expectStatus := func(payload string) {
				t.Helper()
				p := sub.expectType(mqttwire.TypePublish)
				m, err := mqttwire.DecodePublish(p)
				if err != nil {
					t.Fatal(err)
				}
				wantQoS := min(qos, 1) // see publishStatus
				if string(m.Topic) != "svc/status" || string(m.Payload) != payload || m.QoS != wantQoS || !m.Retain {
					t.Fatalf("status publish %s=%s QoS %d retain %v, want svc/status=%s QoS %d retained", m.Topic, m.Payload, m.QoS, m.Retain, payload, wantQoS)
				}
				if m.QoS == 1 {
					sub.write(mqttwire.AppendAck(nil, mqttwire.TypePuback<<4, m.ID))
				}
			}
			expectStatus("online")
			eventually(t, wait, "Connected()", c.Connected)

			closed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				closed <- c.Close(ctx)
			}()
			expectStatus("offline")
			sub.expectType(mqttwire.TypeDisconnect)
			go func() { // owner: the test; answers the publisher until the client closes
				for !pub.closed(wait) {
				}
			}()
			if err := <-closed; err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestWillReconnectAndClose: on a real broker, a subscriber connection
// that drops without DISCONNECT makes the broker publish "offline"; the
// reconnect publishes "online"; a clean Close publishes "offline" itself
// (and the broker, having got DISCONNECT, does not publish the will too).
// At QoS 2 the connection drops amid the exchange of the first "online"
// (regression: its packet id, left unreleased in the persistent session,
// swallowed the next "online" on mochi).
func TestWillReconnectAndClose(t *testing.T) {
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
				topic := "status/" + clientID(t)
				w := testbroker.Subscribe(t, b.URL(), topic)
				opts, _ := options(t, b.URL(), newRecorder())
				statusOptions(&opts, topic, qos)
				c := start(t, opts)
				w.Expect(t, wait, topic, "online")

				// The connection drops as when the process is killed: no
				// DISCONNECT.
				eventually(t, wait, "subscriber up", c.sub.isUp)
				_ = c.sub.session().nc.Close()
				expectPast(t, w, topic, "online", "offline")
				w.Expect(t, reconnectWait, topic, "online")

				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if err := c.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
				w.Expect(t, wait, topic, "offline")
				w.ExpectNone(t, 300*time.Millisecond) // no will on top of it
				retained := testbroker.Subscribe(t, b.URL(), topic)
				if m := retained.Expect(t, wait, topic, "offline"); !m.Retained {
					t.Errorf("status after Close: not retained")
				}
			})
		}
	})
}

// expectPast takes w's next message other than a repeat of the previous
// payload prev and fails unless it is want. mochi may deliver a message
// published just after a SUBSCRIBE both live and as a retained one (it
// looks for retained messages after sending SUBACK).
func expectPast(t *testing.T, w *testbroker.Subscriber, topic, prev, want string) {
	t.Helper()
	for {
		m, ok := w.TryNext(wait)
		if !ok {
			t.Fatalf("got no message within %v, want %s=%s", wait, topic, want)
		}
		if m.Topic == topic && string(m.Payload) == prev {
			continue
		}
		if m.Topic != topic || string(m.Payload) != want {
			t.Fatalf("got %s, want %s=%s", m, topic, want)
		}
		return
	}
}

// willHelperEnv makes TestWillHelperProcess run a Client: broker URL,
// client id, status topic and protocol, separated by spaces.
const willHelperEnv = "MQTTC_WILL_HELPER"

// TestWillHelperProcess is not a test: TestWillOnKill runs the test
// binary with it as a process to kill.
func TestWillHelperProcess(t *testing.T) {
	var url, id, topic, protocol string
	if _, err := fmt.Sscan(os.Getenv(willHelperEnv), &url, &id, &topic, &protocol); err != nil {
		t.Skip("helper process of TestWillOnKill")
	}
	opts := Options{Broker: url, Protocol: protocol, ClientID: id, MaxReconnectInterval: time.Second}
	statusOptions(&opts, topic, 1)
	c, err := New(opts)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	c.Start()
	for !c.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("connected")
	time.Sleep(time.Minute) // until killed
	os.Exit(1)
}

// TestWillOnKill: a process killed with SIGKILL sends no DISCONNECT; the
// broker publishes its will, "offline".
func TestWillOnKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		topic := "status/" + clientID(t)
		w := testbroker.Subscribe(t, b.URL(), topic)
		cmd := exec.Command(exe, "-test.run=^TestWillHelperProcess$")
		cmd.Env = append(os.Environ(), willHelperEnv+"="+b.URL()+" "+clientID(t)+" "+topic+" "+protocolFor(t))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		w.Expect(t, wait, topic, "online")
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "connected\n" {
			t.Fatalf("helper said %q (%v), want \"connected\"", line, err)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		expectPast(t, w, topic, "online", "offline")
		t.Logf("helper pid %s killed; the broker published its will", strconv.Itoa(cmd.Process.Pid))
	})
}
