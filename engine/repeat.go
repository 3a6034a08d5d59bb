package engine

import (
	"errors"
	"fmt"
	"time"
)

// repeatState is a firing key's repeats (docs/time.md, "repeat"): its
// actions run again every rule.Repeat after the firing while the episode
// fires and is not acknowledged.
type repeatState struct {
	t     timer
	ks    *keyState
	count int32  // repeats made so far
	f     firing // the firing's environment
}

// due makes the key's next repeat.
func (r *repeatState) due(e *Engine, at, now time.Time, late bool) {
	if !r.ks.owner.dead {
		e.repeatDue(r.ks, at, now, late)
	}
}

// startRepeats schedules the first repeat of the firing in c. Called with
// stateMu held.
func (e *Engine) startRepeats(c *evalCtx, rt *ruleRuntime, ks *keyState, at time.Time) {
	x := ks.ext()
	if x.rep == nil {
		x.rep = &repeatState{ks: ks}
		x.rep.t = newTimer(x.rep)
	}
	x.rep.count = 0
	x.rep.f = c.firingNow(rt.rule, ks)
	e.setTimer(&x.rep.t, at.Add(rt.rule.Repeat))
	e.markDirty(ks)
}

// stopRepeats cancels a key's repeats. Called with stateMu held.
func (e *Engine) stopRepeats(ks *keyState) {
	if rep := ks.rep(); rep != nil {
		e.stopTimer(&rep.t)
		ks.x.rep = nil
	}
}

// repeatDue makes a key's next repeat: a firing like the first (counted,
// run through the rule's mode), with `repeat` one more. Called with
// stateMu held. On the real clock (late), repeats the engine missed while
// it could not run are not made up: the next is a whole interval from now.
func (e *Engine) repeatDue(ks *keyState, at, now time.Time, late bool) {
	rt := ks.owner.rt
	r := rt.rule
	rep := ks.rep()
	if rep == nil || !ks.firing || ks.acked || r.Repeat <= 0 {
		e.stopRepeats(ks)
		return
	}
	rep.count++
	f := rep.f
	f.repeat = rep.count
	ev := Evaluation{Time: at, Rule: r.Name, Topic: f.topic, Key: ks.key, Timer: true, Trigger: "repeat"}
	e.withFiring(rt, ks, &f, at, func(c *evalCtx) {
		ev.Outcome = e.fire(c, rt, ks, at)
		ev.Windows = c.seenWindows()
	})
	ev.setPayload(f.payload)
	e.record(rt, &ev)
	if r.MaxRepeats > 0 && int(rep.count) >= r.MaxRepeats {
		e.stopRepeats(ks)
	} else {
		next := at.Add(r.Repeat)
		if late && next.Before(now) {
			next = now.Add(r.Repeat)
		}
		e.setTimer(&rep.t, next)
	}
	e.markDirty(ks)
}

// ErrNoRule is returned for a rule name the active set does not hold.
var ErrNoRule = errors.New("no such rule")

// ErrDisabled is returned by RunNow for a rule that is disabled.
var ErrDisabled = errors.New("the rule is disabled")

// Ack acknowledges the firing keys of a rule — key, or every firing key
// when key is "" — (docs/time.md, "repeat"): their repeats stop; the
// episode stays firing and on_clear still runs when it clears. It returns
// how many keys it acknowledged.
func (e *Engine) Ack(rule, key string) (int, error) {
	rt := e.active.Load().runtime(rule)
	if rt == nil {
		return 0, fmt.Errorf("%w %q", ErrNoRule, rule)
	}
	if rt.st == nil {
		return 0, nil
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	n := 0
	ack := func(ks *keyState) {
		if ks.firing && !ks.acked {
			ks.acked = true
			e.stopRepeats(ks)
			e.markDirty(ks)
			n++
		}
	}
	if key != "" {
		if ks := rt.st.keys[key]; ks != nil {
			ack(ks)
		}
		return n, nil
	}
	for _, ks := range rt.st.keys {
		ack(ks)
	}
	return n, nil
}
