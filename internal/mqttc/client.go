// Package mqttc is the engine's MQTT connection: it subscribes to the rule
// set's topic filters and hands every message to the engine, and it
// publishes the rules' publish actions.
//
// A Client holds two MQTT connections to the same broker. The subscriber
// (ClientID, persistent session, QoS 1 subscriptions) receives; the
// publisher (ClientID+"-pub", clean session) sends. On a single connection
// at QoS 1 a receive path that waits for publishes deadlocks (PUBACKs queue
// behind PUBLISH packets paho cannot hand over); two connections keep the
// paths independent.
//
// Both connections are (re)established by the Client itself, with
// exponential backoff up to Options.MaxReconnectInterval, rather than by
// paho's AutoReconnect: paho resends unacknowledged QoS 1 publishes after
// an automatic reconnect and completes their original tokens without an
// error at that moment, before any PUBACK, which would report publishes as
// delivered that are not yet. With our own reconnect the tokens fail on
// connection loss and the Client publishes those messages again itself.
package mqttc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// ackTimeout bounds the wait for a SUBACK or UNSUBACK.
const ackTimeout = 30 * time.Second

// quiesce is how long a disconnect waits for the DISCONNECT to be sent.
const quiesce = 250 * time.Millisecond

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
	closeErr  error

	// connMu orders Connect calls against Close setting the stop channels.
	connMu  sync.Mutex
	subStop chan struct{} // closed by Close: the subscriber stops
	pubStop chan struct{} // closed by Close after the drain: the publisher stops

	// Subscriptions; mu guards the fields below it.
	mu           sync.Mutex
	closing      bool
	subUp        bool
	epoch        uint64              // changes whenever the subscriber connects or disconnects
	desired      map[string]struct{} // plain filters the caller wants
	acked        map[string]struct{} // desired filters acknowledged on this connection (epoch)
	pendingUnsub map[string]struct{} // removed filters the broker session may still hold
	cbMu         sync.Mutex          // serializes OnConnectionChange calls in order of changes
	opSem        chan struct{}       // cap 1: one (un)subscribe exchange at a time

	// gate stops OnMessage calls once Close has disconnected the subscriber.
	gate       sync.RWMutex
	gateClosed bool

	pq publishQueue

	wg sync.WaitGroup // every goroutine the Client starts
}

// conn is one of the two paho connections and the state the Client keeps
// about it.
type conn struct {
	role string // "subscriber" or "publisher"
	id   string // client id
	cli  paho.Client
	log  *slog.Logger
	lost chan struct{} // cap 1: paho reported the connection lost
	done chan struct{} // closed when the connection's goroutine exits

	mu      sync.Mutex
	up      bool
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
		subStop:      make(chan struct{}),
		pubStop:      make(chan struct{}),
		desired:      make(map[string]struct{}),
		acked:        make(map[string]struct{}),
		pendingUnsub: make(map[string]struct{}),
		opSem:        make(chan struct{}, 1),
	}
	c.pq.init(s.PublishQueue, s.PublishInFlight)
	c.sub = c.newConn("subscriber", s.ClientID, false)
	c.pub = c.newConn("publisher", s.ClientID+"-pub", true)
	return c, nil
}

func (c *Client) newConn(role, id string, clean bool) *conn {
	cn := &conn{
		role:    role,
		id:      id,
		log:     c.log.With("client_id", id, "connection", role),
		lost:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	s := c.s
	dialer := &net.Dialer{Timeout: s.ConnectTimeout, KeepAlive: 30 * time.Second}
	o := paho.NewClientOptions().
		AddBroker(s.url).
		SetClientID(id).
		SetCleanSession(clean).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetProtocolVersion(4).
		SetKeepAlive(s.KeepAlive).
		SetConnectTimeout(s.ConnectTimeout).
		SetWriteTimeout(s.ConnectTimeout).
		SetDialer(dialer).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			cn.log.Warn("connection to broker lost", "err", err)
			select {
			case cn.lost <- struct{}{}:
			default:
			}
		})
	if s.Username != "" {
		o.SetUsername(s.Username).SetPassword(s.Password)
	}
	if s.tls != nil {
		o.SetTLSConfig(s.tls)
	}
	if s.scheme == "tcp" && os.Getenv("ALL_PROXY") == "" && os.Getenv("all_proxy") == "" {
		// Buffered reads and coalesced writes (see fastConn).
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			nc, err := dialer.Dial("tcp", u.Host)
			if err != nil {
				return nil, err
			}
			return newFastConn(nc), nil
		})
	}
	if !clean {
		o.SetDefaultPublishHandler(c.handle)
	}
	cn.cli = paho.NewClient(o)
	return cn
}

