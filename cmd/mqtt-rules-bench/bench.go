package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/mqttwire"
)

// Pacing of the warm-up phase.
const (
	probeInterval = 250 * time.Millisecond // between probes until one comes back
	pollInterval  = 10 * time.Millisecond  // progress checks while waiting
	warmupQuiet   = time.Second            // warm-up drain ends after this long without progress
	flatChunk     = 1024                   // flat-out messages between context checks
	pubReadDelay  = time.Millisecond       // the publisher's reader (PUBACKs only) wakes at most this often
	subAckDelay   = time.Millisecond       // the subscriber's PUBACKs wait at most this long to share a write
)

// config is what one load run does; see the flags in main.go.
type config struct {
	Broker       string
	Count        int64
	Rate         float64
	QoS          byte
	Topics       int
	TopicFormat  string
	Group        int // >0: the format's %[2]d is i / Group (devices in groups)
	Sub          string
	Value        string
	Timeout      time.Duration
	Warmup       int64
	EnginePID    int
	Window       int
	Label        string
	ReadyTimeout time.Duration
	Pace         time.Duration
	Idle         time.Duration
}

// result is the one JSON line a run prints.
type result struct {
	Label      string  `json:"label,omitempty"`
	QoS        byte    `json:"qos"`
	RateTarget float64 `json:"rate_target"`
	Sent       int64   `json:"sent"`
	Received   int64   `json:"received"`
	Lost       int64   `json:"lost"`
	Duplicates int64   `json:"duplicates"`
	DurationS  float64 `json:"duration_s"`
	InRate     float64 `json:"in_rate"`
	OutRate    float64 `json:"out_rate"`
	P50US      float64 `json:"p50_us"`
	P90US      float64 `json:"p90_us"`
	P99US      float64 `json:"p99_us"`
	MaxUS      float64 `json:"max_us"`
	Foreign    int64   `json:"foreign,omitempty"`
	*engineResult
}

// engineResult is the engine's cost over the measured phase, present with
// --engine-pid.
type engineResult struct {
	CPUUSPerMsg float64 `json:"engine_cpu_us_per_msg"`
	CPUS        float64 `json:"engine_cpu_s"`
	RSSKB       int64   `json:"engine_rss_kb"`
	HWMKB       int64   `json:"engine_hwm_kb"`
}

// receiver turns incoming PUBLISH packets into statistics. onPublish runs
// on the subscriber's reader goroutine; the tracker may be read only
// after that goroutine has exited (client.Close), the atomics at any time.
type receiver struct {
	codec   *payloadCodec
	tr      *tracker
	foreign int64 // payloads of another run or tool

	warmupSeen atomic.Int64  // warm-up messages received (seq ≥ Count)
	measured   atomic.Int64  // distinct measured messages received
	lastAt     atomic.Int64  // unix ns of the last message of this run
	allIn      chan struct{} // closed when all Count measured messages arrived
}

func newReceiver(codec *payloadCodec, n int64) *receiver {
	return &receiver{codec: codec, tr: newTracker(n), allIn: make(chan struct{})}
}

// onPublish accounts for one received message.
func (r *receiver) onPublish(m *mqttwire.Publish) {
	now := time.Now().UnixNano()
	seq, ts, ok := r.codec.parse(m.Payload)
	if !ok {
		r.foreign++
		return
	}
	r.lastAt.Store(now)
	if seq >= r.tr.n {
		r.warmupSeen.Add(1)
		return
	}
	if r.tr.record(seq, ts, now) && r.measured.Add(1) == r.tr.n {
		close(r.allIn)
	}
}

// sender publishes numbered messages over one client.
type sender struct {
	pub    *client
	codec  *payloadCodec
	topics []string
	qos    byte
	buf    []byte
}

