// Package mqttc is the engine's MQTT connection: it subscribes to the rule
// set's topic filters and hands every message to the engine, and it
// publishes the rules' publish actions.
//
// A Client holds two MQTT connections to the same broker, both MQTT 5 or
// both MQTT 3.1.1 (Options.Protocol; see v5.go for what MQTT 5 adds). The
// subscriber (ClientID, persistent session and QoS 1 subscriptions unless
// Options say otherwise) receives; the publisher (ClientID+"-pub", clean
// session) sends. On a single connection at QoS 1 a receive path that
// waits for publishes deadlocks (PUBACKs queue behind PUBLISH packets that
// cannot be sent); two connections keep the paths independent.
//
// The MQTT client is the package's own, built for the relay's hot path:
// each connection has one goroutine reading it, the subscriber's reader
// calls OnMessage itself, and writes are coalesced into one system call
// per batch of input (see session). A message crosses no goroutine between
// the socket it arrived on and the socket its publishes leave by. paho
// provides only the WebSocket dialer for ws:// and wss://.
//
// Both connections are (re)established by the Client with exponential
// backoff up to Options.MaxReconnectInterval. Publishes the broker had
// not acknowledged when the publisher's connection dropped are sent again
// (DUP set) after the reconnect, at most maxAttempts times in all.
package mqttc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
	"github.com/mqtt-rules/mqtt-rules/internal/ratelog"
)

// ackTimeout bounds the wait for a SUBACK or UNSUBACK.
const ackTimeout = 30 * time.Second

// readDelay is how long a busy reader pauses after each batch (see
// session.read): one read, write and wake-up then serve about a
// millisecond's worth of packets. (Go's timers do not sleep much less
// than a millisecond on an idle process anyway.)
const readDelay = time.Millisecond

// quiesce is how long a disconnect waits for the DISCONNECT to be sent.
const quiesce = 250 * time.Millisecond

// statusTimeout bounds the wait for the acknowledgement of the will's
// message that a clean disconnect publishes (with ConnectTimeout).
const statusTimeout = 5 * time.Second

// stableAfter is how long a connection must have lasted for the next
// reconnect to start without backoff.
const stableAfter = time.Minute

// failureLogEvery bounds the rate of connection-failure log lines once
// connecting has failed failureLogFirst times in a row.
const (
	failureLogFirst = 3
	failureLogEvery = time.Minute
)

// errShuttingDown is the outcome of publishes still queued when Close gave up.
var errShuttingDown = errors.New("shutting down")

// Client is the engine's MQTT connection. Create it with New, start it
// with Start, stop it with Close. Its methods are safe for concurrent use.
type Client struct {
	s   *settings
	log *slog.Logger
	sub *conn
	pub *conn

	startOnce sync.Once
	started   atomic.Bool
	closeOnce sync.Once
	recvOnce  sync.Once // StopReceiving
	closeErr  error

	// Subscriptions; mu guards the fields below it.
	mu           sync.Mutex
	closing      bool
	subUp        bool
	epoch        uint64              // changes whenever the subscriber connects or disconnects
	desired      map[string]struct{} // plain filters the caller wants
	acked        map[string]struct{} // desired filters acknowledged on this connection (epoch)
	pendingUnsub map[string]struct{} // removed filters the broker session may still hold
	subIDs       map[string]uint32   // MQTT 5 Subscription Identifier by filter (see subscribeNow)
	lastSubID    uint32
	cbMu         sync.Mutex    // serializes OnConnectionChange calls in order of changes
	opSem        chan struct{} // cap 1: one (un)subscribe exchange at a time

	// gate stops OnMessage calls once Close has begun disconnecting the
	// subscriber.
	gate       sync.RWMutex
	gateClosed bool

	// inHandler is true while the subscriber's reader runs OnMessage: a
	// publish made then is flushed by that reader once it has handled what
	// it read, with no goroutine woken for it.
	inHandler atomic.Bool
	// qos2In holds the ids of inbound QoS 2 messages delivered and not yet
	// released (PUBREL) [MQTT-4.3.3]; only the subscriber's reader uses it.
	qos2In map[uint16]struct{}

	pq      publishQueue
	pubSess atomic.Pointer[session] // the publisher's session while it is up

	only311 atomic.Bool   // Protocol auto: the broker refused MQTT 5
	version atomic.Uint32 // protocol version of the last connect, 0 before

	wg sync.WaitGroup // every goroutine the Client starts
}

