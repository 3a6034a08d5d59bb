package mqttc

import (
	"bufio"
	"net"
	"runtime"
	"sync"
)

// maxPending is how many bytes a fastConn buffers before a Write flushes
// them itself instead of leaving it to the flusher.
const maxPending = 64 << 10

// fastConn wraps a TCP connection for paho, which reads a packet in about
// three small reads and writes each packet with its own write: reads go
// through a buffer, and writes are coalesced — Write appends to a buffer
// that a flusher goroutine writes out as soon as the writer yields, so
// packets written back to back share one system call. At 30,000 msg/s this
// removes most of the engine's system calls (see BENCHMARKS.md).
//
// A write error is returned by the next Write; Close flushes first.
type fastConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	pending []byte
	err     error

	flushMu sync.Mutex // one flush at a time
	spare   []byte

	kick      chan struct{} // cap 1: there is something to flush
	closed    chan struct{}
	closeOnce sync.Once
	done      chan struct{} // the flusher exited
}

func newFastConn(c net.Conn) *fastConn {
	f := &fastConn{
		Conn:   c,
		r:      bufio.NewReaderSize(c, 32<<10),
		kick:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	go f.flusher() // owner: f; exits on Close
	return f
}

// Read reads through the buffer.
func (f *fastConn) Read(p []byte) (int, error) { return f.r.Read(p) }

// Write queues p for the flusher.
func (f *fastConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return 0, err
	}
	f.pending = append(f.pending, p...)
	full := len(f.pending) >= maxPending
	f.mu.Unlock()
	if full {
		if err := f.flush(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (f *fastConn) flusher() {
	defer close(f.done)
	for {
		select {
		case <-f.kick:
		case <-f.closed:
			return
		}
		// Let the writer queue what it has at hand before writing.
		runtime.Gosched()
		f.flush()
	}
}

// flush writes what is pending.
func (f *fastConn) flush() error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	f.mu.Lock()
	out := f.pending
	f.pending = f.spare[:0]
	err := f.err
	f.mu.Unlock()
	if err == nil && len(out) > 0 {
		if _, err = f.Conn.Write(out); err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
		}
	}
	f.spare = out[:0]
	return err
}

// Close flushes what is pending, stops the flusher and closes the
// connection.
func (f *fastConn) Close() error {
	f.closeOnce.Do(func() {
		f.flush()
		close(f.closed)
		<-f.done
	})
	return f.Conn.Close()
}
