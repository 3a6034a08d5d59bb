package mqttc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	xproxy "golang.org/x/net/proxy"

	"github.com/mqtt-rules/mqtt-rules/internal/testbroker"
)

// relayCheck subscribes c to "<prefix>/in/#", checks that a message
// published through tcpURL reaches OnMessage, and that n QoS 1 publishes
// of c (written back to back, so many share one write) all reach a
// subscriber on tcpURL.
func relayCheck(t *testing.T, c *Client, rec *recorder, tcpURL, prefix string, n int) {
	t.Helper()
	subscribe(t, c, prefix+"/in/#")
	testbroker.Publish(t, tcpURL, prefix+"/in/x", []byte("hello"), 1, false)
	rec.expect(t, prefix+"/in/x", "hello")

	sub := testbroker.Subscribe(t, tcpURL, prefix+"/out/#")
	o := newOutcome(n)
	for i := range n {
		c.Publish(pub(prefix+"/out/x", strconv.Itoa(i), 1, false), o.done)
	}
	for i, err := range o.all(t, n, 30*time.Second) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < n {
		m, ok := sub.TryNext(wait)
		if !ok {
			t.Fatalf("received %d of %d", len(seen), n)
		}
		seen[string(m.Payload)] = true
	}
}

// TestWebsocket: ws:// works through paho's WebSocket dialer, with many
// MQTT packets in one WebSocket message [MQTT-6.0.0-2], over MQTT 3.1.1
// and 5.
func TestWebsocket(t *testing.T) {
	t.Run("mosquitto", func(t *testing.T) {
		port := testbroker.FreePort(t)
		b := testbroker.Mosquitto(t, testbroker.WithConfig(fmt.Sprintf("max_queued_messages 0\nlistener %d 127.0.0.1\nprotocol websockets", port)))
		byProtocol(t, func(t *testing.T) {
			rec := newRecorder()
			opts, _ := options(t, fmt.Sprintf("ws://127.0.0.1:%d/mqtt", port), rec)
			c := start(t, opts)
			relayCheck(t, c, rec, b.URL(), "ws", 1000)
		})
	})
	t.Run("embedded", func(t *testing.T) {
		srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			t.Fatal(err)
		}
		tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
		ws := listeners.NewWebsocket(listeners.Config{ID: "ws", Address: "127.0.0.1:" + strconv.Itoa(testbroker.FreePort(t))})
		for _, l := range []listeners.Listener{tcp, ws} {
			if err := srv.AddListener(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Serve(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		byProtocol(t, func(t *testing.T) {
			rec := newRecorder()
			opts, _ := options(t, "ws://"+ws.Address()+"/mqtt", rec)
			c := start(t, opts)
			relayCheck(t, c, rec, "tcp://"+tcp.Address(), "ws", 1000)
		})
	})
}

// TestTLS: ssl:// and mqtts:// with a CA file, over MQTT 3.1.1 and 5; a
// wrong CA is a clear connection error.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certs := testbroker.GenerateCerts(t, dir)
	port := testbroker.FreePort(t)
	b := testbroker.Mosquitto(t, testbroker.WithConfig(fmt.Sprintf(
		"max_queued_messages 0\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s", port, certs.CA, certs.ServerCert, certs.ServerKey)))
	for _, url := range []string{fmt.Sprintf("ssl://127.0.0.1:%d", port), fmt.Sprintf("mqtts://localhost:%d", port)} {
		t.Run(url, func(t *testing.T) {
			byProtocol(t, func(t *testing.T) {
				rec := newRecorder()
				opts, _ := options(t, url, rec)
				opts.CAFile = certs.CA
				c := start(t, opts)
				relayCheck(t, c, rec, b.URL(), "tls", 500)
			})
		})
	}
	t.Run("unknown CA", func(t *testing.T) {
		other := testbroker.GenerateCerts(t, t.TempDir())
		opts, logs := options(t, fmt.Sprintf("ssl://127.0.0.1:%d", port), newRecorder())
		opts.CAFile = other.CA
		start(t, opts)
		eventually(t, wait, "the failure logged", hasLog(logs, "certificate signed by unknown authority"))
		if !strings.Contains(logs.String(), `msg="cannot connect to broker"`) {
			t.Errorf("log:\n%s", logs)
		}
	})
}

// TestBackpressureNoLoss: with a tiny window and queue, publishing flat
// out while connected loses nothing: Publish waits for room.
func TestBackpressureNoLoss(t *testing.T) {
	const n = 5000
	brokers(t, func(t *testing.T, b *testbroker.Broker) {
		sub := testbroker.Subscribe(t, b.URL(), "bpl/#")
		opts, _ := options(t, b.URL(), newRecorder())
		opts.PublishInFlight = 4
		opts.PublishQueue = 4
		c := start(t, opts)
		eventually(t, wait, "Connected()", c.Connected)
		o := newOutcome(n)
		for i := range n {
			c.Publish(pub("bpl/x", strconv.Itoa(i), 1, false), o.done)
		}
		for i, err := range o.all(t, n, 60*time.Second) {
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		if s := c.Stats(); s.QueueFull != 0 || s.Published != n {
			t.Errorf("Stats() = %+v, want Published %d, QueueFull 0", s, n)
		}
		seen := make(map[string]bool, n)
		for len(seen) < n {
			m, ok := sub.TryNext(wait)
			if !ok {
				t.Fatalf("received %d distinct of %d", len(seen), n)
			}
			seen[string(m.Payload)] = true
		}
	}, testbroker.WithConfig("max_queued_messages 0"))
}

// TestSOCKS5: with ALL_PROXY naming a SOCKS5 proxy (as paho honoured it)
// the connections go through it; NO_PROXY bypasses it.
func TestSOCKS5(t *testing.T) {
	// The test's own publisher and subscriber are paho clients, which dial
	// through proxy.FromEnvironment: it reads the environment once per
	// process. Read it before ALL_PROXY is set, so that they connect
	// directly also when this test runs first.
	_ = xproxy.FromEnvironment()
	b := testbroker.Embedded(t)
	proxy := newSOCKS5(t, "user", "pw")
	t.Setenv("ALL_PROXY", "socks5://user:pw@"+proxy.addr())
	t.Setenv("NO_PROXY", "")
	rec := newRecorder()
	opts, _ := options(t, b.URL(), rec)
	c := start(t, opts)
	relayCheck(t, c, rec, b.URL(), "socks", 10)
	if got := proxy.targets(); len(got) != 2 || got[0] != b.Addr() || got[1] != b.Addr() {
		t.Errorf("proxied connections to %q, want two to %s", got, b.Addr())
	}

	t.Setenv("NO_PROXY", "example.com, 127.0.0.0/8")
	opts2, _ := options(t, b.URL(), newRecorder())
	c2 := start(t, opts2)
	eventually(t, wait, "Connected() without the proxy", c2.Connected)
	if got := proxy.targets(); len(got) != 2 {
		t.Errorf("NO_PROXY 127.0.0.0/8: %d proxied connections, want still 2", len(got))
	}
}

// TestSOCKS5BadPassword: a proxy that refuses the URL's user and password
// is a failed connection attempt that names the proxy, not the password.
func TestSOCKS5BadPassword(t *testing.T) {
	b := testbroker.Embedded(t)
	proxy := newSOCKS5(t, "user", "pw")
	t.Setenv("ALL_PROXY", "socks5://user:wrong@"+proxy.addr())
	t.Setenv("NO_PROXY", "")
	opts, _ := options(t, b.URL(), newRecorder())
	errs := make(chan error, 8)
	opts.OnConnectError = func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	start(t, opts)
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "SOCKS5 proxy socks5://user:xxxxx@"+proxy.addr()) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("connect error %q, want one naming the proxy with its password redacted", err)
		}
	case <-time.After(wait):
		t.Fatalf("no connect error within %v", wait)
	}
	if got := proxy.targets(); len(got) != 0 {
		t.Errorf("proxied connections to %q, want none", got)
	}
}

