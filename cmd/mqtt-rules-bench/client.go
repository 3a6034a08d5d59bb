package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// Defaults for the zero values of clientOptions.
const (
	defaultWindow      = 1000
	defaultDialTimeout = 10 * time.Second
	defaultBufferSize  = 32 << 10
	closeTimeout       = 2 * time.Second
	maxWindow          = 60000 // leaves packet ids above it for SUBSCRIBE
)

// errClosed is returned by operations on a client closed by its owner.
var errClosed = errors.New("client closed")

// clientOptions configures dialClient.
type clientOptions struct {
	// ClientID is sent in CONNECT; it must be unique on the broker.
	ClientID string
	// CleanSession asks the broker not to keep a session [MQTT-3.1.2.4].
	CleanSession bool
	// KeepAlive is the keep-alive interval; 0 disables keep-alive. A
	// PINGREQ goes out when nothing was written for half of it.
	KeepAlive time.Duration
	// Window bounds the QoS 1 publishes awaiting PUBACK (default 1000,
	// at most 60000).
	Window int
	// OnPublish is called on the reader goroutine for every incoming
	// PUBLISH, before its PUBACK is queued. m and its slices are only valid
	// during the call. It must not block.
	OnPublish func(m *mqttwire.Publish)
	// DialTimeout bounds the TCP connect and the CONNACK (default 10s).
	DialTimeout time.Duration
	// BufferSize is the size of the read and write buffers (default 32 KiB).
	BufferSize int
	// AckDelay lets PUBACKs for incoming QoS 1 messages wait up to this
	// long in the write buffer, so one write carries many (at most
	// ackBatch wait). 0 writes them as soon as the reader has drained
	// what it received.
	AckDelay time.Duration
	// ReadDelay makes the reader pause this long whenever it has drained
	// what it received, so one wake-up handles many packets. Use it where
	// delivery latency does not matter: on a publisher, whose reader only
	// sees PUBACKs.
	ReadDelay time.Duration
}

// ackBatch is how many delayed PUBACKs are flushed without waiting.
const ackBatch = 256

// client is a minimal MQTT 3.1.1 client over one TCP connection: CONNECT,
// PUBLISH at QoS 0 and 1 with a bounded window of unacknowledged packet
// ids, SUBSCRIBE, keep-alive and DISCONNECT. Writes are buffered and
// coalesced: publishes reach the socket when the buffer fills, on Flush, or
// when the window is full; PUBACKs for incoming QoS 1 messages go out once
// the reader has drained the bytes it had received (or, with AckDelay,
// shortly after).
//
// Publish, Flush and WaitAcks may be called from one goroutine while the
// client's own reader goroutine handles incoming packets.
type client struct {
	conn      net.Conn
	rd        *mqttwire.Reader
	onPublish func(m *mqttwire.Publish)

	wmu        sync.Mutex // guards w and acksQueued
	w          *bufio.Writer
	acksQueued int // PUBACKs in w, not flushed yet

	ackDelay  time.Duration
	ackKick   chan struct{} // cap 1: acks wait for the delayed flush
	readDelay time.Duration

	lastWrite atomic.Int64 // unix ns of the last flush

	window     chan uint16   // free packet ids for QoS 1 publishes
	windowSize int           // cap(window)
	inflight   []atomic.Bool // by packet id: a QoS 1 publish awaits its PUBACK
	acked      chan struct{} // cap 1: a PUBACK freed an id

	subMu   sync.Mutex
	subID   uint16
	subWait map[uint16]chan []byte // SUBACK return codes by packet id

	pingresps atomic.Int64
	pubacks   atomic.Int64
	msg       mqttwire.Publish // the incoming PUBLISH, reused by the reader

	done      chan struct{} // closed when the reader goroutine exits
	readErr   error         // why the reader exited; read after done
	closing   atomic.Bool
	stop      chan struct{} // closed by Close: stops the pinger, the delayed flush and a pausing reader
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// brokerAddr turns tcp://host:port, mqtt://host:port or host:port into a
// dialable address (port 1883 by default).
func brokerAddr(broker string) (string, error) {
	hostport := broker
	if u, err := url.Parse(broker); err == nil && u.Scheme != "" && u.Host != "" {
		if u.Scheme != "tcp" && u.Scheme != "mqtt" {
			return "", fmt.Errorf("broker %q: only tcp:// and mqtt:// are supported", broker)
		}
		hostport = u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "1883")
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return "", fmt.Errorf("broker %q: %w", broker, err)
	}
	return hostport, nil
}

