// Package broker runs the embedded MQTT broker that `mqtt-rules run` starts
// when no --broker is given, so a newcomer needs nothing else installed.
//
// It is a mochi-mqtt v2 server with one plain TCP listener and no
// authentication: it is meant for a laptop or a single host, bound to
// 127.0.0.1 by default.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	ln   *trackedListener
	addr string
}

// closeGrace is how long Close lets connections that are ending (a client
// that just disconnected) close before it stops the server.
const closeGrace = time.Second

// ErrAddrInUse is wrapped by the error Start returns when the listen address
// is already taken (typically by another MQTT broker).
var ErrAddrInUse = errors.New("address already in use")

// Start starts an embedded broker listening on addr ("host:port"; port 0
// picks a free port, see Addr). The broker's own log lines at warn level
// and above go to logger (nil discards them). When the port is taken the
// error is one line that says so and which flags to use instead.
func Start(addr string, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{
		Logger:                 slog.New(&warnHandler{next: logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "embedded-broker")})}),
		InlineClient:           false,
		SysTopicResendInterval: 10,
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded broker: add auth hook: %w", err)
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		_ = srv.Close()
		return nil, listenError(addr, err)
	}
	tl := &trackedListener{Listener: nl}
	l := listeners.NewNet("tcp", tl)
	if err := srv.AddListener(l); err != nil {
		_ = nl.Close()
		_ = srv.Close()
		return nil, listenError(addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded broker: serve on %s: %w", addr, err)
	}
	return &Broker{srv: srv, ln: tl, addr: l.Address()}, nil
}

// Addr returns the address the broker listens on, with the actual port
// when Start was given port 0.
func (b *Broker) Addr() string { return b.addr }

// URL returns the broker's address as a client URL, "tcp://host:port",
// with a wildcard host (0.0.0.0, ::) replaced by the loopback address.
func (b *Broker) URL() string { return "tcp://" + dialAddr(b.addr) }

// Close stops the listener and disconnects every client. Connections that
// are ending get closeGrace to close first: mochi v2.7.9's Server.Close is
// not ordered after the goroutines that established them (a data race
// under -race, mochi-mqtt/server#541); one that closed before is.
func (b *Broker) Close() error {
	b.ln.waitIdle(closeGrace)
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("embedded broker: close: %w", err)
	}
	return nil
}

// addrInUseError is the one-line error for a taken listen address.
type addrInUseError struct {
	addr string
	err  error
}

// Error returns the one-line message.
func (e *addrInUseError) Error() string {
	return fmt.Sprintf("embedded broker: listen tcp %s: address already in use "+
		"(another broker is running there? pass --broker tcp://%s to use it, or --embedded-broker ADDR)",
		e.addr, dialAddr(e.addr))
}

// Unwrap returns ErrAddrInUse and the listen error.
func (e *addrInUseError) Unwrap() []error { return []error{ErrAddrInUse, e.err} }

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &addrInUseError{addr: addr, err: err}
	}
	return fmt.Errorf("embedded broker: %w", err)
}

// dialAddr turns a listen address into one a client can dial: an empty or
// wildcard host becomes 127.0.0.1.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch strings.Trim(host, "[]") {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ordinaryEnd reports whether r is mochi's per-connection record for a
// connection that simply ended: the client sent DISCONNECT (mochi then reads
// from the closed socket) or closed its socket. Those are not warnings.
func ordinaryEnd(r slog.Record) bool {
	ordinary := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			ordinary = errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
			return false
		}
		return true
	})
	return ordinary
}

// warnHandler passes records at warn level and above to next. mochi logs
// per-connection errors with an empty message; those get a readable one,
// and the ones that only say the connection ended are dropped.
type warnHandler struct {
	next slog.Handler
}

// Enabled is true from warn level on.
func (h *warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.next.Enabled(ctx, l)
}

// Handle passes r on, dropping or renaming mochi's per-connection records.
func (h *warnHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		if ordinaryEnd(r) {
			return nil
		}
		nr := slog.NewRecord(r.Time, r.Level, "client connection ended with an error", r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		r = nr
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnHandler{next: h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h *warnHandler) WithGroup(name string) slog.Handler {
	return &warnHandler{next: h.next.WithGroup(name)}
}

// trackedListener counts the connections it accepted that are still open.
type trackedListener struct {
	net.Listener
	mu   sync.Mutex
	open int
	idle chan struct{} // closed when open drops to 0 while waitIdle waits
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

// waitIdle returns once no accepted connection is open, or after d.
func (l *trackedListener) waitIdle(d time.Duration) {
	l.mu.Lock()
	if l.open == 0 {
		l.mu.Unlock()
		return
	}
	if l.idle == nil {
		l.idle = make(chan struct{})
	}
	idle := l.idle
	l.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

type trackedConn struct {
	net.Conn
	l    *trackedListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		l.open--
		if l.open == 0 && l.idle != nil {
			close(l.idle)
			l.idle = nil
		}
		l.mu.Unlock()
	})
	return err
}
