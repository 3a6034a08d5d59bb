package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// RuleStats counts what one rule did. A rule keeps its counters across
// reloads for as long as its name stays (they feed Prometheus counters,
// which must not go back).
type RuleStats struct {
	Fires           atomic.Uint64
	ConditionErrors atomic.Uint64
	KeysEvicted     atomic.Uint64 // keys dropped because the rule tracked too many
	LoopCutoffs     atomic.Uint64 // publishes not made because their chain reached --max-hops
	Suppressed      atomic.Uint64 // firings ignored by the rule's mode (single, or a full queue)
	lastFired       atomic.Int64  // unix nanoseconds; 0: never
	// actions[kind.ID()][0] counts ok results, [1] errors.
	actions [][2]atomic.Uint64

	noKind atomic.Uint64 // failed requests that named no kind

	trace atomic.Pointer[traceRing] // the last evaluations; nil until the first
}

func newRuleStats() *RuleStats {
	return &RuleStats{actions: make([][2]atomic.Uint64, actions.NumKinds())}
}

// LastFired returns when the rule last fired, or the zero time.
func (s *RuleStats) LastFired() time.Time {
	if n := s.lastFired.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Actions returns how many actions of a kind finished ok and with an error.
func (s *RuleStats) Actions(k *actions.Kind) (ok, failed uint64) {
	if k == nil {
		return 0, 0
	}
	return s.actions[k.ID()][0].Load(), s.actions[k.ID()][1].Load()
}

// Errors returns condition errors plus failed actions, the `errors` of
// /api/rules.
func (s *RuleStats) Errors() uint64 {
	n := s.ConditionErrors.Load() + s.noKind.Load()
	for k := range s.actions {
		n += s.actions[k][1].Load()
	}
	return n
}

func (s *RuleStats) fired(at time.Time) {
	s.Fires.Add(1)
	s.lastFired.Store(at.UnixNano())
}

// actionResult counts an action's outcome. A request without a kind (a
// caller's bug) counts as an error of no kind: only in Errors.
func (s *RuleStats) actionResult(k *actions.Kind, err error) {
	if k == nil {
		s.noKind.Add(1)
		return
	}
	i := 0
	if err != nil {
		i = 1
	}
	s.actions[k.ID()][i].Add(1)
}

// Counters holds what the engine and the action executor count: messages,
// drops by reason, and per-rule fires, errors and action outcomes. It
// implements actions.Reporter, so the executor reports into it; metrics and
// the HTTP API read it. Safe for concurrent use.
type Counters struct {
	received  atomic.Uint64
	drops     dropCounters
	durations []Histogram // action durations by actions.Kind ID
	reloads   [2]atomic.Uint64

	remembered        atomic.Int64  // topics the world store holds (docs/world.md)
	rememberedEvicted atomic.Uint64 // topics dropped for --max-remembered

	mu    sync.RWMutex
	rules map[string]*RuleStats // by rule name; kept across reloads
}

// NewCounters returns zeroed counters.
func NewCounters() *Counters {
	return &Counters{rules: map[string]*RuleStats{}, durations: make([]Histogram, actions.NumKinds())}
}

// Rule returns the counters of the rule with the given name, creating them
// on first use.
func (c *Counters) Rule(name string) *RuleStats {
	c.mu.RLock()
	s := c.rules[name]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s = c.rules[name]; s == nil {
		s = newRuleStats()
		c.rules[name] = s
	}
	return s
}

// ActionDone implements actions.Reporter: it counts an action's outcome
// against its rule.
func (c *Counters) ActionDone(rule string, kind *actions.Kind, err error, took time.Duration) {
	c.Rule(rule).actionResult(kind, err)
	if kind != nil {
		c.durations[kind.ID()].Observe(took.Seconds())
	}
}

// ActionDurations returns the histogram of how long actions of a kind took.
func (c *Counters) ActionDurations(k *actions.Kind) *Histogram {
	if k == nil {
		return nil
	}
	return &c.durations[k.ID()]
}

// Reloaded counts a reload attempt.
func (c *Counters) Reloaded(ok bool) {
	if ok {
		c.reloads[0].Add(1)
	} else {
		c.reloads[1].Add(1)
	}
}

// Reloads returns how many reload attempts succeeded and failed.
func (c *Counters) Reloads() (ok, failed uint64) {
	return c.reloads[0].Load(), c.reloads[1].Load()
}

// Rules calls fn for every rule that has counters, in no order.
func (c *Counters) Rules(fn func(name string, s *RuleStats)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for n, s := range c.rules {
		fn(n, s)
	}
}

// Dropped implements actions.Reporter: an action not run at all is counted
// as a drop with its reason.
func (c *Counters) Dropped(rule string, kind *actions.Kind, reason string) {
	c.drops.add(reason)
}

// Drop counts a dropped message or action.
func (c *Counters) Drop(reason string) { c.drops.add(reason) }

// Remembered returns how many topics state() and states() remember now,
// and how many were dropped for --max-remembered since the start.
func (c *Counters) Remembered() (topics int, evicted uint64) {
	return int(c.remembered.Load()), c.rememberedEvicted.Load()
}

// Received returns how many messages the engine was given.
func (c *Counters) Received() uint64 { return c.received.Load() }

// Drops returns the drop counts by reason.
func (c *Counters) Drops() map[string]uint64 { return c.drops.snapshot() }

var _ actions.Reporter = (*Counters)(nil)

// Reasons for dropped messages and actions (the `reason` label of
// mqtt_rules_messages_dropped_total).
const (
	DropTooLarge  = "too_large"
	DropQueueFull = "queue_full"
	DropLoop      = "loop"
)

type dropCounters struct {
	m sync.Map // reason -> *atomic.Uint64
}

func (d *dropCounters) add(reason string) {
	v, ok := d.m.Load(reason)
	if !ok {
		v, _ = d.m.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (d *dropCounters) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	d.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// HistogramBuckets are the upper bounds (seconds) of Histogram's buckets:
// Prometheus' default buckets.
var HistogramBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Histogram counts observations into HistogramBuckets without locks.
type Histogram struct {
	counts [len(HistogramBuckets) + 1]atomic.Uint64 // the last is +Inf
	sumNs  atomic.Int64
}

// Observe adds one value in seconds.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(HistogramBuckets) && v > HistogramBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(v * 1e9))
}

// Snapshot returns the cumulative count per bucket (as Prometheus wants
// them, the +Inf bucket last), the total count and the sum in seconds.
func (h *Histogram) Snapshot() (cumulative []uint64, count uint64, sum float64) {
	cumulative = make([]uint64, len(h.counts))
	for i := range h.counts {
		count += h.counts[i].Load()
		cumulative[i] = count
	}
	return cumulative, count, float64(h.sumNs.Load()) / 1e9
}
