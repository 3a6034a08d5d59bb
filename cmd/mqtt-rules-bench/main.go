// Command mqtt-rules-bench is the load tool of mqtt-rules. It publishes
// numbered, timestamped JSON messages to an MQTT broker, at a fixed rate
// or flat out, at QoS 0 or 1, spread over many topics; subscribes to what
// comes out (the engine's output, or the inputs themselves for a direct
// baseline); and prints one JSON line: sent, received, lost, duplicates,
// rates and latency percentiles, plus the engine's CPU time per message
// and memory with --engine-pid.
//
//	mqtt-rules-bench --broker tcp://127.0.0.1:1883 --count 200000 --qos 1 \
//	    --sub 'alerts/#' --engine-pid "$(pidof mqtt-rules)"
//
// It speaks MQTT 3.1.1 itself, with buffered and coalesced writes, so
// that it takes as little CPU per message as it can from the broker and
// the engine it shares the machine with.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		// One P: the tool shares two cores with the broker and the engine,
		// and one P spends far fewer thread wake-ups per message than two.
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain parses args, runs the load and prints its JSON line to stdout.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mqtt-rules-bench: %v\n", err)
		return exitUsage
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules-bench: %v\n", err)
		return exitError
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "mqtt-rules-bench: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s\n", line)
	return exitOK
}

// parseFlags turns the command line into a validated config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("mqtt-rules-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mqtt-rules-bench [flags]\n\nPublishes numbered messages, receives what comes out, prints one JSON line.\n\nflags:")
		fs.PrintDefaults()
	}
	var (
		cfg   config
		qos   int
		value float64
	)
	fs.StringVar(&cfg.Broker, "broker", "tcp://127.0.0.1:1883", "broker URL: tcp://host:port")
	fs.Int64Var(&cfg.Count, "count", 100_000, "measured messages to publish")
	fs.Float64Var(&cfg.Rate, "rate", 0, "publish rate in msg/s; 0 = flat out")
	fs.IntVar(&qos, "qos", 0, "QoS of the publishes and of the subscription: 0 or 1")
	fs.IntVar(&cfg.Topics, "topics", 100, "publish round-robin to this many topics")
	fs.StringVar(&cfg.TopicFormat, "topic-format", "sensors/%d/temperature", "topic of message i: fmt format applied to i mod --topics")
	fs.IntVar(&cfg.Group, "group", 0, "with a --topic-format holding %[1]d and %[2]d: %[2]d is the device's group, (i mod --topics) / this")
	fs.StringVar(&cfg.Sub, "sub", "alerts/#", `filter to subscribe to for the outputs ("sensors/+/temperature" for the direct baseline)`)
	fs.Float64Var(&value, "value", 31, "the payload's value field (the threshold rule fires above 30)")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "how long to wait for stragglers after the last send; ends early once all arrived")
	fs.DurationVar(&cfg.Idle, "idle", 0, "also stop waiting once nothing arrived for this long after the last send (0 = off)")
	fs.Int64Var(&cfg.Warmup, "warmup", 1000, "messages sent (and waited for) before the measured ones, not counted")
	fs.IntVar(&cfg.EnginePID, "engine-pid", 0, "sample this process's CPU (/proc/PID/stat) and memory (/proc/PID/status) around the measured phase")
	fs.IntVar(&cfg.Window, "window", defaultWindow, "QoS 1: most publishes awaiting PUBACK")
	fs.StringVar(&cfg.Label, "label", "", "copied into the JSON line as \"label\"")
	fs.DurationVar(&cfg.Pace, "pace", time.Millisecond, "with --rate: send in batches at least this far apart (fewer wake-ups for the tool); 0 = each message on its own")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", 30*time.Second, "how long to probe for the first message to come back before giving up")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	if qos != 0 && qos != 1 {
		errs = append(errs, fmt.Errorf("--qos %d: want 0 or 1", qos))
	}
	cfg.QoS = byte(qos)
	if cfg.Count < 1 {
		errs = append(errs, fmt.Errorf("--count %d: want at least 1", cfg.Count))
	}
	if cfg.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %v: want 0 (flat out) or more", cfg.Rate))
	}
	if cfg.Topics < 1 {
		errs = append(errs, fmt.Errorf("--topics %d: want at least 1", cfg.Topics))
	}
	if cfg.Warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup %d: want 0 or more", cfg.Warmup))
	}
	if cfg.Timeout <= 0 || cfg.ReadyTimeout <= 0 {
		errs = append(errs, errors.New("--timeout and --ready-timeout must be positive"))
	}
	if cfg.Idle < 0 {
		errs = append(errs, fmt.Errorf("--idle %v: want 0 (off) or more", cfg.Idle))
	}
	if cfg.Pace < 0 {
		errs = append(errs, fmt.Errorf("--pace %v: want 0 or more", cfg.Pace))
	}
	if cfg.Window < 1 || cfg.Window > maxWindow {
		errs = append(errs, fmt.Errorf("--window %d: want 1..%d", cfg.Window, maxWindow))
	}
	if cfg.Sub == "" {
		errs = append(errs, errors.New("--sub: empty filter"))
	}
	switch {
	case cfg.Group < 0:
		errs = append(errs, fmt.Errorf("--group %d: want 0 or more", cfg.Group))
	case cfg.Group > 0:
		if strings.Count(cfg.TopicFormat, "%") != 2 || !strings.Contains(cfg.TopicFormat, "%[1]d") || !strings.Contains(cfg.TopicFormat, "%[2]d") {
			errs = append(errs, fmt.Errorf("--topic-format %q: with --group, want %%[1]d (the device) and %%[2]d (its group)", cfg.TopicFormat))
		}
	case strings.Count(cfg.TopicFormat, "%") != 1 || !strings.Contains(cfg.TopicFormat, "%d"):
		errs = append(errs, fmt.Errorf("--topic-format %q: want exactly one %%d", cfg.TopicFormat))
	}
	if _, err := brokerAddr(cfg.Broker); err != nil {
		errs = append(errs, fmt.Errorf("--broker: %w", err))
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		errs = append(errs, fmt.Errorf("--value %v: want a finite number", value))
	}
	cfg.Value = strconv.FormatFloat(value, 'f', -1, 64)
	return cfg, errors.Join(errs...)
}