// dialClient connects to broker, completes CONNECT/CONNACK and starts the
// reader (and, with a keep-alive, the pinger). Close releases it.
func dialClient(ctx context.Context, broker string, o clientOptions) (*client, error) {
	addr, err := brokerAddr(broker)
	if err != nil {
		return nil, err
	}
	if o.Window <= 0 {
		o.Window = defaultWindow
	}
	if o.Window > maxWindow {
		return nil, fmt.Errorf("window %d over %d", o.Window, maxWindow)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.BufferSize <= 0 {
		o.BufferSize = defaultBufferSize
	}
	keepAlive := o.KeepAlive.Round(time.Second) / time.Second
	if keepAlive > 65535 || keepAlive < 0 {
		return nil, fmt.Errorf("keep-alive %v out of range", o.KeepAlive)
	}

	d := net.Dialer{Timeout: o.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &client{
		conn:       conn,
		rd:         mqttwire.NewReader(bufio.NewReaderSize(conn, o.BufferSize)),
		w:          bufio.NewWriterSize(conn, o.BufferSize),
		onPublish:  o.OnPublish,
		window:     make(chan uint16, o.Window),
		windowSize: o.Window,
		inflight:   make([]atomic.Bool, 65536),
		acked:      make(chan struct{}, 1),
		subID:      uint16(o.Window),
		subWait:    make(map[uint16]chan []byte),
		done:       make(chan struct{}),
		stop:       make(chan struct{}),
		ackDelay:   o.AckDelay,
		ackKick:    make(chan struct{}, 1),
		readDelay:  o.ReadDelay,
	}
	for id := 1; id <= o.Window; id++ {
		c.window <- uint16(id)
	}
	if err := c.connect(o.ClientID, o.CleanSession, uint16(keepAlive), o.DialTimeout); err != nil {
		conn.Close()
		return nil, err
	}
	c.lastWrite.Store(time.Now().UnixNano())
	go c.readLoop() // owner: c; exits when the connection fails or Close closes it
	if keepAlive > 0 {
		c.wg.Add(1)
		go c.keepAlive(o.KeepAlive) // owner: c; exits on Close or when the reader exits
	}
	if o.AckDelay > 0 {
		c.wg.Add(1)
		go c.delayedFlush() // owner: c; exits on Close or when the reader exits
	}
	return c, nil
}

// connect sends CONNECT and waits for a successful CONNACK.
func (c *client) connect(id string, clean bool, keepAliveSec uint16, timeout time.Duration) error {
	if err := c.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	pkt, err := mqttwire.AppendConnect(nil, mqttwire.Connect{ClientID: id, CleanSession: clean, KeepAlive: keepAliveSec})
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(pkt); err != nil {
		return fmt.Errorf("connect: send: %w", err)
	}
	p, err := c.rd.Next()
	if err != nil {
		return fmt.Errorf("connect: read connack: %w", err)
	}
	_, code, err := mqttwire.DecodeConnack(p)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if code != mqttwire.ConnackAccepted {
		return fmt.Errorf("connect %q: connection refused: %s", id, mqttwire.ConnackReason(code))
	}
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

// readLoop handles incoming packets until the connection ends. Whenever
// it has consumed all bytes received so far it flushes the PUBACKs it
// queued (or leaves them to delayedFlush), so a burst of messages is
// acknowledged with one write.
func (c *client) readLoop() {
	defer close(c.done)
	var (
		p     mqttwire.Packet
		err   error
		pause *time.Timer
	)
	if c.readDelay > 0 {
		pause = time.NewTimer(time.Hour)
		pause.Stop()
	}
	for {
		p, err = c.rd.Next()
		if err != nil {
			break
		}
		if err = c.handle(p); err != nil {
			break
		}
		if c.rd.Complete() {
			continue
		}
		if err = c.drained(); err != nil {
			break
		}
		if pause != nil {
			pause.Reset(c.readDelay)
			select {
			case <-pause.C:
			case <-c.stop:
			}
		}
	}
	if !c.closing.Load() {
		c.readErr = fmt.Errorf("connection lost: %w", err)
	}
	c.conn.Close() // unblocks a writer stuck on a dead connection
	c.subMu.Lock()
	for id, ch := range c.subWait {
		close(ch)
		delete(c.subWait, id)
	}
	c.subMu.Unlock()
}

// drained is called when the reader has consumed every byte received:
// queued PUBACKs are flushed now, or within ackDelay.
func (c *client) drained() error {
	c.wmu.Lock()
	n := c.acksQueued
	c.wmu.Unlock()
	switch {
	case n == 0:
		return nil
	case c.ackDelay == 0 || n >= ackBatch:
		return c.Flush()
	default:
		select {
		case c.ackKick <- struct{}{}:
		default:
		}
		return nil
	}
}

// delayedFlush flushes the write buffer ackDelay after the reader asked.
func (c *client) delayedFlush() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case <-c.ackKick:
		}
		t.Reset(c.ackDelay)
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case <-t.C:
		}
		_ = c.Flush() // a failed write also ends the reader; Err reports it
	}
}

