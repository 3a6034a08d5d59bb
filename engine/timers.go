package engine

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Advance fires every timer (for, absent) due at or before now, in
// deadline order, each at its own deadline. Run calls it on the real clock;
// tests, `mqtt-rules test` and replays call it with their virtual time.
func (e *Engine) Advance(now time.Time) { e.advance(now, false) }

// advance fires the timers due by now; late tells that now is the real
// clock, so that triggers missed by long are skipped (see missedAfter).
func (e *Engine) advance(now time.Time, late bool) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	limit := now.UnixNano()
	for len(e.timers) > 0 && e.timers[0].ns <= limit {
		t := heap.Pop(&e.timers).(*timer)
		at := t.when().In(e.tz) // `now` of what it fires reads in --timezone
		t.ns = 0
		t.owner.due(e, at, now, late)
	}
}

// due fires a key's for or absent deadline.
func (ks *keyState) due(e *Engine, at, _ time.Time, _ bool) {
	if !ks.owner.dead {
		e.timerFired(ks, at)
	}
}

// cancelKeyTimers cancels every timer of a key that is forgotten: its
// deadline, its repeats, its waiting sequences.
func (e *Engine) cancelKeyTimers(ks *keyState) {
	e.unschedule(ks)
	e.stopRepeats(ks)
	e.cancelSequences(ks, func(*sequence) bool { return true })
}

// cancelAllSequences cancels the waiting sequences of every key of a
// rule, logging how many and why. Called with stateMu held.
func (e *Engine) cancelAllSequences(st *ruleState, why string) {
	n := 0
	for _, ks := range st.keys {
		n += e.cancelSequences(ks, func(*sequence) bool { return true })
	}
	if n > 0 {
		e.log.Warn("waiting sequences cancelled: "+why, "rule", st.rt.rule.Name, "sequences", n)
	}
}

// NextTimer returns the earliest timer deadline, if any.
func (e *Engine) NextTimer() (time.Time, bool) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return e.timers[0].when(), true
}

// Run fires timers on the engine's clock until ctx ends. Without it no
// timer fires by itself (a virtual clock calls Advance instead).
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if next, ok := e.NextTimer(); ok {
			d := next.Sub(e.clock.Now())
			if d <= 0 {
				e.advance(e.clock.Now(), true)
				continue
			}
			t.Reset(d)
		} else {
			t.Stop()
		}
		select {
		case <-t.C:
			e.advance(e.clock.Now(), true)
		case <-e.wake:
		case <-ctx.Done():
			return
		}
	}
}

// timerFired handles a key's timer: a for that held long enough, or an
// absence. The environment is the message the state kept for it. Called
// with stateMu held.
func (e *Engine) timerFired(ks *keyState, at time.Time) {
	rt := ks.owner.rt
	r := rt.rule
	if ks.trigger == nil {
		return
	}
	switch {
	case r.Absent > 0:
		if ks.firing {
			return // once per silence
		}
	case r.For > 0:
		if ks.pendingSince.isZero() {
			return
		}
		ks.pendingSince = 0
	default:
		return
	}
	e.markDirty(ks)
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	msg := ks.trigger.message()
	ev := Evaluation{Time: at, Rule: r.Name, Topic: msg.Topic, Key: ks.key, Timer: true}
	c.lookups = c.lookups[:0]
	defer func() {
		if p := recover(); p != nil {
			rt.stats.ConditionErrors.Add(1)
			err := fmt.Errorf("panic: %v", p)
			e.evalError(rt, msg.Topic, err)
			ev.Outcome, ev.Err = OutcomeError, err.Error()
		}
		ev.setPayload(msg.Payload)
		if len(c.lookups) > 0 {
			ev.Lookups = slices.Clone(c.lookups)
		}
		e.record(rt, &ev)
		c.end()
	}()
	c.load(e.active.Load().rs, &msg, ks.trigger)
	if err := c.setRule(r, ks.trigger.filter); err != nil {
		rt.stats.ConditionErrors.Add(1)
		e.evalError(rt, msg.Topic, err)
		ev.Outcome, ev.Err = OutcomeError, err.Error()
		return
	}
	c.key = ks.key
	if r.Uses()&rules.UsesKey != 0 {
		c.ev.Vars[rules.VarKey] = ks.key
	}
	c.setKeyVars(rt, ks, at, false) // windows expire by the timer's time too
	if r.Uses()&rules.UsesPrev != 0 {
		c.ev.Vars[rules.VarPrev] = prevValue(ks.triggerPrev)
	}
	ev.Windows = c.seenWindows()
	ev.Outcome, ev.Until = e.tryFire(c, rt, ks, at)
	if ev.Outcome == OutcomeCooldown && r.Absent > 0 {
		// The silence goes on: report it when the cooldown ends, unless
		// a message comes first.
		e.schedule(ks, ks.cooldownUntil.time())
	}
}

// load prepares c for a message kept in state, outside of matching.
func (c *evalCtx) load(rs *rules.RuleSet, msg *Message, s *snapshot) {
	c.rs = rs
	c.hop = 0
	c.trig, c.repeat = trigMessage, 0
	c.m = *msg
	c.msg = &c.m
	c.set = 0
	c.payload, c.payloadSet = s.payloadValue(), true
	c.levels = topic.Split(msg.Topic, c.levels[:0])
}