// conn is one of the two connections and the state the Client keeps about
// it across its sessions.
type conn struct {
	role  string // "subscriber" or "publisher"
	id    string // client id
	clean bool
	log   *slog.Logger
	ctx   context.Context // ended by Close: stop connecting
	stop  context.CancelFunc
	done  chan struct{} // closed when the connection's goroutine exits

	mu      sync.Mutex
	up      bool
	sess    *session      // the current session, also after the goroutine stopped
	changed chan struct{} // closed and replaced on every change of up
}

var _ actions.Publisher = (*Client)(nil)

// New checks opts and returns a Client that is not connected yet: a bad
// URL, an unreadable CA, certificate or key file or an invalid option is
// reported here as a one-line error.
func New(opts Options) (*Client, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, err
	}
	c := &Client{
		s:            s,
		log:          s.Logger.With("broker", s.redacted),
		desired:      make(map[string]struct{}),
		acked:        make(map[string]struct{}),
		pendingUnsub: make(map[string]struct{}),
		subIDs:       make(map[string]uint32),
		opSem:        make(chan struct{}, 1),
		qos2In:       make(map[uint16]struct{}),
	}
	c.pq.init(s.PublishQueue, s.PublishInFlight)
	c.sub = c.newConn("subscriber", s.ClientID, s.CleanSession)
	c.pub = c.newConn("publisher", s.ClientID+"-pub", true)
	return c, nil
}

func (c *Client) newConn(role, id string, clean bool) *conn {
	cn := &conn{
		role:    role,
		id:      id,
		clean:   clean,
		log:     c.log.With("client_id", id, "connection", role),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	cn.ctx, cn.stop = context.WithCancel(context.Background())
	return cn
}

// Start begins connecting both connections and returns at once. When the
// broker cannot be reached they keep trying, with backoff, until Close.
// Calls after the first do nothing.
func (c *Client) Start() {
	c.startOnce.Do(func() {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return
		}
		c.started.Store(true)
		c.wg.Add(2)
		c.mu.Unlock()
		go c.run(c.sub, c.subscriberSession, c.subscriberUp, func(*session) { c.subscriberDown() })
		go c.run(c.pub, c.publisherSession, c.publisherUp, c.publisherDown)
	})
}

// Connected reports whether both connections are up.
func (c *Client) Connected() bool {
	return c.sub.isUp() && c.pub.isUp()
}

// Ready reports whether the subscriber is connected and the broker has
// acknowledged every filter of the desired set on this connection.
func (c *Client) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subUp && len(c.acked) == len(c.desired)
}

// Protocol returns the MQTT version the Client spoke on its last connect:
// "5" or "3.1.1"; "" before it connected.
func (c *Client) Protocol() string {
	switch byte(c.version.Load()) {
	case mqttwire.Version5:
		return "5"
	case mqttwire.Version311:
		return "3.1.1"
	}
	return ""
}

// sessionConfig returns the timings of a session with a keep-alive of
// keepAlive seconds (0: none): a tick short enough to send PINGREQ within
// the keep-alive and to notice an unanswered one (and, on the publisher,
// an unacknowledged publish) in time.
func (c *Client) sessionConfig(role string, keepAlive uint16) sessionConfig {
	s := c.s
	ka := time.Duration(keepAlive) * time.Second
	pingTimeout := s.ConnectTimeout
	tick := pingTimeout / 2
	if ka > 0 {
		pingTimeout = min(pingTimeout, ka)
		tick = min(ka/4, pingTimeout/2)
	}
	if role == "publisher" {
		tick = min(tick, s.PublishTimeout/4)
	}
	return sessionConfig{
		keepAlive:    ka,
		pingTimeout:  pingTimeout,
		writeTimeout: s.ConnectTimeout,
		tick:         tick,
		readDelay:    readDelay,
	}
}

