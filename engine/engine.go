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
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/ratelog"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/internal/window"
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

	// Observe, when set, is called with every evaluation, in order; the
	// engine holds its state lock meanwhile, so it must be quick. `mqtt-rules
	// test --explain` uses it.
	Observe func(Evaluation)

	// TraceLen is how many evaluations per rule Trace keeps: 0 means
	// DefaultTraceLen, a negative value none.
	TraceLen int

	// MaxHops cuts chains of the engine's own publishes coming back to it
	// (docs/reliability.md, "Loops"). 0: DefaultMaxHops.
	MaxHops int

	// MaxKeys caps the keys one stateful rule tracks; the least recently
	// seen key is evicted beyond it (counted, logged). 0: DefaultMaxKeys.
	MaxKeys int

	// MaxRemembered caps the topics state() and states() remember; the
	// least recently updated is dropped beyond it (counted). 0:
	// DefaultMaxRemembered.
	MaxRemembered int

	// TimeZone is where schedules run and `sun` reads the day (a rule's
	// timezone: overrides it); nil: the machine's local zone.
	TimeZone *time.Location
	// Location is where the sun is computed (sun triggers, `sun`); nil:
	// none (the loader refuses rules that need one).
	Location *sun.Location

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
	maxKeys    int
	maxHops    int
	errEvery   time.Duration
	loops      *loopGuard
	observe    func(Evaluation)
	traceLen   int

	active atomic.Pointer[active]
	// tracking is set by Restore: from then on the remembered topics'
	// changes are tracked for saving, in stores added later too.
	tracking atomic.Bool
	swapMu   sync.Mutex // serialises SetRules and SetEnabled; guards overrides

	overrides      map[string]override // run-time enables and disables, by rule name
	overridesDirty bool                // changed since the last save

	ctxs sync.Pool // *evalCtx

	counters *Counters

	// worlds are the remembered topics (docs/world.md), one store per
	// broker ("" the default); guarded by swapMu, and read through
	// active.worlds.
	worlds        map[string]*world
	maxRemembered int

	tz       *time.Location
	location *sun.Location
	suns     sunCache

	// stateMu guards every ruleState and keyState and the timer heap.
	stateMu sync.Mutex
	timers  timerHeap
	wake    chan struct{} // a new earliest deadline; cap 1
	persist persistence   // changes not yet saved (with --state)
}

// active is the rule set in force with the engine's per-rule runtime.
type active struct {
	rs     *rules.RuleSet
	rules  []*ruleRuntime    // by Rule.Index
	worlds map[string]*world // by broker: the remembered topics
}

// world returns the remembered topics of a broker, or nil.
func (a *active) world(broker string) *world {
	if a == nil {
		return nil
	}
	return a.worlds[broker]
}

// ruleRuntime is what the engine keeps for one loaded rule.
type ruleRuntime struct {
	rule     *rules.Rule
	stats    *RuleStats
	errLog   ratelog.Limiter
	evictLog ratelog.Limiter
	loopLast atomic.Int64 // unix ns of the last loop cutoff: a new episode is logged
	st       *ruleState   // nil for a rule without state
	trigs    []*trigger   // its schedule and sun triggers; guarded by stateMu

	// enabled is whether the rule runs: its file's enabled, or a
	// control's override (byControl says which). byControl changes on a
	// published runtime (a control that repeats the state the rule is in),
	// so it is atomic too.
	enabled   atomic.Bool
	byControl atomic.Bool
}

