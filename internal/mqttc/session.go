package mqttc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// Buffer sizes of a session.
const (
	readBuffer  = 64 << 10 // a read takes up to this much of what the broker sent
	maxPending  = 64 << 10 // a writer in the message handler flushes itself beyond this
	maxKeepBuf  = 1 << 20  // a write buffer that grew beyond this is not kept
	minTick     = 10 * time.Millisecond
	pastSeconds = 1 // a deadline in the past (unix seconds) aborts blocked I/O
)

// errClosedByClient ends a session the Client closed itself.
var errClosedByClient = errors.New("connection closed by the client")

// errBrokerDisconnect ends a session the broker closed with DISCONNECT
// (which MQTT 3.1.1 brokers do not send, but MQTT 5 ones, and mochi on
// shutdown, do).
var errBrokerDisconnect = errors.New("the broker sent DISCONNECT")

// session is one network connection to the broker, from CONNECT to its
// end. Its reader goroutine reads every packet and hands it to the
// handler; writes go into a buffer that is written to the network in one
// system call by whoever flushes it: the reader when it has read all it
// had (its acknowledgements, and the publisher's publishes when it is the
// subscriber), a writer that filled it, or the flusher goroutine for
// writers on other goroutines. The flusher also keeps the connection alive.
type session struct {
	nc net.Conn
	pr *mqttwire.Reader

	pingAfter    int64 // ns without sending or receiving before a PINGREQ
	pingTimeout  int64 // ns a PINGREQ may go unanswered
	writeTimeout time.Duration
	tick         time.Duration
	readDelay    time.Duration // pause after each batch while busy (see read)
	mayPause     func() bool   // if set, the reader pauses only when it returns true
	quickAck     func()        // acknowledge what was received now (TCP_QUICKACK), or nil

	wmu     sync.Mutex
	wbuf    []byte
	pending atomic.Bool // wbuf is not empty

	flushMu   sync.Mutex // one flush at a time; guards the three below
	spare     []byte
	wdeadline time.Time
	quiescing bool // disconnect set the last deadline

	kick      chan struct{} // cap 1: the flusher should flush
	closed    chan struct{} // closed by fail: stops the flusher
	closeOnce sync.Once
	err       error         // why the session ended; read after closed
	done      chan struct{} // closed when the reader and the flusher exited

	lastRead  atomic.Int64 // unix ns of the last read that returned data
	handling  atomic.Bool  // the reader is in the handler, not reading
	lastWrite atomic.Int64 // unix ns of the last write
	pingSent  atomic.Int64 // unix ns of the unanswered PINGREQ, or 0

	ackMu    sync.Mutex
	ackID    uint16
	acks     map[uint16]chan ackResult // acknowledgements of requests by packet id
	acksDone bool                      // the session ended: requests fail at once

	onTick func(now time.Time) // called by the flusher every tick

	// The protocol, and under MQTT 5 what the broker's CONNACK set; they
	// do not change once the session started.
	v5        bool
	maxQoS    byte      // Maximum QoS the broker takes: 2 unless it said less
	noRetain  bool      // the broker said Retain Available 0
	maxPacket uint32    // the broker's Maximum Packet Size; 0: no limit
	sendMax   uint16    // the broker's Receive Maximum; 0 under 3.1.1
	aliasMax  uint16    // the Topic Alias Maximum sent in CONNECT
	noSubIDs  bool      // the broker said Subscription Identifiers Available 0
	aliases   []string  // topic names by inbound Topic Alias; only the reader uses it
	copies    copyGroup // the last message with subscription identifiers; only the reader uses it

	dropped      atomic.Bool // a publish's properties were left out (MQTT 3.1.1)
	dropReported atomic.Bool
}

// ackResult is the acknowledgement of a request: a SUBACK's or
// UNSUBACK's return or reason codes, a PUBACK's or PUBCOMP's reason code
// (MQTT 5; none under 3.1.1), and the Reason String that came with them.
type ackResult struct {
	codes  []byte
	reason string
}

// sessionConfig are the timing settings of a session.
type sessionConfig struct {
	keepAlive    time.Duration
	pingTimeout  time.Duration
	writeTimeout time.Duration
	tick         time.Duration // how often the flusher checks the keep-alive (and calls onTick)
	readDelay    time.Duration // see session.readDelay
}

func newSession(nc net.Conn, cfg sessionConfig) *session {
	s := &session{
		nc:     nc,
		kick:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		acks:   make(map[uint16]chan ackResult),
		maxQoS: 2,
	}
	s.configure(cfg)
	s.pr = mqttwire.NewReader(bufio.NewReaderSize(timedReader{s}, readBuffer))
	s.quickAck = quickAcker(nc)
	now := time.Now().UnixNano()
	s.lastRead.Store(now)
	s.lastWrite.Store(now)
	return s
}

