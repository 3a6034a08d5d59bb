package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
)

// recordFlushEvery is how often record writes what it buffered to the file.
const recordFlushEvery = 200 * time.Millisecond

// recordConnectTimeout bounds the first connection and the subscription.
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
// a JSON line (docs/testing.md, 6. Record and replay) until ctx ends (SIGINT/SIGTERM) or --count
// messages were written.
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
	copts, shown, err := o.clientOptions()
	if err != nil {
		return usageErr("%v", err)
	}

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
	rec := &recorder{w: bufio.NewWriterSize(w, 64<<10), limit: o.count, done: make(chan struct{})}
	copts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		rec.write(dryrun.Record{Time: time.Now().UTC(), Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retain: m.Retained()})
	})
	subscribed := make(chan error, 1)
	var first atomic.Bool
	first.Store(true)
	copts.SetOnConnectHandler(func(c paho.Client) {
		// A clean session forgets subscriptions: subscribe on every connect.
		filters := make(map[string]byte, len(o.topics))
		for _, f := range o.topics {
			filters[f] = byte(o.qos)
		}
		tok := c.SubscribeMultiple(filters, nil)
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
			if err == nil {
				for f, code := range tok.(*paho.SubscribeToken).Result() {
					if code > 2 {
						err = fmt.Errorf("subscribe %q: refused by the broker", f)
					}
				}
			}
		case <-time.After(recordConnectTimeout):
			err = fmt.Errorf("subscribe: no answer from the broker within %v", recordConnectTimeout)
		}
		if first.Swap(false) {
			subscribed <- err
		} else if err != nil {
			fmt.Fprintf(stderr, "mqtt-rules record: after reconnecting: %v\n", err)
		}
	})
	copts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		fmt.Fprintf(stderr, "mqtt-rules record: connection lost (%v); reconnecting, messages meanwhile are not recorded\n", err)
	})
	client := paho.NewClient(copts)
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return exitOK
	case <-time.After(recordConnectTimeout):
		fmt.Fprintf(stderr, "mqtt-rules record: connect to %s: no answer within %v\n", shown, recordConnectTimeout)
		return exitInvalid
	}
	if err := tok.Error(); err != nil {
		fmt.Fprintf(stderr, "mqtt-rules record: connect to %s: %v\n", shown, err)
		return exitInvalid
	}
	disconnect := sync.OnceFunc(func() { client.Disconnect(250) })
	defer disconnect()
	select {
	case err := <-subscribed:
		if err != nil {
			fmt.Fprintf(stderr, "mqtt-rules record: %v\n", err)
			return exitInvalid
		}
	case <-ctx.Done():
		return exitOK
	}
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
	disconnect()
	n, err := rec.close()
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules record: write %s: %v\n", name, err)
		return exitInvalid
	}
	fmt.Fprintf(stderr, "recorded %d %s to %s\n", n, plural(n, "message"), name)
	return code
}

// recorder writes records as JSON lines. paho calls write on its own
// goroutine; the command's goroutine flushes and closes.
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

// clientOptions builds the paho options: a clean session (a capture wants
// what happens while it runs, not what a session queued before), automatic
// reconnects. It returns the broker URL fit for messages (no password).
func (o *recordOptions) clientOptions() (*paho.ClientOptions, string, error) {
	u, err := url.Parse(strings.TrimSpace(o.broker))
	if err != nil || u.Scheme == "" || u.Hostname() == "" {
		return nil, "", fmt.Errorf("--broker %q: want a URL such as tcp://broker.lan:1883", o.broker)
	}
	ports := map[string]string{"tcp": "1883", "mqtt": "1883", "ssl": "8883", "mqtts": "8883", "tls": "8883", "ws": "80", "wss": "443"}
	port, ok := ports[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, "", fmt.Errorf("--broker %q: unsupported scheme %q (use tcp://, mqtt://, ssl://, mqtts://, tls://, ws:// or wss://)", u.Redacted(), u.Scheme)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Port() == "" {
		u.Host = u.Hostname() + ":" + port
		if strings.Contains(u.Hostname(), ":") {
			u.Host = "[" + u.Hostname() + "]:" + port
		}
	}
	secure := port == "8883" || u.Scheme == "wss"
	if !secure && (o.caFile != "" || o.certFile != "" || o.keyFile != "") {
		return nil, "", fmt.Errorf("--broker %q does not use TLS but a CA, certificate or key file is given (use ssl:// or wss://)", u.Redacted())
	}
	id := o.clientID
	if id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = "mqtt-rules-record-" + hex.EncodeToString(b)
	}
	opts := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(id).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(30 * time.Second).
		SetConnectTimeout(recordConnectTimeout).
		SetKeepAlive(30 * time.Second)
	if o.username != "" {
		opts.SetUsername(o.username).SetPassword(o.password)
	}
	if secure {
		cfg, err := o.tlsConfig()
		if err != nil {
			return nil, "", err
		}
		opts.SetTLSConfig(cfg)
	}
	return opts, u.Redacted(), nil
}

func (o *recordOptions) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate found", o.caFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.certFile != "":
		keyFile := o.keyFile
		if keyFile == "" {
			keyFile = o.certFile
		}
		cert, err := tls.LoadX509KeyPair(o.certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate file %s, key file %s: %w", o.certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.keyFile != "":
		return nil, fmt.Errorf("key file %s given without a certificate file", o.keyFile)
	}
	return cfg, nil
}