// New returns an engine with no rules: every message matches nothing until
// SetRules.
func New(cfg Config) *Engine {
	e := &Engine{
		actions:    cfg.Actions,
		log:        cfg.Logger,
		clock:      cfg.Clock,
		maxPayload: cfg.MaxPayload,
		maxKeys:    cfg.MaxKeys,
		maxHops:    cfg.MaxHops,
		errEvery:   cfg.ErrorLogInterval,
		loops:      newLoopGuard(),
		observe:    cfg.Observe,
		traceLen:   cfg.TraceLen,
		counters:   cfg.Counters,
		wake:       make(chan struct{}, 1),
		tz:         cfg.TimeZone,
		location:   cfg.Location,
	}
	if e.tz == nil {
		e.tz = time.Local
	}
	if e.maxKeys <= 0 {
		e.maxKeys = DefaultMaxKeys
	}
	if e.maxHops <= 0 {
		e.maxHops = DefaultMaxHops
	}
	switch {
	case e.traceLen == 0:
		e.traceLen = DefaultTraceLen
	case e.traceLen < 0:
		e.traceLen = 0
	}
	if e.counters == nil {
		e.counters = NewCounters()
	}
	e.maxRemembered = cfg.MaxRemembered
	e.worlds = map[string]*world{"": newWorld(e.maxRemembered, e.counters)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = realClock{}
	}
	if e.errEvery <= 0 {
		e.errEvery = 10 * time.Second
	}
	e.ctxs.New = func() any { c := newEvalCtx(); c.e = e; return c }
	return e
}

// SetRules makes rs the active rule set. Messages handled after it returns
// are evaluated against rs only; a message being handled meanwhile finishes
// against the set it started with. The state of a rule whose name and
// fingerprint are unchanged carries over, timers included; the state of a
// changed or removed rule is dropped.
func (e *Engine) SetRules(rs *rules.RuleSet) {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	old := e.active.Load()
	next := &active{rs: rs, rules: make([]*ruleRuntime, len(rs.Rules))}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	kept := map[*ruleState]bool{}
	now := e.clock.Now()
	for name, o := range e.overrides {
		if r := rs.Rule(name); r == nil || r.Definition != o.Definition {
			delete(e.overrides, name) // the rule changed or went: its file decides again
			e.overridesDirty = true
		}
	}
	for i, r := range rs.Rules {
		rt := &ruleRuntime{rule: r, stats: e.counters.Rule(r.Name)}
		on, by := e.effectiveEnabled(r)
		rt.enabled.Store(on)
		rt.byControl.Store(by == ByControl)
		prev := old.runtime(r.Name)
		same := prev != nil && prev.rule.Fingerprint == r.Fingerprint && prev.enabled.Load() == on
		if on && needsState(r) {
			if same && prev.st != nil {
				rt.st = prev.st
				if prev.rule.Definition != r.Definition {
					// The steps after a delay may be others now.
					e.cancelAllSequences(rt.st, "its definition changed")
				}
			} else {
				rt.st = newRuleState(rt)
			}
			rt.st.rt = rt
			kept[rt.st] = true
		}
		if !same {
			prev = nil
		}
		e.startTriggers(rt, prev, now)
		next.rules[i] = rt
	}
	if old != nil {
		for _, prev := range old.rules {
			e.stopTriggers(prev)
			if prev.st != nil && !kept[prev.st] {
				e.cancelAllSequences(prev.st, "it changed or was removed")
				e.dropState(prev.st)
			}
		}
	}
	for _, b := range rs.Brokers() {
		if e.worlds[b] == nil {
			w := newWorld(e.maxRemembered, e.counters)
			if e.tracking.Load() {
				w.restore(nil) // a broker new since Restore: its changes are saved too
			}
			e.worlds[b] = w
		}
	}
	for b, w := range e.worlds {
		w.setFilters(rs.RememberOn(b), rs.StatesFiltersOn(b))
	}
	next.worlds = maps.Clone(e.worlds)
	e.active.Store(next)
}

// runtime returns the runtime of the rule with the given name, or nil.
func (a *active) runtime(name string) *ruleRuntime {
	if a == nil {
		return nil
	}
	if r := a.rs.Rule(name); r != nil {
		return a.rules[r.Index]
	}
	return nil
}