// configure sets the session's timings; a session that has started keeps
// its tick. A keep-alive of 0 sends no PINGREQ (MQTT 5 Server Keep Alive
// 0, §3.2.2.3.14).
func (s *session) configure(cfg sessionConfig) {
	s.pingAfter = int64(cfg.keepAlive - cfg.tick)
	if cfg.keepAlive == 0 {
		s.pingAfter = math.MaxInt64
	}
	s.pingTimeout = int64(cfg.pingTimeout)
	s.writeTimeout = cfg.writeTimeout
	s.tick = max(cfg.tick, minTick)
	s.readDelay = cfg.readDelay
}

// timedReader records when the connection last delivered data.
type timedReader struct{ s *session }

func (t timedReader) Read(p []byte) (int, error) {
	n, err := t.s.nc.Read(p)
	if n > 0 {
		t.s.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// errNoConnack marks a connection the broker closed after CONNECT
// without answering it: a broker that does not speak MQTT 5 may do so
// to a version 5 CONNECT.
var errNoConnack = errors.New("the broker closed the connection without a CONNACK")

// handshake sends pkt, a CONNECT, and reads the answer, both bounded by
// ctx. It returns the packet, which the caller decodes before the reader
// starts.
func (s *session) handshake(ctx context.Context, pkt []byte) (mqttwire.Packet, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = s.nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.nc.SetDeadline(time.Unix(pastSeconds, 0)) })
	defer stop()
	fail := func(what string, err error) error {
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return ctx.Err()
		case ctx.Err() != nil, errors.Is(err, os.ErrDeadlineExceeded):
			// The socket's deadline is the context's: whichever of the two
			// timers fired first, the broker did not answer in time.
			return fmt.Errorf("%s: no answer within the connect timeout: %w", what, err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
			return fmt.Errorf("%s: %w: %w", what, errNoConnack, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := s.nc.Write(pkt); err != nil {
		return mqttwire.Packet{}, fail("send CONNECT", err)
	}
	p, err := s.pr.Next()
	if err != nil {
		return mqttwire.Packet{}, fail("read CONNACK", err)
	}
	if !stop() {
		return mqttwire.Packet{}, ctx.Err()
	}
	_ = s.nc.SetDeadline(time.Time{})
	return p, nil
}

// closeNow sends DISCONNECT with reason under MQTT 5 (a refusal of the
// CONNACK, before the reader started), waiting at most quiesce, and closes
// the connection.
func (s *session) closeNow(reason mqttwire.ReasonCode, detail string) {
	if s.v5 {
		if b, err := appendDisconnect5(nil, reason, detail); err == nil {
			_ = s.nc.SetWriteDeadline(time.Now().Add(quiesce))
			_, _ = s.nc.Write(b)
		}
	}
	_ = s.nc.Close()
}

// start runs the reader and the flusher. handle is called for every packet
// (an error ends the session); drain when the reader has handled every
// complete packet it has buffered, before it waits for the network: it
// writes what is pending and reports whether it wrote to s.
func (s *session) start(handle func(mqttwire.Packet) error, drain func() bool) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // owner: s; exits when the connection fails or is closed
		defer wg.Done()
		s.read(handle, drain)
	}()
	go func() { // owner: s; exits when s is closed
		defer wg.Done()
		s.flusher()
	}()
	go func() { // owner: s; exits right after the two above
		wg.Wait()
		s.failPending()
		close(s.done)
	}()
}

// Busy detection of a reader (see read): the packet rate is measured over
// windows of busyWindow; above busyEnter packets a second the reader
// pauses after each batch, below busyLeave it stops pausing.
const (
	busyWindow = 10 * time.Millisecond
	busyEnter  = 14000
	busyLeave  = 11000
)

// read is the reader's loop. Each time it has handled all it read, it
// drains (the writes that what it read caused go out in one system call
// per connection), and then:
//
//   - When it wrote nothing back to s, it makes the kernel acknowledge
//     what was read now (TCP_QUICKACK) rather than up to 40 ms later:
//     brokers that leave Nagle's algorithm on (mosquitto by default) hold
//     back the next message until then.
//   - When packets arrive faster than busyEnter a second, it pauses
//     readDelay before reading again, so that one read, one write and one
//     wake-up serve many packets; each then waits up to about readDelay
//     more. At lower rates it reads again at once and adds no latency.
func (s *session) read(handle func(mqttwire.Packet) error, drain func() bool) {
	var (
		n        int // packets handled since the reader last drained
		winStart = time.Now()
		winCount int
		busy     bool
	)
	for {
		if !s.pr.Complete() {
			wrote := drain()
			if n > 0 && !wrote && s.quickAck != nil {
				s.quickAck()
			}
			if s.readDelay > 0 && n > 0 {
				winCount += n
				if now := time.Now(); now.Sub(winStart) >= busyWindow {
					rate := float64(winCount) / now.Sub(winStart).Seconds()
					busy = rate >= busyEnter || (busy && rate >= busyLeave)
					winStart, winCount = now, 0
				}
				if busy && (s.mayPause == nil || s.mayPause()) {
					time.Sleep(s.readDelay)
				}
			}
			n = 0
		}
		n++
		p, err := s.pr.Next()
		if err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		s.handling.Store(true)
		err = handle(p)
		s.handling.Store(false)
		if err != nil {
			if s.v5 {
				err = s.abort(err)
			}
			s.fail(err)
			return
		}
	}
}

// abort sends DISCONNECT with the reason code for err when err is a
// breach of MQTT 5 by the broker [MQTT-4.13.1-1], and returns err saying
// so. It runs on the reader, before the session fails.
func (s *session) abort(err error) error {
	reason, ok := disconnectReason(err)
	if !ok || s.isClosed() {
		return err
	}
	s.flushMu.Lock()
	s.wdeadline = time.Now().Add(quiesce)
	s.quiescing = true
	_ = s.nc.SetWriteDeadline(s.wdeadline)
	s.flushMu.Unlock()
	b := s.begin()
	b, derr := appendDisconnect5(b, reason, err.Error())
	s.end(b)
	if derr != nil {
		return err
	}
	s.flushWith(false)
	return fmt.Errorf("%w (sent DISCONNECT %s)", err, reason)
}

// fail ends the session with err (the first call's err wins): the
// connection is closed, which ends the reader, and the flusher stops.
func (s *session) fail(err error) {
	s.closeOnce.Do(func() {
		s.err = err
		_ = s.nc.Close()
		close(s.closed)
	})
}

// isClosed reports whether the session has ended or is ending.
func (s *session) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// disconnect sends DISCONNECT, waiting at most timeout for it to be
// written, ends the session and waits for its goroutines.
func (s *session) disconnect(timeout time.Duration) {
	if !s.isClosed() {
		s.flushMu.Lock()
		s.wdeadline = time.Now().Add(timeout)
		s.quiescing = true
		_ = s.nc.SetWriteDeadline(s.wdeadline)
		s.flushMu.Unlock()
		b := s.begin()
		b = append(b, mqttwire.TypeDisconnect<<4, 0)
		s.end(b)
		s.flushWith(false)
		s.fail(errClosedByClient)
	}
	<-s.done
}

// begin locks the write buffer and returns it; end stores the appended
// buffer and unlocks. It returns the number of bytes pending.
func (s *session) begin() []byte { s.wmu.Lock(); return s.wbuf }

func (s *session) end(b []byte) int {
	s.wbuf = b
	n := len(b)
	if n > 0 {
		s.pending.Store(true)
	}
	s.wmu.Unlock()
	return n
}

// kickFlusher makes the flusher write what is pending.
func (s *session) kickFlusher() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush writes what is pending in one system call and reports whether
// there was something to write.
func (s *session) flush() bool { return s.flushWith(true) }

func (s *session) flushWith(deadline bool) bool {
	if !s.pending.Load() {
		return false
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.wmu.Lock()
	out := s.wbuf
	s.wbuf = s.spare[:0]
	s.pending.Store(false)
	s.wmu.Unlock()
	if len(out) > 0 && !s.isClosed() {
		now := time.Now()
		if deadline && !s.quiescing && s.wdeadline.Sub(now) < s.writeTimeout/2 {
			// Refreshed only when half used up: not a timer change per write.
			s.wdeadline = now.Add(s.writeTimeout)
			_ = s.nc.SetWriteDeadline(s.wdeadline)
		}
		if _, err := s.nc.Write(out); err != nil {
			s.fail(fmt.Errorf("write: %w", err))
		} else {
			s.lastWrite.Store(now.UnixNano())
		}
	}
	if cap(out) > maxKeepBuf {
		out = nil
	}
	s.spare = out[:0]
	return true
}

func (s *session) flusher() {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-s.kick:
			// Let the writer that kicked add what it has at hand.
			runtime.Gosched()
			s.flush()
		case now := <-t.C:
			s.keepAlive(now)
			if s.onTick != nil {
				s.onTick(now)
			}
		case <-s.closed:
			return
		}
	}
}