// connect opens a session for cn: network connection, TLS, CONNECT and
// CONNACK, all within ConnectTimeout (or until Close), in the protocol of
// Options.Protocol. With auto it tries MQTT 5 first, and 3.1.1 when the
// broker refuses MQTT 5, from then on. code is the 3.1.1 CONNACK return
// code when the broker refused; an MQTT 5 refusal is a
// *mqttwire.ReasonError.
func (c *Client) connect(cn *conn) (s *session, present bool, code byte, err error) {
	auto := c.s.proto == protoAuto
	v5 := c.s.proto == mqttwire.Version5 || auto && !c.only311.Load()
	s, present, code, err = c.connectAs(cn, v5)
	if err != nil && v5 && auto && refusesV5(err) && cn.ctx.Err() == nil {
		if c.only311.CompareAndSwap(false, true) {
			cn.log.Info("the broker does not accept MQTT 5: using MQTT 3.1.1 from now on", "answer", err)
		}
		s, present, code, err = c.connectAs(cn, false)
	}
	return s, present, code, err
}

// errCONNACK311 marks a CONNACK in MQTT 3.1.1's form (no properties) in
// answer to an MQTT 5 CONNECT: the broker does not speak MQTT 5.
var errCONNACK311 = errors.New("the broker answered the MQTT 5 CONNECT with an MQTT 3.1.1 CONNACK")

// refusesV5 reports whether err, the outcome of an MQTT 5 CONNECT, says
// the broker does not speak MQTT 5: CONNACK 0x84 unsupported protocol
// version (a 3.1.1 broker's return code 1 decodes as that) or another
// 3.1.1 CONNACK, or the connection closed without an answer.
func refusesV5(err error) bool {
	var re *mqttwire.ReasonError
	return errors.As(err, &re) && re.Packet == mqttwire.TypeConnack && re.Reason == mqttwire.ReasonUnsupportedProtocolVersion ||
		errors.Is(err, errCONNACK311) || errors.Is(err, errNoConnack)
}

// connectAs is connect in one protocol version.
func (c *Client) connectAs(cn *conn, v5 bool) (s *session, present bool, code byte, err error) {
	ctx, cancel := context.WithTimeout(cn.ctx, c.s.ConnectTimeout)
	defer cancel()
	nc, err := c.dialNet(ctx)
	if err != nil {
		return nil, false, 0, err
	}
	keepAlive := uint16((c.s.KeepAlive + time.Second - 1) / time.Second) // at most 65535: settings
	s = newSession(nc, c.sessionConfig(cn.role, keepAlive))
	var pkt []byte
	if v5 {
		pkt, err = c.connect5(cn, keepAlive)
	} else {
		var will *Will
		if cn == c.sub {
			will = c.s.Will
		}
		pkt, err = appendConnect311(nil, mqttwire.Connect{
			ClientID:     cn.id,
			CleanSession: cn.clean,
			KeepAlive:    keepAlive,
			Username:     c.s.Username,
			Password:     c.s.Password,
		}, will)
	}
	if err != nil {
		_ = nc.Close()
		return nil, false, 0, err
	}
	p, err := s.handshake(ctx, pkt)
	if err != nil {
		_ = nc.Close()
		return nil, false, 0, err
	}
	if !v5 {
		present, code, err = mqttwire.DecodeConnack(p)
		if err == nil && code != mqttwire.ConnackAccepted {
			err = fmt.Errorf("broker refused the connection: CONNACK return code %d", code)
		}
		if err != nil {
			_ = nc.Close()
			return nil, false, code, err
		}
		c.version.Store(uint32(mqttwire.Version311))
		return s, present, 0, nil
	}
	var ca mqttwire.Connack5
	if err := mqttwire.DecodeConnack5(p, &ca); err != nil {
		s.v5 = true
		reason, _ := disconnectReason(err)
		s.closeNow(reason, err.Error())
		return nil, false, 0, fmt.Errorf("%w (sent DISCONNECT %s)", err, reason)
	}
	if len(p.Body) == 2 { // no property length: 3.1.1's form, whatever its code
		_ = nc.Close()
		if err := ca.Err(); err != nil {
			return nil, false, 0, fmt.Errorf("%w: %w", errCONNACK311, err)
		}
		return nil, false, 0, errCONNACK311
	}
	if err := ca.Err(); err != nil {
		_ = nc.Close()
		return nil, false, 0, err
	}
	var aliasMax uint16
	if cn == c.sub {
		aliasMax = topicAliasMaximum
	}
	s.setV5(&ca.Properties, aliasMax, func(ka uint16) sessionConfig { return c.sessionConfig(cn.role, ka) })
	if id := ca.Properties.AssignedClientIdentifier; id != "" && cn.id == "" { // §3.2.2.3.7
		cn.log.Info("the broker assigned the client identifier", "assigned_client_id", id)
		cn.id = id
	}
	c.version.Store(uint32(mqttwire.Version5))
	return s, ca.SessionPresent, 0, nil
}

