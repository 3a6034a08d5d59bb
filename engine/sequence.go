package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// trigKind is what started an evaluation: the environment's `trigger`
// (docs/time.md).
type trigKind uint8

const (
	trigMessage trigKind = iota
	trigSchedule
	trigSun
	trigControl
)

var trigNames = [...]string{trigMessage: "message", trigSchedule: "schedule", trigSun: "sun", trigControl: "control"}

func (k trigKind) String() string { return trigNames[k] }

func parseTrig(s string) trigKind {
	if i := slices.Index(trigNames[:], s); i >= 0 {
		return trigKind(i)
	}
	return trigMessage
}

// firing is the environment a firing's actions render from: kept for the
// steps after a delay, and for repeats (docs/time.md).
type firing struct {
	msg    *snapshot // the message that fired the rule; for a timed firing, its instant only
	prev   *snapshot // prev as the firing saw it (kept when the rule reads prev)
	trig   trigKind
	repeat int32 // 0 for the firing, n for its nth repeat
	hop    int32 // loop hop of msg (docs/reliability.md)
}

// sequence is a firing's (or an on_clear's) actions waiting in a delay
// step, or, with mode: queued, waiting for the key's earlier sequence to
// end.
type sequence struct {
	t       timer // when the delay ends; not scheduled while queued
	onClear bool
	next    int32 // the step to run when the delay ends
	f       firing
}

// seqState is a key's waiting sequences.
type seqState struct {
	waiting []*sequence // started, waiting in a delay, oldest first
	queued  []*sequence // mode: queued firings not started yet, oldest first
}

// firingNow captures the environment of the firing being evaluated in c.
func (c *evalCtx) firingNow(r *rules.Rule, ks *keyState) firing {
	f := firing{msg: snapshotOf(c.msg, c.filter), trig: c.trig, repeat: int32(c.repeat), hop: int32(c.hop)}
	if ks != nil && ks.trigger != nil && ks.trigger.time.Equal(c.msg.Time) && ks.trigger.topic == c.msg.Topic {
		f.msg = ks.trigger // the for or absent message: shared, not copied
	}
	if r.Uses()&rules.UsesPrev != 0 && ks != nil {
		f.prev = ks.prev
	}
	return f
}

// admit decides what a new firing of a rule with delay steps does, by the
// rule's mode, and says whether it runs now; a queued firing is kept to
// run later. A firing cancels the key's waiting on_clear sequence.
// Called with stateMu held.
func (e *Engine) admit(c *evalCtx, rt *ruleRuntime, ks *keyState) (runNow bool, outcome Outcome) {
	r := rt.rule
	ss := ks.seq
	if ss != nil {
		e.cancelSequences(ks, func(s *sequence) bool { return s.onClear })
	}
	busy := ss != nil && slices.ContainsFunc(ss.waiting, func(s *sequence) bool { return !s.onClear })
	switch {
	case !busy:
		return true, OutcomeFired
	case r.Mode == rules.ModeRestart:
		e.cancelSequences(ks, func(s *sequence) bool { return !s.onClear })
		return true, OutcomeFired
	case r.Mode == rules.ModeParallel:
		return true, OutcomeFired
	case r.Mode == rules.ModeQueued && len(ss.queued) < r.MaxQueued:
		ss.queued = append(ss.queued, &sequence{f: c.firingNow(r, ks)})
		e.markDirty(ks)
		return false, OutcomeQueued
	}
	rt.stats.Suppressed.Add(1)
	return false, OutcomeSuppressed
}

// runSteps runs the steps of a rule's actions (or on_clear) from step
// start, rendered in c's environment, up to the first delay: then the rest
// waits as a sequence of key ks. Called with stateMu held (or for a
// stateless rule, which has no delays, without).
func (e *Engine) runSteps(c *evalCtx, rt *ruleRuntime, ks *keyState, onClear bool, start int, at time.Time, f *firing) {
	acts := rt.rule.Actions
	if onClear {
		acts = rt.rule.OnClear
	}
	for i := start; i < len(acts); i++ {
		if d := acts[i].Delay; d > 0 {
			if ks == nil {
				return // cannot happen: a rule with delays keeps state
			}
			s := &sequence{onClear: onClear, next: int32(i + 1)}
			if f != nil {
				s.f = *f
			} else {
				s.f = c.firingNow(rt.rule, ks)
			}
			s.t = timer{idx: -1, kind: timerStep, ks: ks, seq: s}
			if ks.seq == nil {
				ks.seq = &seqState{}
			}
			ks.seq.waiting = append(ks.seq.waiting, s)
			e.setTimer(&s.t, at.Add(d))
			e.markDirty(ks)
			return
		}
		e.runAction(c, rt, &acts[i])
	}
}

