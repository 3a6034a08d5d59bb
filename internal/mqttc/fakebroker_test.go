package mqttc

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// fakeBroker is a scripted MQTT broker for tests that need what a real
// one will not do on demand: withhold acknowledgements, send malformed or
// QoS 2 packets, ignore PINGREQ. The test drives each connection itself.
// It speaks the version of each connection's CONNECT, 3.1.1 or 5: its
// helpers (connack, suback, publish) answer in that version.
type fakeBroker struct {
	t  testing.TB
	ln net.Listener

	mu     sync.Mutex
	conns  map[string][]*fakeConn // accepted, CONNECT read, not yet taken; by role
	notify chan struct{}
	all    []net.Conn
	wg     sync.WaitGroup
}

// fakeConn is one client connection to a fakeBroker.
type fakeConn struct {
	t        testing.TB
	nc       net.Conn
	pr       *mqttwire.Reader
	clientID string
	clean    bool
	user     string
	pass     string
	will     *Will             // nil: none
	version  byte              // the CONNECT's protocol version
	connect5 mqttwire.Connect5 // an MQTT 5 CONNECT, decoded
}

func newFakeBroker(t testing.TB) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{t: t, ln: ln, conns: map[string][]*fakeConn{}, notify: make(chan struct{}, 1)}
	b.wg.Add(1)
	go b.accept() // owner: b; exits when ln is closed in Cleanup
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.all {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *fakeBroker) URL() string { return "tcp://" + b.ln.Addr().String() }

func (b *fakeBroker) accept() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.all = append(b.all, nc)
		b.mu.Unlock()
		b.wg.Add(1)
		go func() { // owner: b; reads CONNECT, bounded by a deadline
			defer b.wg.Done()
			fc := &fakeConn{t: b.t, nc: nc}
			fc.pr = mqttwire.NewReader(bufio.NewReader(nc))
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			p, err := fc.pr.Next()
			_ = nc.SetReadDeadline(time.Time{})
			if err != nil || p.Type() != mqttwire.TypeConnect {
				nc.Close()
				return
			}
			fc.parseConnect(mqttwire.Packet{Header: p.Header, Body: append([]byte(nil), p.Body...)})
			role := "subscriber"
			if strings.HasSuffix(fc.clientID, "-pub") {
				role = "publisher"
			}
			b.mu.Lock()
			b.conns[role] = append(b.conns[role], fc)
			b.mu.Unlock()
			select {
			case b.notify <- struct{}{}:
			default:
			}
		}()
	}
}

// parseConnect reads what the tests look at from a CONNECT.
func (fc *fakeConn) parseConnect(p mqttwire.Packet) {
	fc.version, _ = mqttwire.ConnectVersion(p)
	if fc.version != mqttwire.Version5 {
		fc.parseConnect311(p.Body)
		return
	}
	if err := mqttwire.DecodeConnect5(p, &fc.connect5); err != nil {
		fc.t.Errorf("fake broker: MQTT 5 CONNECT: %v", err)
		return
	}
	c := &fc.connect5
	fc.clientID, fc.clean, fc.user, fc.pass = c.ClientID, c.CleanStart, c.Username, c.Password
	if w := c.Will; w != nil {
		fc.will = &Will{Topic: w.Topic, Payload: append([]byte(nil), w.Payload...), QoS: w.QoS, Retain: w.Retain}
		c.Will.Payload = fc.will.Payload
	}
}

// v5 reports whether the connection speaks MQTT 5.
func (fc *fakeConn) v5() bool { return fc.version == mqttwire.Version5 }

// parseConnect311 reads what the tests look at from a 3.1.1 CONNECT body.
func (fc *fakeConn) parseConnect311(b []byte) {
	str := func() string {
		if len(b) < 2 {
			return ""
		}
		n := int(b[0])<<8 | int(b[1])
		if len(b) < 2+n {
			return ""
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s
	}
	_ = str() // "MQTT"
	if len(b) < 4 {
		return
	}
	flags := b[1]
	b = b[4:]
	fc.clean = flags&mqttwire.ConnectFlagClean != 0
	fc.clientID = str()
	if flags&0x04 != 0 { // will [MQTT-3.1.2-9]
		fc.will = &Will{QoS: flags >> 3 & 3, Retain: flags&0x20 != 0}
		fc.will.Topic = str()
		fc.will.Payload = []byte(str())
	}
	if flags&mqttwire.ConnectFlagUsername != 0 {
		fc.user = str()
	}
	if flags&mqttwire.ConnectFlagPassword != 0 {
		fc.pass = str()
	}
}

// next returns the next connection of role ("subscriber" or "publisher")
// whose CONNECT arrived; the test answers it (connack).
func (b *fakeBroker) next(role string) *fakeConn {
	b.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if q := b.conns[role]; len(q) > 0 {
			fc := q[0]
			b.conns[role] = q[1:]
			b.mu.Unlock()
			return fc
		}
		b.mu.Unlock()
		select {
		case <-b.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline.C:
			b.t.Fatalf("fake broker: no %s connected within %v", role, wait)
		}
	}
}