// run keeps cn connected until Close: it connects with backoff, starts
// each session (start), calls up after each successful connect and down
// after each loss. On Close it returns and leaves the current session to
// Close.
func (c *Client) run(cn *conn, start, up func(s *session, sessionPresent bool), down func(*session)) {
	defer c.wg.Done()
	defer close(cn.done)
	var (
		backoff  time.Duration
		failures int             // of the current run of failed attempts
		failLog  ratelog.Limiter // their log lines
	)
	stop := cn.ctx.Done()
	for {
		// Connect, retrying with backoff.
		var (
			s       *session
			present bool
		)
		for {
			if cn.ctx.Err() != nil {
				return
			}
			var (
				code byte
				err  error
			)
			s, present, code, err = c.connect(cn)
			if err == nil {
				break
			}
			if cn.ctx.Err() != nil {
				return
			}
			failures++
			backoff = nextBackoff(backoff, c.s.MaxReconnectInterval)
			every := failureLogEvery
			if failures <= failureLogFirst {
				every = 0 // logged whatever the time since the last line
			}
			if _, ok := failLog.Allow(time.Now(), every); ok {
				logConnectFailure(cn.log, code, err, failures, backoff)
			}
			if cn == c.sub && c.s.OnConnectError != nil {
				if code != mqttwire.ConnackAccepted {
					err = fmt.Errorf("broker refused the connection: %s (CONNACK return code %d)", mqttwire.ConnackReason(code), code)
				}
				c.s.OnConnectError(err) // MQTT 5: `connection refused: 0x86 bad user name or password (reason: "…")`
			}
			if !sleep(backoff, stop) {
				return
			}
		}
		if failures > 0 {
			cn.log.Info("connected to broker", "protocol", versionName(s.v5), "failed_attempts", failures)
		} else {
			cn.log.Info("connected to broker", "protocol", versionName(s.v5))
		}
		failures = 0
		since := time.Now()
		start(s, present)
		cn.setUp(true, s)
		up(s, present)

		// Wait for the session to end.
		select {
		case <-s.done:
		case <-stop:
			return
		}
		cn.log.Warn("connection to broker lost", "err", s.err)
		cn.setUp(false, s)
		down(s)
		if time.Since(since) >= stableAfter {
			backoff = 0
			continue
		}
		backoff = nextBackoff(backoff, c.s.MaxReconnectInterval)
		if !sleep(backoff, stop) {
			return
		}
	}
}

// subscriberSession starts the subscriber's reader: it hands every
// PUBLISH to OnMessage, acknowledges it after OnMessage returned and, when
// it has read all it had, writes the acknowledgements and the publishes
// OnMessage made. Without a session on the broker, no QoS 2 delivery of
// the last one is pending any more: their ids are forgotten (the last
// reader has exited, so this is the only goroutine touching qos2In).
func (c *Client) subscriberSession(s *session, sessionPresent bool) {
	if !sessionPresent {
		clear(c.qos2In)
	}
	s.start(func(p mqttwire.Packet) error { return c.subscriberPacket(s, p) }, func() bool {
		if ps := c.pubSess.Load(); ps != nil {
			ps.flush()
		}
		return s.flush()
	})
}