// send publishes messages first..first+n-1 at rate msg/s (0: flat out)
// and returns when the last one is written to the connection, with the
// time of the first send. Paced messages go out in batches at least pace
// apart (at 10,000 msg/s and 1 ms, 10 messages per write), each stamped
// when it is written into the batch; flat out, the write buffer goes out
// whenever it is full.
func (s *sender) send(ctx context.Context, first, n int64, rate float64, pace time.Duration) (start time.Time, sent int64, err error) {
	start = time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var i int64
	for i < n {
		due := min(n, i+flatChunk)
		if rate > 0 {
			due = min(n, int64(time.Since(start).Seconds()*rate)+1)
		}
		for ; i < due; i++ {
			seq := first + i
			s.buf = s.codec.appendPayload(s.buf[:0], seq, time.Now().UnixNano())
			if err := s.pub.Publish(ctx, s.topics[seq%int64(len(s.topics))], s.buf, s.qos); err != nil {
				return start, i, err
			}
		}
		if rate <= 0 {
			if err := ctx.Err(); err != nil {
				return start, i, err
			}
			continue
		}
		if err := s.pub.Flush(); err != nil {
			return start, i, err
		}
		if i >= n {
			break
		}
		next := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := max(time.Until(next), pace); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return start, i, ctx.Err()
			case <-s.pub.Done():
				return start, i, s.pub.err()
			case <-timer.C:
			}
		}
	}
	return start, n, s.pub.Flush()
}

// warmup sends cfg.Warmup uncounted messages, then probes until one of
// them comes back through the system under test (so the engine is known
// to be subscribed), then waits until the warm-up messages have drained
// (or stopped arriving) and, at QoS 1, were all acknowledged.
func warmup(ctx context.Context, cfg config, s *sender, sub *client, r *receiver) error {
	next := cfg.Count // warm-up messages are numbered after the measured ones
	if cfg.Warmup > 0 {
		if _, _, err := s.send(ctx, next, cfg.Warmup, cfg.Rate, cfg.Pace); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		next += cfg.Warmup
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	var lastProbe time.Time
	for r.warmupSeen.Load() == 0 {
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("warm-up: nothing came back on %q within %v: is the engine running and subscribed, and does its rule fire?", cfg.Sub, cfg.ReadyTimeout)
		}
		if now.Sub(lastProbe) >= probeInterval {
			if _, _, err := s.send(ctx, next, 1, 0, 0); err != nil {
				return fmt.Errorf("warm-up probe: %w", err)
			}
			next++
			lastProbe = now
		}
		if err := waitTick(ctx, tick, sub); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	want := next - cfg.Count
	seen, progress := r.warmupSeen.Load(), time.Now()
	for seen < want && time.Since(progress) < warmupQuiet {
		if err := waitTick(ctx, tick, sub); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if n := r.warmupSeen.Load(); n != seen {
			seen, progress = n, time.Now()
		}
	}
	if s.qos > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		if err := s.pub.WaitAcks(wctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// waitTick waits for the next tick, failing when ctx ends or the
// subscriber's connection drops.
func waitTick(ctx context.Context, tick *time.Ticker, sub *client) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.Done():
		return sub.err()
	case <-tick.C:
		return nil
	}
}

// run performs one load run: connect, subscribe, warm up, send Count
// measured messages, wait for them (at most Timeout after the last send)
// and compute the result.
func run(ctx context.Context, cfg config) (res result, err error) {
	runID := time.Now().UnixNano()%1_000_000_000 + int64(os.Getpid())*1_000_000_000
	codec := newPayloadCodec(cfg.Value, runID)
	rcv := newReceiver(codec, cfg.Count)
	idPrefix := fmt.Sprintf("mqtt-rules-bench-%d", runID)

	sub, err := dialClient(ctx, cfg.Broker, clientOptions{
		ClientID: idPrefix + "-sub", CleanSession: true, KeepAlive: time.Minute,
		OnPublish: rcv.onPublish, AckDelay: subAckDelay,
	})
	if err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	defer func() {
		if cerr := sub.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("subscriber: %w", cerr)
		}
	}()
	if err := sub.Subscribe(ctx, []string{cfg.Sub}, cfg.QoS); err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	pub, err := dialClient(ctx, cfg.Broker, clientOptions{
		ClientID: idPrefix + "-pub", CleanSession: true, KeepAlive: time.Minute,
		Window: cfg.Window, ReadDelay: pubReadDelay,
	})
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	defer func() {
		if cerr := pub.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("publisher: %w", cerr)
		}
	}()

	topics := make([]string, cfg.Topics)
	for i := range topics {
		topics[i] = topicName(cfg, i)
	}
	s := &sender{pub: pub, codec: codec, topics: topics, qos: cfg.QoS, buf: make([]byte, 0, 128)}

	if err := warmup(ctx, cfg, s, sub, rcv); err != nil {
		return res, err
	}

	ticks := clockTicks()
	var before procSample
	if cfg.EnginePID > 0 {
		if before, err = sampleProc(cfg.EnginePID, ticks); err != nil {
			return res, err
		}
	}

	start, sent, err := s.send(ctx, 0, cfg.Count, cfg.Rate, cfg.Pace)
	lastSend := time.Now()
	if err != nil {
		return res, fmt.Errorf("send: %w", err)
	}
	if err := awaitStragglers(ctx, cfg, rcv, sub, lastSend); err != nil {
		return res, err
	}

	var after procSample
	if cfg.EnginePID > 0 {
		if after, err = sampleProc(cfg.EnginePID, ticks); err != nil {
			return res, err
		}
	}
	// Closing the subscriber stops its reader, after which the tracker is ours.
	if err := sub.Close(); err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	res = summarize(cfg, rcv, sent, start, lastSend)
	if cfg.EnginePID > 0 {
		cpu := after.CPU - before.CPU
		res.engineResult = &engineResult{
			CPUUSPerMsg: round(float64(cpu.Microseconds())/float64(max(sent, 1)), 2),
			CPUS:        round(cpu.Seconds(), 3),
			RSSKB:       after.RSSKB,
			HWMKB:       after.HWMKB,
		}
	}
	return res, nil
}