// handle is the subscriber's only message handler (no per-subscription
// callbacks), so each PUBLISH packet reaches OnMessage exactly once, even
// when several subscriptions match it.
func (c *Client) handle(_ paho.Client, m paho.Message) {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.gateClosed || c.s.OnMessage == nil {
		// After Close sent DISCONNECT the acknowledgement can no longer
		// reach the broker, which delivers a QoS 1 message again.
		return
	}
	c.s.OnMessage(Message{
		Topic:     m.Topic(),
		Payload:   m.Payload(),
		QoS:       m.Qos(),
		Retained:  m.Retained(),
		Duplicate: m.Duplicate(),
	})
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
		c.wg.Add(4)
		c.mu.Unlock()
		go c.run(c.sub, c.subStop, c.subscriberUp, c.subscriberDown)
		go c.run(c.pub, c.pubStop, func(bool) {}, func() {})
		go c.sendLoop()
		go c.waitLoop()
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

// run keeps cn connected until stop is closed: it connects with backoff,
// calls up after each successful connect and down after each loss. It is
// the only caller of cn.cli.Connect.
func (c *Client) run(cn *conn, stop <-chan struct{}, up func(sessionPresent bool), down func()) {
	defer c.wg.Done()
	defer close(cn.done)
	var (
		backoff  time.Duration
		failures int
		lastLog  time.Time
	)
	health := time.NewTicker(5 * time.Second)
	defer health.Stop()
	for {
		// Connect, retrying with backoff.
		var tok *paho.ConnectToken
		for {
			c.connMu.Lock()
			select {
			case <-stop:
				c.connMu.Unlock()
				return
			default:
			}
			tok = cn.cli.Connect().(*paho.ConnectToken)
			c.connMu.Unlock()
			select {
			case <-tok.Done():
			case <-stop:
				return
			}
			if tok.Error() == nil {
				break
			}
			failures++
			backoff = nextBackoff(backoff, c.s.MaxReconnectInterval)
			if failures <= failureLogFirst || time.Since(lastLog) >= failureLogEvery {
				lastLog = time.Now()
				logConnectFailure(cn.log, tok.ReturnCode(), tok.Error(), failures, backoff)
			}
			if !sleep(backoff, stop) {
				return
			}
		}
		if failures > 0 {
			cn.log.Info("connected to broker", "failed_attempts", failures)
		} else {
			cn.log.Info("connected to broker")
		}
		failures, lastLog = 0, time.Time{}
		since := time.Now()
		cn.setUp(true)
		up(tok.SessionPresent())

		// Wait for the connection to end.
	wait:
		for {
			select {
			case <-cn.lost:
				if !cn.cli.IsConnectionOpen() {
					break wait
				}
			case <-health.C:
				// Belt and braces, should a loss notification go missing.
				if !cn.cli.IsConnectionOpen() && !cn.cli.IsConnected() {
					break wait
				}
			case <-stop:
				return
			}
		}
		cn.setUp(false)
		down()
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

// refusals describes the CONNACK return codes of MQTT 3.1.1 §3.2.2.3.
var refusals = map[byte]string{
	packets.ErrRefusedBadProtocolVersion:    "unacceptable protocol version",
	packets.ErrRefusedIDRejected:            "client identifier rejected",
	packets.ErrRefusedServerUnavailable:     "server unavailable",
	packets.ErrRefusedBadUsernameOrPassword: "bad username or password",
	packets.ErrRefusedNotAuthorised:         "not authorized",
}

// logConnectFailure logs a failed connection attempt: a CONNACK refusal
// (rc) as an error saying what the broker answered, anything else as a
// warning with the cause.
func logConnectFailure(log *slog.Logger, rc byte, err error, attempts int, retry time.Duration) {
	retryIn := retry.Round(100 * time.Millisecond).String()
	if answer, ok := refusals[rc]; ok {
		log.Error("broker refused the connection: "+answer,
			"connack_code", rc, "attempts", attempts, "retry_in", retryIn)
		return
	}
	// paho wraps network errors as "network Error : <cause>"; keep the cause.
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) == 2 && errors.Is(errs[0], packets.ErrorNetworkError) && errs[1] != nil {
			err = errs[1]
		}
	}
	log.Warn("cannot connect to broker", "err", err, "attempts", attempts, "retry_in", retryIn)
}

func (cn *conn) setUp(up bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
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

	// 1. Stop taking messages.
	c.connMu.Lock()
	close(c.subStop)
	c.connMu.Unlock()
	<-c.sub.done
	c.sub.cli.Disconnect(uint(quiesce / time.Millisecond))
	c.gate.Lock()
	c.gateClosed = true
	c.gate.Unlock()
	if c.sub.isUp() {
		c.sub.setUp(false)
		c.subscriberDown()
	}

	// 2. Drain the publish queue and the in-flight window.
	var err error
	close(c.pq.draining)
	select {
	case <-c.pq.waiterDone:
	case <-ctx.Done():
		close(c.pq.abort)
		<-c.pq.waiterDone
	}
	if n := c.pq.shut() + int(c.pq.abortedN.Load()); n > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = errShuttingDown // published while Close was finishing
		}
		err = fmt.Errorf("close: %d publishes not sent: %w", n, cause)
	}

	// 3. Disconnect the publisher.
	c.connMu.Lock()
	close(c.pubStop)
	c.connMu.Unlock()
	<-c.pub.done
	c.pub.cli.Disconnect(uint(quiesce / time.Millisecond))
	c.pub.setUp(false)

	c.wg.Wait()
	c.log.Info("mqtt connection closed", "client_id", c.s.ClientID)
	return err
}
