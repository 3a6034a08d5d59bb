// Package engine dispatches MQTT messages to rules: it matches each message
// against the active rule set's topic index, evaluates the conditions of the
// rules it reaches, keeps their state (for, cooldown, episodes, absent), and
// hands the rendered actions of every firing to an Actions sink.
//
// The rule set is swapped atomically (SetRules): a message is evaluated
// against exactly one set, and the state of unchanged rules carries over.
// The engine never imports an MQTT client: a connection calls Handle.
package engine

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Actions receives the rendered actions of every firing, in firing order.
// Do must not block on I/O: the engine calls it while handling a message.
type Actions interface {
	Do(req actions.Request)
}

// Clock tells the time. The engine's timers (for, absent) run on it, so a
// test or a replay can drive time itself.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures an Engine.
type Config struct {
	Actions Actions      // required
	Logger  *slog.Logger // nil: discard
	Clock   Clock        // nil: the real time

	// Counters receives the engine's counts; nil: new ones (see Counters()).
	Counters *Counters

	// MaxPayload skips larger payloads, counted as dropped "too_large"; 0
	// means no limit.
	MaxPayload int

	// ErrorLogInterval bounds how often one rule's evaluation errors are
	// logged; the errors in between are counted and summarised. Default 10s.
	ErrorLogInterval time.Duration
}

// Engine evaluates rules for messages. Its methods are safe for concurrent
// use.
type Engine struct {
	actions    Actions
	log        *slog.Logger
	clock      Clock
	maxPayload int
	errEvery   time.Duration

	active atomic.Pointer[active]
	swapMu sync.Mutex // serialises SetRules

	ctxs sync.Pool // *evalCtx

	counters *Counters
}

// active is the rule set in force with the engine's per-rule runtime.
type active struct {
	rs    *rules.RuleSet
	rules []*ruleRuntime // by Rule.Index
}

// ruleRuntime is what the engine keeps for one loaded rule.
type ruleRuntime struct {
	rule   *rules.Rule
	stats  *RuleStats
	errLog rateLimiter
}

// New returns an engine with no rules: every message matches nothing until
// SetRules.
func New(cfg Config) *Engine {
	e := &Engine{
		actions:    cfg.Actions,
		log:        cfg.Logger,
		clock:      cfg.Clock,
		maxPayload: cfg.MaxPayload,
		errEvery:   cfg.ErrorLogInterval,
		counters:   cfg.Counters,
	}
	if e.counters == nil {
		e.counters = NewCounters()
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = realClock{}
	}
	if e.errEvery <= 0 {
		e.errEvery = 10 * time.Second
	}
	e.ctxs.New = func() any { return newEvalCtx() }
	return e
}

// SetRules makes rs the active rule set. Messages handled after it returns
// are evaluated against rs only; a message being handled meanwhile finishes
// against the set it started with.
func (e *Engine) SetRules(rs *rules.RuleSet) {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	next := &active{rs: rs, rules: make([]*ruleRuntime, len(rs.Rules))}
	for i, r := range rs.Rules {
		next.rules[i] = &ruleRuntime{rule: r, stats: e.counters.Rule(r.Name)}
	}
	e.active.Store(next)
}

// Counters returns the engine's counters.
func (e *Engine) Counters() *Counters { return e.counters }

// Rules returns the active rule set, or nil before the first SetRules.
func (e *Engine) Rules() *rules.RuleSet {
	if a := e.active.Load(); a != nil {
		return a.rs
	}
	return nil
}

// Handle evaluates one message against the active rule set and hands the
// actions of every rule it fires to the Actions sink, in rule set order.
// It owns msg.Payload from then on.
func (e *Engine) Handle(msg Message) {
	e.counters.received.Add(1)
	if e.maxPayload > 0 && len(msg.Payload) > e.maxPayload {
		e.counters.Drop(DropTooLarge)
		return
	}
	a := e.active.Load()
	if a == nil {
		return
	}
	if msg.Time.IsZero() {
		msg.Time = e.clock.Now()
	}
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	matches := c.begin(a.rs, &msg)
	for _, m := range matches {
		e.evaluate(c, a.rules[m.Rule.Index], m.Filter)
	}
	c.end()
}

// evaluate runs one rule for the message in c; a panic is recovered and
// counted as a condition error.
func (e *Engine) evaluate(c *evalCtx, rt *ruleRuntime, filter int) {
	r := rt.rule
	defer func() {
		if p := recover(); p != nil {
			rt.stats.ConditionErrors.Add(1)
			e.evalError(rt, c.msg.Topic, fmt.Errorf("panic: %v", p))
		}
	}()
	err := c.setRule(r, filter)
	ok := false
	if err == nil {
		ok, err = c.ev.Condition(r.When)
	}
	if err != nil {
		rt.stats.ConditionErrors.Add(1)
		e.evalError(rt, c.msg.Topic, err)
		return
	}
	if ok {
		e.fire(c, rt, r.Actions)
	}
}

// fire renders the actions of a firing and hands them on. A rendering
// error fails that action only.
func (e *Engine) fire(c *evalCtx, rt *ruleRuntime, acts []rules.Action) {
	rt.stats.fired(c.msg.Time)
	for i := range acts {
		req, err := c.render(&acts[i])
		if err != nil {
			rt.stats.actionResult(acts[i].Kind, err)
			e.evalError(rt, c.msg.Topic, fmt.Errorf("%s action: %w", acts[i].Kind, err))
			continue
		}
		req.Rule = rt.rule.Name
		req.Topic = c.msg.Topic
		req.Key = c.key
		e.actions.Do(req)
	}
}

// evalError logs a rule's run-time error at a bounded rate.
func (e *Engine) evalError(rt *ruleRuntime, topic string, err error) {
	if n, ok := rt.errLog.allow(e.clock.Now(), e.errEvery); ok {
		args := []any{"rule", rt.rule.Name, "topic", topic, "err", err}
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		e.log.Warn("rule evaluation failed", args...)
	}
}

// rateLimiter lets one event through per interval and counts the rest.
type rateLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many events were suppressed
// since the last one logged.
func (l *rateLimiter) allow(now time.Time, every time.Duration) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}
