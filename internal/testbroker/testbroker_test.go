package testbroker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestBrokers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Broker
	}{
		{"mosquitto", func(t testing.TB) *Broker { return Mosquitto(t) }},
		{"embedded", Embedded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.start(t)
			if want := "tcp://" + b.Addr(); b.URL() != want {
				t.Fatalf("URL() = %q, want %q", b.URL(), want)
			}
			if want := fmt.Sprintf("127.0.0.1:%d", b.Port()); b.Addr() != want {
				t.Fatalf("Addr() = %q, want %q", b.Addr(), want)
			}

			sub := Subscribe(t, b.URL(), "tb/#")
			Publish(t, b.URL(), "tb/a", []byte("1"), 1, false)
			m := sub.Expect(t, 5*time.Second, "tb/a", "1")
			if m.QoS != 1 {
				t.Errorf("QoS = %d, want 1", m.QoS)
			}
			sub.ExpectNone(t, 100*time.Millisecond)

			// Restart on the same port: a fresh broker, reachable at the same URL.
			url := b.URL()
			b.Stop()
			b.Stop() // idempotent
			b.Start()
			b.Start() // idempotent
			if b.URL() != url {
				t.Fatalf("URL after restart = %q, want %q", b.URL(), url)
			}
			sub2 := Subscribe(t, url, "tb/#")
			p := NewPublisher(t, url)
			p.Publish("tb/b", []byte("2"), 0, false)
			p.Publish("tb/c", []byte("3"), 1, false)
			sub2.Expect(t, 5*time.Second, "tb/b", "2")
			sub2.Expect(t, 5*time.Second, "tb/c", "3")
		})
	}
}

func TestMosquittoLogAndConfig(t *testing.T) {
	port2 := FreePort(t)
	b := Mosquitto(t, WithConfig(fmt.Sprintf("listener %d 127.0.0.1", port2)))
	Publish(t, b.URL(), "x", []byte("y"), 0, false)
	// The second listener works too.
	url2 := fmt.Sprintf("tcp://127.0.0.1:%d", port2)
	sub := Subscribe(t, url2, "x")
	Publish(t, b.URL(), "x", []byte("z"), 1, false)
	sub.Expect(t, 5*time.Second, "x", "z")

	log := b.Log()
	for _, want := range []string{"mosquitto version", fmt.Sprintf("port %d", port2), "New client connected"} {
		if !strings.Contains(log, want) {
			t.Errorf("Log() does not contain %q:\n%s", want, log)
		}
	}
}

func TestMosquittoAuthConfig(t *testing.T) {
	// allow_anonymous false given later overrides the default true.
	b := Mosquitto(t, WithConfig("allow_anonymous false"))
	if err := tryConnect(b.URL()); err == nil {
		t.Fatalf("anonymous connect to a broker with allow_anonymous false: got nil error\n%s", b.Log())
	}
}

func tryConnect(url string) error {
	c := paho.NewClient(baseOptions(url, "tb-anon"))
	defer c.Disconnect(100)
	return await(c.Connect())
}

// fakeTB records Skip and Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skip(args ...any)                  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestMissingMosquitto(t *testing.T) {
	const msg = "mosquitto not installed (apt-get install mosquitto); set MQTT_RULES_REQUIRE_MOSQUITTO=1 to make this a failure"
	for _, tc := range []struct {
		env             string
		skipped, failed string
	}{
		{"", msg, ""},
		{"0", msg, ""},
		{"1", "", msg},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(RequireMosquittoEnv, tc.env)
			f := &fakeTB{TB: t}
			missingMosquitto(f)
			if f.skipped != tc.skipped || f.failed != tc.failed {
				t.Fatalf("got skip %q fail %q, want skip %q fail %q", f.skipped, f.failed, tc.skipped, tc.failed)
			}
		})
	}
}

func TestProxyCut(t *testing.T) {
	b := Embedded(t)
	p := NewProxy(t, b.Addr())
	sub := Subscribe(t, p.URL(), "px")
	Publish(t, b.URL(), "px", []byte("1"), 1, false)
	sub.Expect(t, 5*time.Second, "px", "1")

	lost := make(chan error, 1)
	o := baseOptions(p.URL(), "tb-px").SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(o)
	if err := await(c.Connect()); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(100)
	p.Cut()
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("connection through the proxy not lost within 5s after Cut")
	}
	// New connections still work.
	Publish(t, p.URL(), "px", []byte("2"), 1, false)
}