// awaitStragglers returns when every measured message has arrived,
// cfg.Timeout after lastSend, or, with cfg.Idle, once nothing arrived for
// that long after lastSend.
func awaitStragglers(ctx context.Context, cfg config, rcv *receiver, sub *client, lastSend time.Time) error {
	timer := time.NewTimer(time.Until(lastSend.Add(cfg.Timeout)))
	defer timer.Stop()
	var idle <-chan time.Time
	if cfg.Idle > 0 {
		t := time.NewTicker(min(cfg.Idle/4, 100*time.Millisecond))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-rcv.allIn:
			return nil
		case <-timer.C:
			return nil
		case now := <-idle:
			last := max(lastSend.UnixNano(), rcv.lastAt.Load())
			if now.UnixNano()-last >= int64(cfg.Idle) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.Done():
			return fmt.Errorf("subscriber: %w", sub.err())
		}
	}
}

// summarize computes the result from the tracker (whose writer has
// stopped) and the send times.
func summarize(cfg config, rcv *receiver, sent int64, start, lastSend time.Time) result {
	tr := rcv.tr
	res := result{
		Label:      cfg.Label,
		QoS:        cfg.QoS,
		RateTarget: cfg.Rate,
		Sent:       sent,
		Received:   tr.unique,
		Lost:       tr.lost(sent),
		Duplicates: tr.dups,
		Foreign:    rcv.foreign,
	}
	sendDur := lastSend.Sub(start).Seconds()
	end := lastSend
	if tr.lastRecv > 0 {
		end = time.Unix(0, tr.lastRecv)
	}
	dur := end.Sub(start).Seconds()
	res.DurationS = round(dur, 3)
	if sendDur > 0 {
		res.InRate = round(float64(sent)/sendDur, 0)
	}
	if dur > 0 {
		res.OutRate = round(float64(tr.unique)/dur, 0)
	}
	us := func(ns uint64) float64 { return round(float64(ns)/1e3, 1) }
	res.P50US = us(tr.lat.percentile(50))
	res.P90US = us(tr.lat.percentile(90))
	res.P99US = us(tr.lat.percentile(99))
	res.MaxUS = us(tr.lat.max)
	return res
}

// round rounds x to the given number of decimals.
func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// topicName is the topic of device i: the format applied to i, and with
// --group to i and its group i / Group ("home/g%[2]d/d%[1]d/sensor").
func topicName(cfg config, i int) string {
	if cfg.Group > 0 {
		return fmt.Sprintf(cfg.TopicFormat, i, i/cfg.Group)
	}
	return fmt.Sprintf(cfg.TopicFormat, i)
}