// handle processes one incoming packet on the reader goroutine.
func (c *client) handle(p mqttwire.Packet) error {
	switch p.Type() {
	case mqttwire.TypePublish:
		m := &c.msg
		var err error
		if *m, err = mqttwire.DecodePublish(p); err != nil {
			return err
		}
		if m.QoS == 2 {
			return fmt.Errorf("qos 2 publish from the broker: not supported: %w", mqttwire.ErrMalformed)
		}
		if c.onPublish != nil {
			c.onPublish(m)
		}
		if m.QoS == 1 {
			c.wmu.Lock()
			_, _ = c.w.Write(mqttwire.AppendAck(c.w.AvailableBuffer(), mqttwire.TypePuback<<4, m.ID))
			c.acksQueued++
			c.wmu.Unlock()
		}
	case mqttwire.TypePuback:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		if c.inflight[id].CompareAndSwap(true, false) {
			c.pubacks.Add(1)
			c.window <- id // never blocks: id came out of the window
			select {
			case c.acked <- struct{}{}:
			default:
			}
		}
	case mqttwire.TypeSuback:
		id, err := mqttwire.DecodeID(p)
		if err != nil {
			return err
		}
		c.subMu.Lock()
		ch := c.subWait[id]
		delete(c.subWait, id)
		c.subMu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), p.Body[2:]...)
		}
	case mqttwire.TypePingresp:
		c.pingresps.Add(1)
	default:
		return fmt.Errorf("unexpected %s: %w", mqttwire.TypeName(p.Type()), mqttwire.ErrMalformed)
	}
	return nil
}

// keepAlive sends PINGREQ when nothing was written for half the interval.
func (c *client) keepAlive(interval time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case now := <-t.C:
			if now.UnixNano()-c.lastWrite.Load() >= int64(interval/2) {
				_ = c.Ping() // a failed write also ends the reader; Err reports it
			}
		}
	}
}

// err returns why the connection ended, or errClosed after Close.
func (c *client) err() error {
	<-c.done
	if c.readErr != nil {
		return c.readErr
	}
	return errClosed
}

