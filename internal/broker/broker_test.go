package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestStartPortZeroServesMQTT(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer b.Close()

	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 with a real port", b.Addr())
	}
	if got, want := b.URL(), "tcp://"+b.Addr(); got != want {
		t.Fatalf("URL() = %q, want %q", got, want)
	}

	got := make(chan string, 1)
	sub := connect(t, b.URL(), "sub")
	tok := sub.Subscribe("x/#", 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Topic() + "=" + string(m.Payload()):
		default:
		}
	})
	wait(t, tok, "subscribe")
	pub := connect(t, b.URL(), "pub")
	wait(t, pub.Publish("x/y", 1, false, "hello"), "publish")

	select {
	case m := <-got:
		if m != "x/y=hello" {
			t.Fatalf("received %q, want %q", m, "x/y=hello")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message received within 10s")
	}
}

func TestStartAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	b, err := Start(addr, nil)
	if err == nil {
		b.Close()
		t.Fatalf("Start(%s) on a taken port: got nil error", addr)
	}
	want := "embedded broker: listen tcp " + addr + ": address already in use " +
		"(another broker is running there? pass --broker tcp://" + addr +
		" to use it, or --embedded-broker ADDR)"
	if err.Error() != want {
		t.Fatalf("error:\n got %q\nwant %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("errors.Is(err, ErrAddrInUse) = false for %v", err)
	}
}

func TestDialAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:1883", "127.0.0.1:1883"},
		{":1883", "127.0.0.1:1883"},
		{"0.0.0.0:1883", "127.0.0.1:1883"},
		{"[::]:1883", "127.0.0.1:1883"},
		{"[::1]:1883", "[::1]:1883"},
		{"example.com:1", "example.com:1"},
	}
	for _, tt := range tests {
		if got := dialAddr(tt.in); got != tt.want {
			t.Errorf("dialAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoggerWarnAndAbove(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := Start("127.0.0.1:0", logger)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := connect(t, b.URL(), "x")
	c.Disconnect(100)
	b.Close()

	// mochi logs "attached listener", "mochi mqtt starting", ... at info and
	// debug; none of them may come through.
	t.Logf("embedded broker log:\n%s", buf.String())
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			t.Errorf("log line below warn passed through: %s", line)
		}
		if !strings.Contains(line, "component=embedded-broker") {
			t.Errorf("log line without component=embedded-broker: %s", line)
		}
	}
}

func connect(t *testing.T, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(t.Name() + "-" + id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	wait(t, c.Connect(), "connect")
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func wait(t *testing.T, tok paho.Token, what string) {
	t.Helper()
	select {
	case <-tok.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer within 10s", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the broker's goroutines to write
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLoggerProtocolErrorIsWarned(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	b, err := Start("127.0.0.1:0", logger)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer b.Close()

	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// A PUBLISH before CONNECT is a protocol error the broker must report.
	if _, err := conn.Write([]byte{0x30, 0x03, 0x00, 0x01, 'a'}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	want := `level=WARN msg="client connection ended with an error"`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log after a protocol error:\n%s\nwant a line containing %s", buf.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