// keepAlive sends PINGREQ when nothing was sent or received for a while
// [MQTT-3.1.2-23], and ends the session when the broker stays silent
// after one.
func (s *session) keepAlive(now time.Time) {
	n := now.UnixNano()
	if sent := s.pingSent.Load(); sent != 0 {
		if s.lastRead.Load() >= sent {
			s.pingSent.Store(0) // the broker answered (or sent anything)
		} else {
			// While the reader is in the handler (e.g. waiting for room
			// to publish), the answer may be in the socket unread: only
			// a reader that reads and finds none proves the broker silent.
			if n-sent >= s.pingTimeout && !s.handling.Load() {
				s.fail(fmt.Errorf("no answer to PINGREQ within %v", time.Duration(s.pingTimeout)))
			}
			return
		}
	}
	if n-s.lastWrite.Load() >= s.pingAfter || n-s.lastRead.Load() >= s.pingAfter {
		s.pingSent.Store(n)
		b := s.begin()
		b = append(b, mqttwire.TypePingreq<<4, 0)
		s.end(b)
		s.flush()
	}
}

// request sends an (UN)SUBSCRIBE, or a PUBLISH at QoS 1, built by build
// with a fresh packet id, and returns the channel its acknowledgement
// arrives on; the channel is closed without one when the session ends
// first. An error of build is returned, and nothing sent.
func (s *session) request(build func(b []byte, id uint16) ([]byte, error)) (uint16, chan ackResult, error) {
	ch := make(chan ackResult, 1)
	s.ackMu.Lock()
	if s.acksDone {
		s.ackMu.Unlock()
		close(ch)
		return 0, ch, nil
	}
	// Ids count down from 65535. Client and server number their packets
	// independently (MQTT 3.1.1 §2.3.1), but mochi v2.7.9 refuses a
	// SUBSCRIBE or UNSUBSCRIBE whose id is that of one of its own messages
	// in flight to the client, and brokers number those up from 1: after a
	// reconnect to a session that holds messages, a resubscription with id
	// 1 was refused.
	for {
		s.ackID--
		if s.ackID == 0 {
			s.ackID = 65535
		}
		if _, busy := s.acks[s.ackID]; !busy {
			break
		}
	}
	id := s.ackID
	s.acks[id] = ch
	s.ackMu.Unlock()
	b := s.begin()
	b, err := build(b, id)
	s.end(b)
	if err != nil {
		s.forget(id)
		return 0, nil, err
	}
	s.kickFlusher()
	return id, ch, nil
}

