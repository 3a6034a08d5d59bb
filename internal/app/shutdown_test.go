package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// TestDeadLetterAtShutdown: a webhook still failing when shutdown begins
// finishes within Close's context, and its dead letter is published: the
// MQTT client closes after the action executor, not before.
func TestDeadLetterAtShutdown(t *testing.T) {
	url := testbroker.Mosquitto(t).URL()
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	dir := writeRules(t, fmt.Sprintf(`
rules:
  - name: hook
    topic: in/#
    actions:
      - webhook: {url: "%s/x", timeout: 5s, retries: 0}
`, srv.URL))
	a, err := Start(Config{Rules: []string{dir}, Broker: url, DeadLetterTopic: "dead", Logger: testLogger(t), ClientID: "shutdown-dl"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ready", a.Ready)
	dl := testbroker.Subscribe(t, url, "dead")
	testbroker.Publish(t, url, "in/1", []byte("x"), 1, false)
	waitFor(t, 5*time.Second, "the webhook call", func() bool { return calls.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	// The endpoint answers 500 only once shutdown has begun.
	waitFor(t, 5*time.Second, "shutdown to stop the intake", func() bool { return !a.client.Ready() })
	release <- struct{}{}
	if err := <-closed; err != nil {
		t.Logf("Close: %v", err)
	}
	m, ok := dl.TryNext(5 * time.Second)
	if !ok {
		t.Fatal("the webhook that failed during shutdown left no dead letter")
	}
	if !strings.Contains(string(m.Payload), `"hook"`) {
		t.Errorf("dead letter %s does not name the rule", m.Payload)
	}
}

// refusingBroker is a minimal MQTT broker that accepts any client and
// grants every subscription except those under secret/, which it refuses
// (SUBACK 0x80), as a broker enforcing an ACL does.
func refusingBroker(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // owner: the test; ends when Cleanup closes the listener
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // owner: the test; ends when the client disconnects
				defer nc.Close()
				pr := mqttwire.NewReader(bufio.NewReader(nc))
				for {
					p, err := pr.Next()
					if err != nil {
						return
					}
					var out []byte
					switch p.Type() {
					case mqttwire.TypeConnect:
						out = []byte{mqttwire.TypeConnack << 4, 2, 0, 0}
					case mqttwire.TypeSubscribe:
						var codes []byte
						for rest := p.Body[2:]; len(rest) >= 3; {
							n := int(rest[0])<<8 | int(rest[1])
							if len(rest) < 3+n {
								return
							}
							code := byte(1)
							if strings.HasPrefix(string(rest[2:2+n]), "secret/") {
								code = mqttwire.SubackFailure
							}
							codes = append(codes, code)
							rest = rest[3+n:]
						}
						out = append([]byte{mqttwire.TypeSuback << 4, byte(2 + len(codes)), p.Body[0], p.Body[1]}, codes...)
					case mqttwire.TypeUnsubscribe:
						out = mqttwire.AppendAck(nil, mqttwire.TypeUnsuback<<4, uint16(p.Body[0])<<8|uint16(p.Body[1]))
					case mqttwire.TypePingreq:
						out = []byte{mqttwire.TypePingresp << 4, 0}
					case mqttwire.TypeDisconnect:
						return
					}
					if out != nil {
						if _, err := nc.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// TestRefusedFilterRollsBack: a reload whose new filter the broker refuses
// is rejected, and the client again wants only the running set's filters,
// so /readyz stays 200 — also after the offending rule is removed.
func TestRefusedFilterRollsBack(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), relay("a", "v1"))
	a := start(t, Config{Rules: []string{dir}, Broker: refusingBroker(t), NoWatch: true})
	waitFor(t, 10*time.Second, "ready", a.Ready)
	writeFile(t, filepath.Join(dir, "b.yaml"), "rules:\n  - name: b\n    topic: secret/b\n    actions: [{log: x}]\n")
	if err := a.Reload(t.Context()); err == nil {
		t.Fatal("a reload with a refused filter was accepted")
	}
	if got := strings.Join(a.client.Filters(), " "); got != strings.Join(a.conns[0].subs, " ") {
		t.Errorf("client wants %q, the running set %q", got, a.conns[0].subs)
	}
	if !a.Ready() {
		t.Error("not ready after a rejected reload, though the running set is fully subscribed")
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !a.Ready() {
		t.Error("not ready after the refused rule was removed")
	}
}

// TestReloadNewFilterGetsItsRetainedMessage: a rule added by a reload on a
// topic with a retained message handles that message, as it would have on
// a fresh start.
func TestReloadNewFilterGetsItsRetainedMessage(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.yaml"), relay("a", "v1"))
		testbroker.Publish(t, url, "in/r", []byte("retained"), 1, true)
		a := start(t, Config{Rules: []string{dir}, Broker: url, NoWatch: true})
		sub := testbroker.Subscribe(t, url, "out/#")
		writeFile(t, filepath.Join(dir, "r.yaml"), relay("r", "v1"))
		if err := a.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		m, ok := sub.TryNext(5 * time.Second)
		if !ok || m.Topic != "out/r" {
			t.Errorf("the new rule did not handle the retained message of its filter: %+v %v", m, ok)
		}
	})
}