// Done is closed when the connection has ended.
func (c *client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: nil while it is up or after Close.
func (c *client) Err() error {
	select {
	case <-c.done:
		return c.readErr
	default:
		return nil
	}
}

// Publish queues a PUBLISH in the write buffer. At QoS 1 it first takes a
// packet id from the window, flushing and waiting for a PUBACK when the
// window is full. payload may be reused once Publish returns.
func (c *client) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	var id uint16
	switch qos {
	case 0:
	case 1:
		select {
		case id = <-c.window:
		default:
			if err := c.Flush(); err != nil {
				return err
			}
			select {
			case id = <-c.window:
			case <-c.done:
				return c.err()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.inflight[id].Store(true)
	default:
		return fmt.Errorf("publish qos %d: only 0 and 1 are supported", qos)
	}
	c.wmu.Lock()
	_, _ = c.w.Write(mqttwire.AppendPublish(c.w.AvailableBuffer(), topic, payload, qos, false, false, id))
	werr := c.writeErr()
	c.wmu.Unlock()
	if werr != nil {
		return fmt.Errorf("publish %s: %w", topic, werr)
	}
	return nil
}

// writeErr returns the write buffer's sticky error. Callers hold wmu.
func (c *client) writeErr() error {
	// bufio.Writer keeps the first write error and returns it from every
	// later call; an empty Write reports it without writing.
	_, err := c.w.Write(nil)
	return err
}

// Flush writes the buffered packets to the connection.
func (c *client) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.Buffered() == 0 {
		return c.writeErr()
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	c.acksQueued = 0
	c.lastWrite.Store(time.Now().UnixNano())
	return nil
}

// WaitAcks flushes and waits until every QoS 1 publish was acknowledged.
func (c *client) WaitAcks(ctx context.Context) error {
	if err := c.Flush(); err != nil {
		return err
	}
	for len(c.window) < c.windowSize {
		select {
		case <-c.acked:
		case <-c.done:
			return c.err()
		case <-ctx.Done():
			return fmt.Errorf("wait for %d pubacks: %w", c.windowSize-len(c.window), ctx.Err())
		}
	}
	return nil
}

// InFlight returns how many QoS 1 publishes await their PUBACK.
func (c *client) InFlight() int { return c.windowSize - len(c.window) }

// Subscribe subscribes to filters at qos and waits for the SUBACK. A
// filter the broker refused is an error.
func (c *client) Subscribe(ctx context.Context, filters []string, qos byte) error {
	if len(filters) == 0 {
		return errors.New("subscribe: no filter")
	}
	ch := make(chan []byte, 1)
	c.subMu.Lock()
	c.subID++
	if c.subID == 0 || int(c.subID) <= c.windowSize {
		c.subID = uint16(c.windowSize + 1)
	}
	id := c.subID
	c.subWait[id] = ch
	c.subMu.Unlock()

	select {
	case <-c.done:
		return c.err()
	default:
	}
	c.wmu.Lock()
	_, _ = c.w.Write(mqttwire.AppendSubscribe(c.w.AvailableBuffer(), id, filters, qos))
	c.wmu.Unlock()
	if err := c.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	select {
	case <-c.done:
		return fmt.Errorf("subscribe: %w", c.err())
	case codes, ok := <-ch:
		if !ok {
			return fmt.Errorf("subscribe: %w", c.err())
		}
		if len(codes) != len(filters) {
			return fmt.Errorf("subscribe: %d return codes for %d filters: %w", len(codes), len(filters), mqttwire.ErrMalformed)
		}
		for i, code := range codes {
			if code == 0x80 {
				return fmt.Errorf("subscribe %q: refused by the broker", filters[i])
			}
		}
		return nil
	case <-ctx.Done():
		c.subMu.Lock()
		delete(c.subWait, id)
		c.subMu.Unlock()
		return fmt.Errorf("subscribe: %w", ctx.Err())
	}
}

// Ping sends PINGREQ at once; PingResponses counts the answers.
func (c *client) Ping() error {
	c.wmu.Lock()
	_ = c.w.WriteByte(mqttwire.TypePingreq << 4)
	_ = c.w.WriteByte(0)
	c.wmu.Unlock()
	return c.Flush()
}

// PingResponses returns how many PINGRESP packets arrived.
func (c *client) PingResponses() int64 { return c.pingresps.Load() }

// Close sends DISCONNECT (best effort, bounded by a write deadline),
// closes the connection and waits for the client's goroutines to exit.
// It returns the connection's error if it had already failed.
func (c *client) Close() error {
	c.closeOnce.Do(func() {
		failed := c.Err()
		c.closing.Store(true)
		close(c.stop)
		_ = c.conn.SetWriteDeadline(time.Now().Add(closeTimeout))
		c.wmu.Lock()
		_ = c.w.WriteByte(mqttwire.TypeDisconnect << 4)
		_ = c.w.WriteByte(0)
		_ = c.w.Flush()
		c.wmu.Unlock()
		c.conn.Close()
		<-c.done
		c.wg.Wait()
		c.closeErr = failed
	})
	return c.closeErr
}