// connack answers CONNECT: code is a 3.1.1 return code, or an MQTT 5
// reason code, with no properties.
func (fc *fakeConn) connack(present bool, code byte) {
	if fc.v5() {
		fc.connack5(&mqttwire.Connack5{SessionPresent: present, Reason: mqttwire.ReasonCode(code)})
		return
	}
	var p byte
	if present {
		p = 1
	}
	fc.write([]byte{mqttwire.TypeConnack << 4, 2, p, code})
}

// connack5 answers CONNECT with an MQTT 5 CONNACK.
func (fc *fakeConn) connack5(ca *mqttwire.Connack5) {
	fc.t.Helper()
	b, err := mqttwire.AppendConnack5(nil, ca)
	if err != nil {
		fc.t.Fatal(err)
	}
	fc.write(b)
}

func (fc *fakeConn) write(b []byte) {
	fc.t.Helper()
	_ = fc.nc.SetWriteDeadline(time.Now().Add(wait))
	if _, err := fc.nc.Write(b); err != nil {
		fc.t.Errorf("fake broker: write: %v", err)
	}
}

// read returns the next packet from the client other than PINGREQ.
func (fc *fakeConn) read() mqttwire.Packet {
	fc.t.Helper()
	p, err := fc.tryRead(wait)
	if err != nil {
		fc.t.Fatalf("fake broker: read: %v", err)
	}
	return p
}

// tryRead returns the next packet other than PINGREQ (which it answers).
// The body is copied.
func (fc *fakeConn) tryRead(timeout time.Duration) (mqttwire.Packet, error) {
	for {
		_ = fc.nc.SetReadDeadline(time.Now().Add(timeout))
		p, err := fc.pr.Next()
		if err != nil {
			return mqttwire.Packet{}, err
		}
		if p.Type() == mqttwire.TypePingreq {
			fc.write([]byte{mqttwire.TypePingresp << 4, 0})
			continue
		}
		return mqttwire.Packet{Header: p.Header, Body: append([]byte(nil), p.Body...)}, nil
	}
}

// expectType reads the next packet and checks its type.
func (fc *fakeConn) expectType(typ byte) mqttwire.Packet {
	fc.t.Helper()
	p := fc.read()
	if p.Type() != typ {
		fc.t.Fatalf("fake broker: got %s, want %s", mqttwire.TypeName(p.Type()), mqttwire.TypeName(typ))
	}
	return p
}

// suback answers a SUBSCRIBE with one return code per filter.
func (fc *fakeConn) suback(sub mqttwire.Packet, code byte) {
	fc.t.Helper()
	if fc.v5() {
		var m mqttwire.Subscribe5
		if err := mqttwire.DecodeSubscribe5(sub, &m); err != nil {
			fc.t.Fatal(err)
		}
		codes := make([]mqttwire.ReasonCode, len(m.Subscriptions))
		for i := range codes {
			codes[i] = mqttwire.ReasonCode(code)
		}
		b, err := mqttwire.AppendSuback5(nil, m.ID, codes, nil)
		if err != nil {
			fc.t.Fatal(err)
		}
		fc.write(b)
		return
	}
	id, err := mqttwire.DecodeID(sub)
	if err != nil {
		fc.t.Fatal(err)
	}
	n := 0
	for b := sub.Body[2:]; len(b) >= 2; {
		l := int(b[0])<<8 | int(b[1])
		b = b[min(len(b), 2+l+1):]
		n++
	}
	out := []byte{mqttwire.TypeSuback << 4}
	out = mqttwire.AppendRemainingLength(out, 2+n)
	out = append(out, byte(id>>8), byte(id))
	for range n {
		out = append(out, code)
	}
	fc.write(out)
}

// closed reports whether the client closed the connection (or it failed)
// within timeout.
func (fc *fakeConn) closed(timeout time.Duration) bool {
	for {
		_, err := fc.tryRead(timeout)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// startFake starts a Client against b with quick timings, and accepts and
// acknowledges both connections (the subscriber's with its SUBACKs while
// the test does not take it over). It returns the Client and the two
// broker-side connections.
func startFake(t *testing.T, b *fakeBroker, rec *recorder, tweak func(*Options)) (*Client, *fakeConn, *fakeConn, *logBuffer) {
	t.Helper()
	opts, logs := options(t, b.URL(), rec)
	if tweak != nil {
		tweak(&opts)
	}
	c := start(t, opts)
	sub := b.next("subscriber")
	sub.connack(false, 0)
	pub := b.next("publisher")
	pub.connack(false, 0)
	eventually(t, wait, "Connected()", c.Connected)
	return c, sub, pub, logs
}

// mqttwire.Publish encodes a PUBLISH for the fake broker to send.
func fakePublish(topic, payload string, qos byte, dup bool, id uint16) []byte {
	return mqttwire.AppendPublish(nil, topic, []byte(payload), qos, false, dup, id)
}

func hasLog(logs *logBuffer, s string) func() bool {
	return func() bool { return strings.Contains(logs.String(), s) }
}

// publish encodes a PUBLISH for the connection's protocol.
func (fc *fakeConn) publish(topic string, payload []byte, qos byte, id uint16) []byte {
	if fc.v5() {
		b, err := mqttwire.AppendPublish5(nil, topic, payload, qos, false, false, id, nil)
		if err != nil {
			fc.t.Fatal(err)
		}
		return b
	}
	return mqttwire.AppendPublish(nil, topic, payload, qos, false, false, id)
}