// dropState forgets a rule's state and cancels its timers.
func (e *Engine) dropState(st *ruleState) {
	st.dead = true
	for _, ks := range st.keys {
		e.cancelKeyTimers(ks)
		e.markDeleted(st, ks)
	}
	st.keys = map[string]*keyState{}
	st.lru.lruNext, st.lru.lruPrev = &st.lru, &st.lru
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
	// `now` reads in --timezone (docs/rules.md): now.Hour() is local time.
	msg.Time = msg.Time.In(e.tz)
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	matches := c.begin(a.rs, &msg)
	if w := a.world(msg.Broker); w != nil && w.on.Load() {
		// Before the rules: state() of the message's own topic is the
		// message (docs/world.md).
		w.update(c.msg, c.levels)
	}
	if a.rs.MayLoop() {
		c.hop = e.loops.hop(msg.Broker, msg.Topic, msg.Payload, msg.Time)
	}
	for _, m := range matches {
		if rt := a.rules[m.Rule.Index]; rt.enabled.Load() && m.Rule.Broker == msg.Broker {
			e.evaluate(c, rt, m.Filter)
		}
	}
	c.end()
}

// evaluate runs one rule for the message in c and records why it did or
// did not fire; a panic is recovered and counted as a condition error.
func (e *Engine) evaluate(c *evalCtx, rt *ruleRuntime, filter int) {
	if rt.st != nil {
		e.stateMu.Lock()
		defer e.stateMu.Unlock()
		if rt.st.dead {
			// A reload or a disable replaced the rule while this message
			// was on its way: its state is gone, and so is the rule as it
			// was. Creating a key here would leave it and its timers behind.
			return
		}
	}
	e.evaluateLocked(c, rt, filter)
}

// evaluateLocked is evaluate with stateMu held for a stateful rule. filter
// is the rule's filter the message matched, or -1 for a timed evaluation.
func (e *Engine) evaluateLocked(c *evalCtx, rt *ruleRuntime, filter int) {
	r := rt.rule
	ev := Evaluation{Time: c.msg.Time, Rule: r.Name, Topic: c.msg.Topic}
	if filter < 0 {
		ev.Timer, ev.Trigger = true, c.trig.String()
	}
	c.lookups = c.lookups[:0]
	defer func() {
		if p := recover(); p != nil {
			rt.stats.ConditionErrors.Add(1)
			err := fmt.Errorf("panic: %v", p)
			e.evalError(rt, c.msg.Topic, err)
			ev.Outcome, ev.Err = OutcomeError, err.Error()
		}
		ev.setPayload(c.msg.Payload)
		if len(c.lookups) > 0 {
			ev.Lookups = slices.Clone(c.lookups)
		}
		e.record(rt, &ev)
	}()
	fail := func(err error) {
		rt.stats.ConditionErrors.Add(1)
		if filter >= 0 {
			if hint := payloadHint(r, c.decoded()); hint != "" {
				err = fmt.Errorf("%w (%s)", err, hint)
			}
		}
		e.evalError(rt, c.msg.Topic, err)
		ev.Outcome, ev.Err = OutcomeError, err.Error()
	}
	if err := c.setRule(r, filter); err != nil {
		fail(err)
		return
	}
	ev.Key = c.key
	if rt.st == nil {
		ok, err := c.ev.Condition(r.When)
		if err != nil {
			fail(err)
			return
		}
		ev.Cond = condPtr(ok)
		ev.Outcome = OutcomeFalse
		if ok {
			ev.Outcome = e.fire(c, rt, nil, c.msg.Time)
		}
		return
	}

	usesPrev := r.Uses()&rules.UsesPrev != 0
	// The key's state must be known before the condition when the
	// condition reads it (prev, fired, windows) or feeds it (windows
	// sample every message, docs/world.md).
	keyFirst := usesPrev || r.Uses()&rules.UsesFired != 0 || len(r.Windows) > 0
	var (
		ok  bool
		err error
	)
	if !keyFirst {
		// The condition does not depend on the key's state. A key that
		// has none yet gets none from a false (or failing) message: such
		// messages must not evict keys that hold a pending for, a firing
		// episode or an absence timer.
		ok, err = c.ev.Condition(r.When)
		if _, known := rt.st.keys[c.key]; !known && (err != nil || !ok) {
			if err != nil {
				fail(err)
				return
			}
			ev.Cond = condPtr(false)
			ev.Outcome = OutcomeFalse
			if r.Absent > 0 {
				ev.Outcome = OutcomeNotCounted
			}
			return
		}
	}
	ks, evicted := e.getKey(rt.st, c.key, e.maxKeys)
	if evicted {
		rt.stats.KeysEvicted.Add(1)
		if n, ok := rt.evictLog.Allow(e.clock.Now(), e.errEvery); ok {
			e.log.Warn("rule tracks too many keys: evicted the least recently seen", "rule", r.Name, "max_keys", e.maxKeys, "evicted_since_last_log", n+1)
		}
	}
	if due := ks.kt.when(); !due.IsZero() && !due.After(c.msg.Time) {
		// The key's timer was due before this message: it fires first,
		// whether or not Run has got to it yet.
		e.unschedule(ks)
		e.timerFired(ks, due)
	}
	if keyFirst {
		c.setKeyVars(rt, ks, c.msg.Time, true)
		ev.Windows = c.seenWindows()
		ok, err = c.ev.Condition(r.When)
	}
	snap := snapshotOf(c.msg, filter)
	if err != nil {
		fail(err)
	} else {
		ev.Cond = condPtr(ok)
		ev.Outcome, ev.Until = e.step(c, rt, ks, ok, snap)
	}
	if usesPrev {
		if ks.prev != nil && ks.prev.topic == snap.topic && ks.prev.filter == snap.filter {
			snap.topic = ks.prev.topic // share the string: keys often repeat one topic
		}
		ks.prev = snap
	}
	e.markDirty(ks)
}