func (c *Client) subscriberPacket(s *session, p mqttwire.Packet) error {
	if s.v5 {
		return c.subscriberPacket5(s, p)
	}
	switch p.Type() {
	case mqttwire.TypePublish:
		m, err := mqttwire.DecodePublish(p)
		if err != nil {
			return err
		}
		switch m.QoS {
		case 0:
			c.deliver(&m, nil, nil, 0)
		case 1:
			c.deliver(&m, nil, s, mqttwire.TypePuback<<4)
		case 2:
			// Delivered once, on the first PUBLISH with its id; a DUP
			// before the PUBREL is only acknowledged again [MQTT-4.3.3-2].
			if _, seen := c.qos2In[m.ID]; !seen {
				if !c.deliver(&m, nil, s, mqttwire.TypePubrec<<4) {
					return nil
				}
				c.qos2In[m.ID] = struct{}{}
				return nil
			}
			b := s.begin()
			b = mqttwire.AppendAck(b, mqttwire.TypePubrec<<4, m.ID)
			s.end(b)
		}
	case mqttwire.TypePubrel:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		delete(c.qos2In, id)
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.TypePubcomp<<4, id)
		s.end(b)
	case mqttwire.TypeSuback:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		s.acked(id, p.Body[2:], "")
	case mqttwire.TypeUnsuback:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		s.acked(id, nil, "")
	case mqttwire.TypeDisconnect:
		return errBrokerDisconnect
	case mqttwire.TypePuback, mqttwire.TypePubcomp:
		// The end of a status publish (Options.OnlineMessage, Will).
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		s.acked(id, nil, "")
	case mqttwire.TypePubrec:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		b := s.begin()
		b = mqttwire.AppendAck(b, mqttwire.HeaderPubrel, id)
		s.end(b)
	case mqttwire.TypePingresp:
		// Nothing to do: any packet shows the connection is alive.
	default:
		return fmt.Errorf("unexpected %s from the broker: %w", mqttwire.TypeName(p.Type()), mqttwire.ErrMalformed)
	}
	return nil
}

// deliver hands m, with its MQTT 5 properties props, to OnMessage (the
// Client's only message handler, so each PUBLISH packet reaches it
// exactly once, even when several subscriptions match) and then, when
// ack is not 0, queues that acknowledgement of m on s — still under the
// gate, so that Close cannot send DISCONNECT between the two. It returns
// false when Close has stopped deliveries: the message is then neither
// handled nor acknowledged, and the broker delivers it again to the next
// session.
func (c *Client) deliver(m *mqttwire.Publish, props *actions.Properties, s *session, ack byte) bool {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.gateClosed {
		return false
	}
	if c.s.OnMessage != nil {
		msg := Message{
			Topic:      string(m.Topic),
			QoS:        m.QoS,
			Retained:   m.Retain,
			Duplicate:  m.Dup,
			Properties: props,
		}
		if len(m.Payload) > 0 {
			msg.Payload = append([]byte(nil), m.Payload...)
		}
		c.inHandler.Store(true)
		defer c.inHandler.Store(false)
		c.s.OnMessage(msg)
	}
	if ack != 0 {
		b := s.begin()
		b = mqttwire.AppendAck(b, ack, m.ID)
		s.end(b)
	}
	return true
}