// stepDue continues a sequence whose delay ended: its next steps run,
// rendered from the firing's environment at the time they run. When it
// ends, a queued firing of the key starts. Called with stateMu held.
func (e *Engine) stepDue(s *sequence, at time.Time) {
	ks := s.t.ks
	rt := ks.owner.rt
	ss := ks.seq
	if i := slices.Index(ss.waiting, s); i >= 0 {
		ss.waiting = slices.Delete(ss.waiting, i, i+1)
	}
	e.markDirty(ks)
	ev := Evaluation{Time: at, Rule: rt.rule.Name, Topic: s.f.msg.topic, Key: ks.key, Timer: true, Trigger: "delay",
		Outcome: OutcomeContinued, OnClear: s.onClear}
	e.withFiring(rt, ks, &s.f, at, func(c *evalCtx) {
		e.runSteps(c, rt, ks, s.onClear, int(s.next), at, &s.f)
	})
	e.startQueued(ks, at)
	ev.setPayload(s.f.msg.payload)
	e.record(rt, &ev)
}

// startQueued starts the oldest queued firing of the key when no firing
// sequence of it waits any more. Called with stateMu held.
func (e *Engine) startQueued(ks *keyState, at time.Time) {
	ss := ks.seq
	if ss == nil {
		return
	}
	for len(ss.queued) > 0 && !slices.ContainsFunc(ss.waiting, func(s *sequence) bool { return !s.onClear }) {
		q := ss.queued[0]
		ss.queued = ss.queued[1:]
		rt := ks.owner.rt
		e.withFiring(rt, ks, &q.f, at, func(c *evalCtx) {
			e.runSteps(c, rt, ks, false, 0, at, &q.f)
		})
	}
	if len(ss.waiting) == 0 && len(ss.queued) == 0 {
		ks.seq = nil
	}
}

// cancelSequences cancels the key's waiting and queued sequences that
// match. Called with stateMu held.
func (e *Engine) cancelSequences(ks *keyState, match func(*sequence) bool) (n int) {
	ss := ks.seq
	if ss == nil {
		return 0
	}
	keep := ss.waiting[:0]
	for _, s := range ss.waiting {
		if match(s) {
			e.stopTimer(&s.t)
			n++
		} else {
			keep = append(keep, s)
		}
	}
	clear(ss.waiting[len(keep):])
	ss.waiting = keep
	q := ss.queued[:0]
	for _, s := range ss.queued {
		if match(s) {
			n++
		} else {
			q = append(q, s)
		}
	}
	clear(ss.queued[len(q):])
	ss.queued = q
	if len(ss.waiting) == 0 && len(ss.queued) == 0 {
		ks.seq = nil
	}
	if n > 0 {
		e.markDirty(ks)
	}
	return n
}

// withFiring prepares an evaluation context with a firing's environment
// at time at — its message, key, prev, trigger and repeat; fired, windows
// and state() as they are now — and calls fn with it. Called with stateMu
// held.
func (e *Engine) withFiring(rt *ruleRuntime, ks *keyState, f *firing, at time.Time, fn func(c *evalCtx)) {
	r := rt.rule
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	msg := f.msg.message()
	msg.Time = at // `now` is the time the steps run
	c.load(e.active.Load().rs, &msg, f.msg)
	c.hop, c.trig, c.repeat = int(f.hop), f.trig, int(f.repeat)
	defer c.end()
	defer func() {
		if p := recover(); p != nil {
			rt.stats.ConditionErrors.Add(1)
			e.evalError(rt, msg.Topic, fmt.Errorf("panic: %v", p))
		}
	}()
	if err := c.setRule(r, f.msg.filter); err != nil {
		rt.stats.ConditionErrors.Add(1)
		e.evalError(rt, msg.Topic, err)
		return
	}
	c.key = ks.key
	if r.Uses()&rules.UsesKey != 0 {
		c.ev.Vars[rules.VarKey] = ks.key
	}
	c.setKeyVars(rt, ks, at, false)
	if r.Uses()&rules.UsesPrev != 0 {
		c.ev.Vars[rules.VarPrev] = prevValue(f.prev)
	}
	fn(c)
}

// WaitingSequence is a sequence of a key waiting in a delay (or queued),
// for display.
type WaitingSequence struct {
	OnClear bool      `json:"on_clear,omitempty"`
	Step    int       `json:"step"`             // the action (0-based) that runs when it continues
	Until   time.Time `json:"until,omitzero"`   // when; zero for a queued firing
	Queued  bool      `json:"queued,omitempty"` // waits for the key's earlier sequence to end
	Repeat  int       `json:"repeat,omitempty"`
}

// waitingOf lists a key's waiting sequences. Called with stateMu held.
func waitingOf(ks *keyState) []WaitingSequence {
	if ks.seq == nil {
		return nil
	}
	var out []WaitingSequence
	for _, s := range ks.seq.waiting {
		out = append(out, WaitingSequence{OnClear: s.onClear, Step: int(s.next), Until: s.t.at, Repeat: int(s.f.repeat)})
	}
	for _, s := range ks.seq.queued {
		out = append(out, WaitingSequence{Queued: true, Repeat: int(s.f.repeat)})
	}
	return out
}