// setKeyVars puts into the environment what rule rt reads of key ks's
// state: prev, fired and its windows as of now — after adding the current
// message's samples when sample is true (docs/world.md: every message of
// the rule's filters is a sample, whatever `when` says). Called with
// stateMu held.
func (c *evalCtx) setKeyVars(rt *ruleRuntime, ks *keyState, now time.Time, sample bool) {
	r := rt.rule
	u := r.Uses()
	if u&rules.UsesPrev != 0 {
		c.ev.Vars[rules.VarPrev] = prevValue(ks.prev)
	}
	if u&rules.UsesFired != 0 {
		c.ev.Vars[rules.VarFired] = prevValue(ks.fired())
	}
	c.winSeen = c.winSeen[:0]
	if len(r.Windows) == 0 {
		return
	}
	x := ks.ext()
	if x.windows == nil {
		x.windows = make([]*window.Window, len(r.Windows))
		for i, spec := range r.Windows {
			x.windows[i], _ = window.New(spec.Over, spec.MaxSamples) // checked at load
		}
	}
	if c.winVars == nil {
		c.winVars = make(map[string]any, len(r.Windows))
	}
	clear(c.winVars)
	for i, spec := range r.Windows {
		w := x.windows[i]
		if sample {
			if out, err := c.ev.Value(spec.Value); err == nil {
				if v, ok := number(out); ok {
					w.Add(now, v)
				}
			}
		}
		w.Expire(now)
		st := w.Stats()
		c.winVars[spec.Name] = st
		c.winSeen = append(c.winSeen, WindowValue{Name: spec.Name, Stats: st})
	}
	c.ev.Vars[rules.VarWindows] = c.winVars
}

// seenWindows returns a copy of the windows the current evaluation sees,
// for its trace; nil for a rule without windows.
func (c *evalCtx) seenWindows() []WindowValue {
	if len(c.winSeen) == 0 {
		return nil
	}
	return slices.Clone(c.winSeen)
}

// number returns a window value as a float64: numbers only, never a string
// that looks like one; NaN and infinities are left to the window, which
// refuses them.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	}
	return 0, false
}