// nextBackoff doubles d, from 500ms up to limit, with ±20% jitter.
func nextBackoff(d, limit time.Duration) time.Duration {
	switch {
	case d <= 0:
		d = 500 * time.Millisecond
	default:
		d *= 2
	}
	d = min(d, limit)
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

// sleep waits d or until stop is closed; false means stop.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// logConnectFailure logs a failed connection attempt: a CONNACK refusal
// (rc) as an error saying what the broker answered, anything else as a
// warning with the cause.
func logConnectFailure(log *slog.Logger, rc byte, err error, attempts int, retry time.Duration) {
	retryIn := retry.Round(100 * time.Millisecond).String()
	if rc != mqttwire.ConnackAccepted {
		log.Error("broker refused the connection: "+mqttwire.ConnackReason(rc),
			"connack_code", rc, "attempts", attempts, "retry_in", retryIn)
		return
	}
	var re *mqttwire.ReasonError
	if errors.As(err, &re) && re.Packet == mqttwire.TypeConnack { // MQTT 5
		msg := "broker refused the connection: " + strings.TrimPrefix(re.Error(), "connection refused: ")
		if re.Reason == mqttwire.ReasonUnsupportedProtocolVersion {
			msg += "; it does not speak MQTT 5 (use protocol 3.1.1 or auto)"
		}
		log.Error(msg, "reason_code", fmt.Sprintf("0x%02x", byte(re.Reason)), "attempts", attempts, "retry_in", retryIn)
		return
	}
	// paho wraps network errors as "network Error : <cause>"; keep the
	// cause (an error shaped so may come from paho's WebSocket dialer).
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) == 2 && errors.Is(errs[0], packets.ErrorNetworkError) && errs[1] != nil {
			err = errs[1]
		}
	}
	log.Warn("cannot connect to broker", "err", err, "attempts", attempts, "retry_in", retryIn)
}

// setUp records a change of cn's state and its current session.
func (cn *conn) setUp(up bool, s *session) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.sess = s
	if cn.up == up {
		return
	}
	cn.up = up
	close(cn.changed)
	cn.changed = make(chan struct{})
}

// state returns whether cn is up and a channel closed on the next change.
func (cn *conn) state() (bool, <-chan struct{}) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.up, cn.changed
}

func (cn *conn) isUp() bool {
	up, _ := cn.state()
	return up
}

// session returns cn's current (or last) session, or nil.
func (cn *conn) session() *session {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.sess
}

// Close stops taking messages (the subscriber disconnects first; its
// session and subscriptions stay on the broker), then lets queued and
// in-flight publishes finish until ctx ends; those still pending then get
// an error. Then the publisher disconnects. It returns an error when ctx
// ended before every publish was settled. Every goroutine of the Client
// has exited when Close returns; later calls return the same result.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(ctx) })
	return c.closeErr
}

func (c *Client) close(ctx context.Context) error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	if !c.started.Load() {
		if n := c.pq.shut(); n > 0 {
			return fmt.Errorf("close: %d publishes not sent: %w", n, errShuttingDown)
		}
		return nil
	}

	// 1. Stop taking messages (unless the caller did already).
	c.StopReceiving()

	// 2. Drain the publish queue and the in-flight window.
	var err error
	drained := c.pq.drain()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	if n := c.pq.shut(); n > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = errShuttingDown // published while Close was finishing
		}
		err = fmt.Errorf("close: %d publishes not sent: %w", n, cause)
	}

	// 3. Disconnect the publisher.
	c.pub.stop()
	<-c.pub.done
	if s := c.pub.session(); s != nil {
		s.disconnect(quiesce)
	}
	c.pubSess.Store(nil)
	c.pub.setUp(false, nil)

	c.wg.Wait()
	c.log.Info("mqtt connection closed", "client_id", c.s.ClientID)
	return err
}

// StopReceiving is the first half of Close: no OnMessage call begins
// after it returns (a message read later is not acknowledged, so the
// broker keeps it for the next session), and the subscriber connection
// disconnects. Publishing goes on until Close, so that actions still
// running — webhooks that end in a dead letter, timers — can publish.
// A publish that OnMessage is waiting to make for room in the window is
// queued instead, so that this returns at once; Close's drain bounds it.
// It is safe to call more than once, and before Start.
func (c *Client) StopReceiving() {
	if !c.started.Load() {
		return
	}
	c.recvOnce.Do(c.stopReceiving)
}

func (c *Client) stopReceiving() {
	c.pq.mu.Lock()
	c.pq.closing = true
	c.pq.wake()
	c.pq.mu.Unlock()
	c.sub.stop()
	<-c.sub.done
	c.gate.Lock()
	c.gateClosed = true
	c.gate.Unlock()
	if s := c.sub.session(); s != nil {
		c.publishOffline(s, min(c.s.ConnectTimeout, statusTimeout))
		s.disconnect(quiesce)
	}
	if c.sub.isUp() {
		c.sub.setUp(false, nil)
		c.subscriberDown()
	}
}
