package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test unless ch is closed within d (a deadline, not a
// sleep: it returns as soon as ch is closed).
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

func TestServe(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	bound, err := Serve(ctx, "127.0.0.1:0", NewHandler(f.status, Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(bound, ":0") || !strings.HasPrefix(bound, "127.0.0.1:") {
		t.Fatalf("bound address %q, want 127.0.0.1 with the chosen port", bound)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/rules", "/api/status"} {
		if resp, body := get(t, "http://"+bound+path); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d\n%s", path, resp.StatusCode, body)
		}
	}
}

func TestServeAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = Serve(t.Context(), addr, http.NotFoundHandler(), nil)
	if err == nil {
		t.Fatalf("Serve on the taken %s: no error", addr)
	}
	msg := err.Error()
	if !strings.Contains(msg, addr) || !strings.Contains(msg, "address already in use") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming %s and \"address already in use\"", msg, addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q does not wrap EADDRINUSE", msg)
	}
}

func TestServeBadAddress(t *testing.T) {
	_, err := Serve(t.Context(), "127.0.0.1:notaport", http.NotFoundHandler(), nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Errorf("Serve on a bad address: %v, want an error naming it", err)
	}
}

// TestServeShutsDownOnCancel checks that ending the context stops the
// server, and that a request in flight finishes first.
func TestServeShutsDownOnCancel(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := NewHandler(&fakeStatus{}, Options{})
	h.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, err := Start(ctx, "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + r.Addr()

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	within(t, entered, 5*time.Second, "the slow request")

	cancel()
	select {
	case <-r.Done():
		t.Fatal("the server stopped with a request in flight")
	default:
	}
	close(release)
	if res := <-slow; res.err != nil || res.body != "done" {
		t.Errorf("the request in flight got %q, %v; want it to finish", res.body, res.err)
	}
	within(t, r.Done(), ShutdownTimeout+time.Second, "shutdown after cancel")
	if conn, err := net.Dial("tcp", r.Addr()); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after shutdown", r.Addr())
	}
}
