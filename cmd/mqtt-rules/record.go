package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
)

// recordFlushEvery is how often record writes what it buffered to the file.
const recordFlushEvery = 200 * time.Millisecond

// recordConnectTimeout bounds each connection attempt and the first
// subscription.
const recordConnectTimeout = 15 * time.Second

// recordOptions are the flags of `mqtt-rules record`.
type recordOptions struct {
	broker, clientID, username, password string
	caFile, certFile, keyFile            string
	topics                               stringList
	out                                  string
	qos                                  int
	count                                int
}

// recordCmd subscribes to filters and writes every message it receives as
// a JSON line (docs/testing.md, 6. Record and replay) until ctx ends
// (SIGINT/SIGTERM) or --count messages were written. It runs on the
// engine's MQTT client with a clean session: a capture wants what happens
// while it runs, not what a session queued before, and leaves no session
// on the broker.
func recordCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o recordOptions
	fs := newFlagSet("record", stderr, "record --broker URL --topic FILTER... [--out FILE] [flags]")
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "broker URL: tcp://, ssl://, mqtts://, ws://, wss://")
	fs.Var(&o.topics, "topic", "topic `FILTER` to record (repeatable, at least one)")
	fs.StringVar(&o.out, "out", "-", "capture `FILE` to write (created or truncated); - is standard output")
	fs.IntVar(&o.qos, "qos", 1, "QoS of the subscriptions (the engine subscribes at 1, so a capture at 1 shows the qos its rules see)")
	fs.IntVar(&o.count, "count", 0, "stop after this many messages (default: until SIGINT/SIGTERM)")
	fs.StringVar(&o.clientID, "client-id", "", "MQTT client id (default mqtt-rules-record-RANDOM; clean session)")
	fs.StringVar(&o.username, "username", os.Getenv("MQTT_USERNAME"), "MQTT username (env MQTT_USERNAME)")
	fs.StringVar(&o.password, "password", "", "MQTT password (env MQTT_PASSWORD)")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of the CAs that verify the broker's certificate")
	fs.StringVar(&o.certFile, "cert-file", "", "client certificate (PEM)")
	fs.StringVar(&o.keyFile, "key-file", "", "client key (PEM)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mqtt-rules record: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case len(pos) > 0:
		return usageErr("unexpected argument %q (filters go in --topic)", pos[0])
	case len(o.topics) == 0:
		fmt.Fprintln(stderr, "mqtt-rules record: name at least one --topic FILTER (# records everything)")
		fs.Usage()
		return exitUsage
	case o.qos < 0 || o.qos > 2:
		return usageErr("--qos %d: want 0, 1 or 2", o.qos)
	case o.count < 0:
		return usageErr("--count %d: must not be negative", o.count)
	}
	for _, f := range o.topics {
		if err := mqttc.ValidFilter(f); err != nil {
			return usageErr("--topic: %v", err)
		}
	}
	if o.password == "" {
		o.password = os.Getenv("MQTT_PASSWORD")
	}

	// The client reports through these until the recording starts; then
	// its warnings (a lost connection, failed reconnects) go to stderr.
	var (
		rec       *recorder
		recording atomic.Bool
		up        = make(chan struct{}, 1)
		connErr   = make(chan error, 1)
		logLevel  = new(slog.LevelVar)
	)
	logLevel.Set(slog.LevelError + 1) // nothing: record reports the first connect itself
	client, err := mqttc.New(o.clientOptions(
		slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel})),
		func(m mqttc.Message) {
			rec.write(dryrun.Record{Time: time.Now().UTC(), Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retained})
		},
		func(connected bool) {
			switch {
			case connected:
				select {
				case up <- struct{}{}:
				default:
				}
			case recording.Load():
				fmt.Fprintln(stderr, "mqtt-rules record: connection lost; reconnecting, messages meanwhile are not recorded")
			}
		},
		func(err error) {
			select {
			case connErr <- err:
			default:
			}
		},
	))
	if err != nil {
		return usageErr("%v", err)
	}
	shown := redactedURL(o.broker)

	w := stdout
	name := "standard output"
	if o.out != "-" {
		f, err := os.Create(o.out)
		if err != nil {
			fmt.Fprintf(stderr, "mqtt-rules record: %v\n", err)
			return exitInvalid
		}
		defer f.Close()
		w, name = f, o.out
	}
	rec = &recorder{w: bufio.NewWriterSize(w, 64<<10), limit: o.count, done: make(chan struct{})}

	client.Start()
	closeClient := sync.OnceFunc(func() {
		// Nothing is published: Close only disconnects.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = client.Close(cctx)
	})
	defer closeClient()
	select {
	case <-up:
	case err := <-connErr:
		fmt.Fprintf(stderr, "mqtt-rules record: connect to %s: %v\n", shown, err)
		return exitInvalid
	case <-ctx.Done():
		return exitOK
	}
	sctx, cancel := context.WithTimeout(ctx, recordConnectTimeout)
	err = client.Subscribe(sctx, o.topics...)
	cancel()
	switch {
	case ctx.Err() != nil:
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "mqtt-rules record: %v\n", err)
		return exitInvalid
	}
	recording.Store(true)
	logLevel.Set(slog.LevelWarn)
	fmt.Fprintf(stderr, "recording %s (%s) to %s; SIGINT (Ctrl-C) stops\n", shown, strings.Join(o.topics, ", "), name)

	tick := time.NewTicker(recordFlushEvery)
	defer tick.Stop()
	code := exitOK
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-rec.done:
			break loop
		case <-tick.C:
			if err := rec.flush(false); err != nil {
				fmt.Fprintf(stderr, "mqtt-rules record: write %s: %v\n", name, err)
				code = exitInvalid
				break loop
			}
		}
	}
	recording.Store(false)
	closeClient()
	n, err := rec.close()
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules record: write %s: %v\n", name, err)
		return exitInvalid
	}
	fmt.Fprintf(stderr, "recorded %d %s to %s\n", n, plural(n, "message"), name)
	return code
}