func TestBypassProxy(t *testing.T) {
	tests := []struct {
		host, noProxy string
		want          bool
	}{
		{"broker", "", false},
		{"broker", "*", true},
		{"broker", "other, broker", true},
		{"a.example.com", ".example.com", true},
		{"example.com", "*.example.com", true},
		{"badexample.com", ".example.com", false},
		{"example.com", "a.example.com", false},
		{"10.1.2.3", "10.0.0.0/8", true},
		{"11.1.2.3", "10.0.0.0/8", false},
		{"::1", "::1", true},
		{"BROKER", "broker", true},
	}
	for _, tt := range tests {
		if got := bypassProxy(tt.host, tt.noProxy); got != tt.want {
			t.Errorf("bypassProxy(%q, %q) = %v, want %v", tt.host, tt.noProxy, got, tt.want)
		}
	}
}

// socks5 is a minimal SOCKS5 proxy (RFC 1928, user/password of RFC 1929)
// that records where it connected to.
type socks5 struct {
	ln         net.Listener
	user, pass string
	mu         sync.Mutex
	to         []string
	wg         sync.WaitGroup
}

func newSOCKS5(t *testing.T, user, pass string) *socks5 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{ln: ln, user: user, pass: pass}
	s.wg.Add(1)
	go func() { // owner: s; exits when ln is closed in Cleanup
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { // owner: s; exits when either side closes
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *socks5) addr() string { return s.ln.Addr().String() }

func (s *socks5) targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.to...)
}

func (s *socks5) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	read := func(n int) []byte {
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return nil
		}
		return buf[:n]
	}
	h := read(2)
	if h == nil || h[0] != 5 || read(int(h[1])) == nil {
		return
	}
	c.Write([]byte{5, 2}) // user/password
	h = read(2)
	if h == nil {
		return
	}
	user := string(read(int(h[1])))
	pl := read(1)
	if pl == nil {
		return
	}
	pass := string(read(int(pl[0])))
	if user != s.user || pass != s.pass {
		c.Write([]byte{1, 1})
		return
	}
	c.Write([]byte{1, 0})
	h = read(4)
	if h == nil || h[1] != 1 {
		return
	}
	var host string
	switch h[3] {
	case 1:
		host = net.IP(append([]byte(nil), read(4)...)).String()
	case 3:
		l := read(1)
		host = string(read(int(l[0])))
	case 4:
		host = net.IP(append([]byte(nil), read(16)...)).String()
	}
	p := read(2)
	target := net.JoinHostPort(host, strconv.Itoa(int(p[0])<<8|int(p[1])))
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	s.mu.Lock()
	s.to = append(s.to, target)
	s.mu.Unlock()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	done := make(chan struct{})
	go func() { // owner: serve; exits when up or c closes
		io.Copy(up, c)
		up.Close()
		close(done)
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

var _ = context.Background
