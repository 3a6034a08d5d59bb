package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/app"
	"github.com/mqtt-rules/mqtt-rules/internal/homeassistant"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// shutdownTimeout bounds how long SIGINT/SIGTERM waits for in-flight
// actions before exiting.
const shutdownTimeout = 10 * time.Second

// runOptions are the flags of `mqtt-rules run`.
type runOptions struct {
	cfg        app.Config
	rulePaths  stringList
	logFormat  string
	logLevel   string
	maxPayload string
	configFile string
	place      placeFlags
	ha         haFlag
}

// haFlag is --homeassistant: a flag with an optional value. The
// boolean spellings are those strconv.ParseBool takes and on, off, yes,
// no, in any case. Alone or true (as the config file's `homeassistant:
// true`), it turns discovery on under the prefix "homeassistant"; false
// turns it off; any other value is the discovery prefix
// (--homeassistant=PREFIX). The flag package takes a value only after
// '=' for it, as for a boolean flag (docs/homeassistant.md, "Quick
// start").
type haFlag struct{ prefix string }

func (h *haFlag) String() string   { return h.prefix }
func (h *haFlag) IsBoolFlag() bool { return true }
func (h *haFlag) Set(v string) error {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "1", "t", "true", "on", "yes":
		h.prefix = homeassistant.DefaultPrefix
	case "0", "f", "false", "off", "no":
		h.prefix = ""
	default:
		if strings.ContainsAny(v, "+#") || strings.HasSuffix(v, "/") {
			return errors.New("a discovery prefix must not hold '+' or '#' or end in '/'")
		}
		h.prefix = v
	}
	return nil
}

// define registers the flags (docs/operations.md, Flags) on fs.
func (o *runOptions) define(fs *flag.FlagSet) {
	cfg := &o.cfg
	fs.StringVar(&o.configFile, "config", "", "YAML file with any of these flags' keys in snake_case (client_id, rules: [...]); flags win")
	fs.Var(&o.rulePaths, "rules", "`PATH` of a rule file or directory, repeatable (default ./rules)")
	fs.StringVar(&cfg.Broker, "broker", "", "broker URL: tcp://, ssl://, mqtts://, ws://, wss:// (default: start an embedded broker)")
	fs.StringVar(&cfg.EmbeddedBroker, "embedded-broker", app.DefaultEmbeddedBroker, "listen address of the embedded broker, used without --broker")
	fs.StringVar(&cfg.ClientID, "client-id", "", "MQTT client id; keep it stable so the broker keeps the session (default mqtt-rules-HOSTNAME)")
	fs.StringVar(&cfg.Username, "username", os.Getenv("MQTT_USERNAME"), "MQTT username (env MQTT_USERNAME)")
	fs.StringVar(&cfg.Password, "password", "", "MQTT password (env MQTT_PASSWORD)")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "PEM file of the CAs that verify the broker's certificate")
	fs.StringVar(&cfg.CertFile, "cert-file", "", "client certificate (PEM)")
	fs.StringVar(&cfg.KeyFile, "key-file", "", "client key (PEM)")
	fs.StringVar(&cfg.ShareGroup, "share-group", "", "subscribe as $share/NAME/<filter> so instances split the load")
	fs.StringVar(&cfg.Protocol, "protocol", "auto", "MQTT version: 5, 3.1.1, or auto (5 when the broker accepts it, else 3.1.1)")
	fs.DurationVar(&cfg.SessionExpiry, "session-expiry", 0, "MQTT 5: how long the broker keeps the engine's session (subscriptions, queued QoS 1/2 messages) while it is away; 0: never expires, as MQTT 3.1.1's persistent session")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:9464", "listen address of /metrics, /healthz, /readyz, /api and the status page; off disables")
	fs.StringVar(&cfg.HTTPToken, "http-token", "", "require Authorization: Bearer TOKEN on every endpoint but /healthz and /readyz (env MQTT_RULES_HTTP_TOKEN)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.maxPayload, "max-payload", "256KiB", "skip larger payloads (bytes, or with a KiB/MiB suffix)")
	fs.StringVar(&cfg.State, "state", "", "file that keeps rule state (for, cooldown, firing, absent, prev) across restarts; created if missing (default: memory only)")
	fs.StringVar(&cfg.DeadLetterTopic, "dead-letter-topic", "", "publish every webhook that finally failed (rule, error, request with secrets redacted) to this topic")
	fs.IntVar(&cfg.MaxHops, "max-hops", engine.DefaultMaxHops, "longest chain of the engine's own publishes triggering its rules again; beyond it the publish is not made")
	o.place.define(fs)
	fs.BoolVar(&cfg.AllowExec, "allow-exec", false, "accept exec actions: rules may then run programs on this machine, as the engine's user")
	fs.IntVar(&cfg.MaxKeys, "max-keys", engine.DefaultMaxKeys, "keys one stateful rule tracks; the least recently seen is evicted beyond it")
	fs.IntVar(&cfg.MaxRemembered, "max-remembered", engine.DefaultMaxRemembered, "topics whose latest message state() and states() remember; the least recently updated is dropped beyond it")
	fs.StringVar(&cfg.StatusTopic, "status-topic", "", "retained online/offline (the MQTT will) of this engine; the control topics live beside it; off disables (default mqtt-rules/<client-id>/status)")
	fs.BoolVar(&cfg.Control, "control", false, "take commands on BASE/rule/<name>/set, /ack and /run (BASE: the status topic without its last level) and publish each rule's state on BASE/rule/<name>/state")
	fs.Var(&o.ha, "homeassistant", "publish Home Assistant MQTT discovery configs under the prefix homeassistant, or --homeassistant=PREFIX; implies --control")
}