// step advances the state of one key for a message whose condition
// evaluated to ok (docs/state.md), and says what it did. Called with stateMu held.
func (e *Engine) step(c *evalCtx, rt *ruleRuntime, ks *keyState, ok bool, snap *snapshot) (Outcome, time.Time) {
	r := rt.rule
	now := snap.time
	switch {
	case r.Absent > 0:
		// A heartbeat: `when` decides which messages count.
		if !ok {
			return OutcomeNotCounted, ks.kt.when()
		}
		out := OutcomeHeartbeat
		if ks.firing {
			e.clearKey(c, rt, ks, now)
			out = OutcomeBack
		}
		ks.trigger, ks.triggerPrev = snap, ks.prev
		e.schedule(ks, now.Add(r.Absent))
		return out, ks.kt.when()
	case ks.firing:
		// In an episode: only its end matters.
		clear := !ok
		if r.ClearWhen != nil {
			var err error
			if clear, err = c.ev.Condition(r.ClearWhen); err != nil {
				rt.stats.ConditionErrors.Add(1)
				e.evalError(rt, snap.topic, fmt.Errorf("clear_when: %w", err))
				return OutcomeStillFiring, time.Time{}
			}
		}
		switch {
		case clear:
			e.clearKey(c, rt, ks, now)
			return OutcomeCleared, time.Time{}
		case ok:
			return OutcomeEpisode, time.Time{}
		}
		return OutcomeStillFiring, time.Time{}
	case ok && r.For > 0:
		ks.trigger, ks.triggerPrev = snap, ks.prev
		if ks.pendingSince.isZero() {
			ks.pendingSince = instantOf(now)
			e.schedule(ks, now.Add(r.For))
		}
		return OutcomePending, ks.kt.when()
	case ok:
		return e.tryFire(c, rt, ks, now)
	case !ks.pendingSince.isZero():
		// A false message cancels a pending for.
		ks.pendingSince = 0
		ks.trigger, ks.triggerPrev = nil, nil
		e.unschedule(ks)
		return OutcomeCancelled, time.Time{}
	}
	return OutcomeFalse, time.Time{}
}

// tryFire fires the rule for a key unless the key is in cooldown. Called
// with stateMu held.
func (e *Engine) tryFire(c *evalCtx, rt *ruleRuntime, ks *keyState, at time.Time) (Outcome, time.Time) {
	r := rt.rule
	if at.Before(ks.cooldownUntil.time()) {
		return OutcomeCooldown, ks.cooldownUntil.time()
	}
	out := e.fire(c, rt, ks, at)
	if out == OutcomeSuppressed {
		return out, time.Time{}
	}
	if r.Uses()&rules.UsesFired != 0 {
		ks.ext().fired = snapshotOf(c.msg, 0)
	}
	if r.Episodic() || r.Absent > 0 {
		if !ks.firing {
			ks.acked = false // a new episode
		}
		ks.firing = true
		if r.Repeat > 0 && c.repeat == 0 {
			e.startRepeats(c, rt, ks, at)
		}
	}
	if r.Cooldown > 0 {
		ks.cooldownUntil = instantOf(at.Add(r.Cooldown))
	}
	return out, time.Time{}
}

// fire counts a firing of the rule at the given time and runs its actions;
// a rule with delay steps first asks its mode whether the firing runs now,
// later (queued) or not at all (suppressed). ks is nil for a stateless
// rule.
func (e *Engine) fire(c *evalCtx, rt *ruleRuntime, ks *keyState, at time.Time) Outcome {
	if ks != nil && rt.rule.HasDelays() {
		run, out := e.admit(c, rt, ks)
		if out == OutcomeSuppressed {
			return out
		}
		rt.stats.fired(at)
		if run {
			e.runSteps(c, rt, ks, false, 0, at, nil)
		}
		return out
	}
	rt.stats.fired(at)
	e.runSteps(c, rt, ks, false, 0, at, nil)
	return OutcomeFired
}