// forget drops the wait for the acknowledgement of id.
func (s *session) forget(id uint16) {
	s.ackMu.Lock()
	delete(s.acks, id)
	s.ackMu.Unlock()
}

// acked delivers an acknowledgement (its codes copied) to the request
// waiting for id; an acknowledgement nobody waits for is ignored.
func (s *session) acked(id uint16, codes []byte, reason string) {
	s.ackMu.Lock()
	ch := s.acks[id]
	delete(s.acks, id)
	s.ackMu.Unlock()
	if ch != nil {
		ch <- ackResult{codes: append([]byte{}, codes...), reason: reason}
	}
}

// failPending closes the channels of requests still waiting: the session
// ended before their acknowledgement.
func (s *session) failPending() {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.acksDone = true
	for id, ch := range s.acks {
		close(ch)
		delete(s.acks, id)
	}
}

// appendPublish appends a PUBLISH in the session's protocol, with props
// under MQTT 5; under 3.1.1 it leaves them out and records that it did.
// On error b is returned unchanged: under MQTT 5 a retained publish the
// broker does not support, a packet over its Maximum Packet Size,
// properties MQTT cannot carry.
func (s *session) appendPublish(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16, props *actions.Properties) ([]byte, error) {
	if s.v5 || props != nil {
		return s.appendPublishOther(b, topic, payload, qos, retain, dup, id, props)
	}
	return mqttwire.AppendPublish(b, topic, payload, qos, retain, dup, id), nil
}

// plain reports whether a publish with props is a plain 3.1.1 PUBLISH on
// s, which the hot paths append with mqttwire.AppendPublish themselves
// (as before MQTT 5: appendPublish is too big to inline).
func (s *session) plain(props *actions.Properties) bool { return !s.v5 && props == nil }

// appendPublishOther is appendPublish but for plain 3.1.1 publishes.
func (s *session) appendPublishOther(b []byte, topic string, payload []byte, qos byte, retain, dup bool, id uint16, props *actions.Properties) ([]byte, error) {
	if s.v5 {
		return s.appendPublish5(b, topic, payload, qos, retain, dup, id, props)
	}
	if !s.dropped.Load() && hasProperties(props) {
		s.dropped.Store(true)
	}
	return mqttwire.AppendPublish(b, topic, payload, qos, retain, dup, id), nil
}

// publishQoS returns the QoS a publish at qos is sent with on s: at most
// the broker's Maximum QoS [MQTT-3.2.2-11].
func (s *session) publishQoS(qos byte) byte { return min(qos, s.maxQoS) }