// recorder writes records as JSON lines. The MQTT client's reader calls
// write on its own goroutine; the command's goroutine flushes and closes.
type recorder struct {
	mu     sync.Mutex
	w      *bufio.Writer
	buf    []byte
	n      int
	limit  int // stop after this many; 0: no limit
	err    error
	closed bool
	done   chan struct{} // closed when limit is reached or a write failed
	once   sync.Once
}

func (r *recorder) write(rec dryrun.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.err != nil || (r.limit > 0 && r.n >= r.limit) {
		return
	}
	r.buf = rec.AppendJSON(r.buf[:0])
	if _, err := r.w.Write(r.buf); err != nil {
		r.err = err
		r.once.Do(func() { close(r.done) })
		return
	}
	r.n++
	if r.limit > 0 && r.n >= r.limit {
		r.once.Do(func() { close(r.done) })
	}
}

// flush writes what is buffered; with final it also stops further writes.
func (r *recorder) flush(final bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if final {
		r.closed = true
	}
	if r.err != nil {
		return r.err
	}
	r.err = r.w.Flush()
	return r.err
}

// close stops recording, flushes, and returns how many messages were
// written.
func (r *recorder) close() (int, error) {
	err := r.flush(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, err
}

// clientOptions returns the options of record's MQTT client: a clean
// session, subscriptions at --qos, a random client id unless --client-id
// names one, the first connection bounded by recordConnectTimeout.
func (o *recordOptions) clientOptions(log *slog.Logger, onMessage func(mqttc.Message), onConn func(bool), onConnErr func(error)) mqttc.Options {
	id := o.clientID
	if id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = "mqtt-rules-record-" + hex.EncodeToString(b)
	}
	qos := byte(o.qos)
	return mqttc.Options{
		Broker:             o.broker,
		ClientID:           id,
		Username:           o.username,
		Password:           o.password,
		CAFile:             o.caFile,
		CertFile:           o.certFile,
		KeyFile:            o.keyFile,
		CleanSession:       true,
		SubscribeQoS:       &qos,
		ConnectTimeout:     recordConnectTimeout,
		Logger:             log,
		OnMessage:          onMessage,
		OnConnectionChange: onConn,
		OnConnectError:     onConnErr,
	}
}

// redactedURL is the broker URL as messages show it: without a password.
// mqttc.New has checked that it parses.
func redactedURL(broker string) string {
	u, err := url.Parse(strings.TrimSpace(broker))
	if err != nil {
		return "the broker"
	}
	return u.Redacted()
}