// clearKey ends a key's episode (or absence): its repeats stop, its
// waiting firing sequences are cancelled, and on_clear starts. Called with
// stateMu held.
func (e *Engine) clearKey(c *evalCtx, rt *ruleRuntime, ks *keyState, at time.Time) {
	ks.firing, ks.acked = false, false
	e.stopRepeats(ks)
	e.cancelSequences(ks, func(*sequence) bool { return true })
	e.runSteps(c, rt, ks, true, 0, at, nil)
}

// runAction renders one action (a firing's, or on_clear's) and hands it
// on. A rendering error fails that action only.
func (e *Engine) runAction(c *evalCtx, rt *ruleRuntime, a *rules.Action) {
	req, err := c.render(a)
	if err != nil {
		rt.stats.actionResult(a.Kind, err)
		e.evalError(rt, c.msg.Topic, fmt.Errorf("%s action: %w", a.Kind, err))
		return
	}
	req.Rule = rt.rule.Name
	req.Secrets = rt.rule.EnvValues
	req.Topic = c.msg.Topic
	req.Key = c.key
	req.Hop = c.hop
	if a.MayLoop {
		if m, ok := req.Action.(interface{ MQTTMessage() *actions.Publish }); ok {
			p := m.MQTTMessage()
			c.pubLevels = topic.Split(p.Topic, c.pubLevels[:0])
			if !e.hopAllowed(c.rs, c.pubLevels, rt, p, c.hop+1, c.msg.Time) {
				return
			}
		}
	}
	e.actions.Do(req)
}

// hopAllowed handles a publish that may come back to the engine at the
// given hop (docs/reliability.md, "Loops"): when its topic reaches a rule
// of the set, beyond --max-hops the chain is cut (counted, logged once per
// episode), otherwise the engine remembers it to recognise it. at is the
// time of the message being handled (a timer's firing carries its
// trigger's, older, time). levels is p's topic split, and rs the set
// that made the publish.
func (e *Engine) hopAllowed(rs *rules.RuleSet, levels []string, rt *ruleRuntime, p *actions.Publish, hop int, at time.Time) bool {
	if !rs.Reaches(levels) {
		return true
	}
	if hop <= e.maxHops {
		if now := e.clock.Now(); now.After(at) {
			at = now
		}
		e.loops.record(p.Broker, p.Topic, p.Payload, hop, at)
		return true
	}
	rt.stats.LoopCutoffs.Add(1)
	e.counters.Drop(DropLoop)
	now := e.clock.Now()
	if last := rt.loopLast.Swap(now.UnixNano()); now.Sub(time.Unix(0, last)) > loopEpisodeGap {
		e.log.Warn("loop cut: the rule's publishes keep coming back to the engine", "rule", rt.rule.Name,
			"topic", p.Topic, "hops", hop, "max_hops", e.maxHops)
	}
	return false
}

// AllowPublish implements actions.LoopGuard: a publish the executor makes
// for a rule after the fact (an exec's output) is one hop further than the
// message that fired the rule, and is cut like the rule's own publishes.
func (e *Engine) AllowPublish(rule string, p *actions.Publish, hop int) bool {
	a := e.active.Load()
	rt := a.runtime(rule)
	if rt == nil {
		return true // the rule went meanwhile: nothing to count against
	}
	return e.hopAllowed(a.rs, topic.Split(p.Topic, nil), rt, p, hop, e.clock.Now())
}

var _ actions.LoopGuard = (*Engine)(nil)

// loopEpisodeGap is how long a rule must go without a loop cutoff for the
// next one to be logged again.
const loopEpisodeGap = time.Minute

// evalError logs a rule's run-time error at a bounded rate.
func (e *Engine) evalError(rt *ruleRuntime, topic string, err error) {
	if n, ok := rt.errLog.Allow(e.clock.Now(), e.errEvery); ok {
		args := []any{"rule", rt.rule.Name, "topic", topic, "err", err}
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		e.log.Warn("rule evaluation failed", args...)
	}
}
