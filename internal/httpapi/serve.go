package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// ShutdownTimeout bounds how long a server waits for requests in flight
// once its context ends; the connections still open then are closed.
const ShutdownTimeout = 5 * time.Second

// Running is an HTTP server started by Start.
type Running struct {
	addr string
	done chan struct{}
}

// Addr returns the address the server listens on, with the port chosen
// when the one asked for was 0.
func (r *Running) Addr() string { return r.addr }

// Done is closed once the server has shut down after its context ended.
func (r *Running) Done() <-chan struct{} { return r.done }

// Start listens on addr and serves h in the background until ctx ends,
// then shuts down gracefully within ShutdownTimeout. An address that cannot
// be listened on (taken, say) is an error at once, one line naming it.
func Start(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*Running, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	// Requests' contexts end when shutdown starts, so long-lived answers
	// (the status page's event stream) return instead of holding the
	// shutdown for ShutdownTimeout; short requests finish as before.
	base, stopStreams := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(stopStreams)
	r := &Running{addr: ln.Addr().String(), done: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		defer close(r.done)
		defer stopStreams()
		select {
		case err := <-served:
			// Serve only returns on its own when accepting fails for good.
			log.Error("http server stopped", "addr", r.addr, "err", err)
			return
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("http server: requests still running at shutdown were cut", "addr", r.addr, "err", err)
			srv.Close()
		}
		<-served
	}()
	log.Info("http server listening", "addr", r.addr)
	return r, nil
}

// Serve is Start returning only the bound address: it listens on addr (an
// error at once when it cannot), serves h until ctx ends, then shuts down
// gracefully within ShutdownTimeout.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (bound string, err error) {
	r, err := Start(ctx, addr, h, log)
	if err != nil {
		return "", err
	}
	return r.Addr(), nil
}

// listenError turns a listen error into one line naming the address and
// the cause, without net's "listen tcp" prefix.
func listenError(addr string, err error) error {
	cause := err
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		cause = oe.Err
		var se *os.SyscallError
		if errors.As(cause, &se) {
			cause = se.Err
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--http %s: %w (another process listens there; pass another --http address, or --http off)", addr, cause)
	}
	return fmt.Errorf("--http %s: cannot listen: %w", addr, cause)
}