// parse reads the command line, then the config file for what the command
// line left unset, and checks the values.
func (o *runOptions) parse(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 && o.ha.prefix == homeassistant.DefaultPrefix {
		return valueError{fmt.Errorf("--homeassistant takes another prefix as --homeassistant=PREFIX, not %q after a space", pos[0])}
	}
	if o.configFile != "" {
		if o.cfg.Brokers, err = applyConfig(fs, o.configFile); err != nil {
			return valueError{err}
		}
	}
	if o.cfg.Protocol, err = parseProtocol(o.cfg.Protocol); err != nil {
		return valueError{fmt.Errorf("--protocol: %w", err)}
	}
	if o.cfg.Password == "" {
		o.cfg.Password = os.Getenv("MQTT_PASSWORD")
	}
	if o.cfg.HTTPToken == "" {
		o.cfg.HTTPToken = os.Getenv("MQTT_RULES_HTTP_TOKEN")
	}
	// A token read from a file (a Kubernetes Secret, $(cat ...)) often ends
	// in a newline no client would send; one that is only white space
	// would lock every client out.
	if tok := strings.TrimSpace(o.cfg.HTTPToken); tok != o.cfg.HTTPToken {
		if tok == "" {
			return valueError{errors.New("--http-token: only white space (leave it unset to serve without a token)")}
		}
		o.cfg.HTTPToken = tok
	}
	o.cfg.Rules = o.rulePaths
	if len(o.cfg.Rules) == 0 {
		o.cfg.Rules = []string{"./rules"}
	}
	if o.cfg.MaxPayload, err = parseSize(o.maxPayload); err != nil {
		return valueError{fmt.Errorf("--max-payload: %w", err)}
	}
	if o.cfg.TimeZone, o.cfg.Location, err = o.place.parse(); err != nil {
		return valueError{err}
	}
	o.cfg.HomeAssistant = o.ha.prefix
	if o.cfg.HomeAssistant != "" {
		o.cfg.Control = true
	}
	return nil
}

// parseProtocol checks an MQTT protocol version as --protocol and the
// config's brokers take it: "5", "3.1.1" or "auto" ("" is auto).
func parseProtocol(s string) (string, error) {
	switch v := strings.TrimSpace(s); v {
	case "", "auto":
		return "auto", nil
	case "5", "5.0":
		return "5", nil
	case "3.1.1", "4":
		return "3.1.1", nil
	}
	return "", fmt.Errorf("%q: want 5, 3.1.1 or auto", s)
}

// valueError is a usage error found after flag parsing, which the flag
// package has not printed.
type valueError struct{ error }

// runCmd runs the engine until ctx ends (SIGINT/SIGTERM); SIGHUP reloads.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr, "run [flags]")
	var o runOptions
	o.define(fs)
	if err := o.parse(fs, args); err != nil {
		if ve := (valueError{}); errors.As(err, &ve) {
			fmt.Fprintf(stderr, "mqtt-rules run: %v\n", ve.error)
		}
		return usageCode(err)
	}
	cfg := o.cfg
	cfg.Version = versionString()
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules run: %v\n", err)
		return exitUsage
	}
	cfg.Logger = log

	// Before Start: a SIGHUP from the moment the engine runs reloads, and
	// never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.Start(cfg)
	if err != nil {
		var es rules.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "mqtt-rules run: %d %s in the rules; nothing started\n", len(es), plural(len(es), "error"))
		} else {
			fmt.Fprintf(stderr, "mqtt-rules run: %v\n", err)
		}
		return exitInvalid
	}
	log.Info("mqtt-rules running", "version", versionString())
	if path := os.Getenv("MQTT_RULES_CPU_PROFILE"); path != "" {
		// For BENCHMARKS.md: a CPU profile of the whole run, written at exit.
		if stop, err := startCPUProfile(path); err != nil {
			log.Warn("cpu profile", "err", err)
		} else {
			defer stop()
		}
	}

	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the rules")
			a.Reload(ctx) // logs its outcome
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.Close(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return exitOK
}

// newLogger returns a slog logger writing text or JSON lines to w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// parseSize parses a byte count with an optional KiB/MiB/GiB (or KB/MB/GB,
// also powers of 1024) suffix.
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (write 262144, 256KiB or 1MiB)", s)
	}
	return n * mult, nil
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
