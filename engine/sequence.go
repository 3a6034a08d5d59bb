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
// steps after a delay, and for repeats (docs/time.md). Its message is kept
// compact (no decoded payload: later steps decode it again), as 100,000
// keys may each hold one.
type firing struct {
	topic    string
	payload  []byte
	time     instant
	filter   int32 // the rule's filter that matched; -1 for a timed firing
	qos      byte
	retained bool
	trig     trigKind
	repeat   int32     // 0 for the firing, n for its nth repeat
	hop      int32     // loop hop of the message (docs/reliability.md)
	prev     *snapshot // prev as the firing saw it (kept when the rule reads prev)
}

// snapshot returns the firing's message as a snapshot, decoded on demand.
func (f *firing) snapshot() *snapshot {
	return &snapshot{topic: f.topic, payload: f.payload, qos: f.qos, retained: f.retained, time: f.time.time(), filter: int(f.filter)}
}

// sequence is a firing's (or an on_clear's) actions waiting in a delay
// step, or, with mode: queued, waiting for the key's earlier sequence to
// end.
type sequence struct {
	t       timer // when the delay ends; not scheduled while queued
	ks      *keyState
	onClear bool
	queued  bool  // a queued firing, not started
	next    int32 // the step to run when the delay ends
	f       firing
}

// due continues the sequence when its delay ends.
func (s *sequence) due(e *Engine, at, _ time.Time, _ bool) {
	if !s.ks.owner.dead {
		e.stepDue(s, at)
	}
}

// firingNow captures the environment of the firing being evaluated in c.
func (c *evalCtx) firingNow(r *rules.Rule, ks *keyState) firing {
	m := c.msg
	f := firing{topic: m.Topic, payload: m.Payload, time: instantOf(m.Time), filter: int32(c.filter),
		qos: m.QoS, retained: m.Retained, trig: c.trig, repeat: int32(c.repeat), hop: int32(c.hop)}
	if r.Uses()&rules.UsesPrev != 0 && ks != nil {
		f.prev = ks.prev
	}
	return f
}

// waitingFiring reports whether a firing sequence of the key waits in a
// delay.
func waitingFiring(ks *keyState) bool {
	if ks.x == nil {
		return false
	}
	return slices.ContainsFunc(ks.x.seqs, func(s *sequence) bool { return !s.onClear && !s.queued })
}

// admit decides what a new firing of a rule with delay steps does, by the
// rule's mode, and says whether it runs now; a queued firing is kept to
// run later. A firing cancels the key's waiting on_clear sequence.
// Called with stateMu held.
func (e *Engine) admit(c *evalCtx, rt *ruleRuntime, ks *keyState) (runNow bool, outcome Outcome) {
	r := rt.rule
	e.cancelSequences(ks, func(s *sequence) bool { return s.onClear })
	switch {
	case !waitingFiring(ks):
		return true, OutcomeFired
	case r.Mode == rules.ModeRestart:
		e.cancelSequences(ks, func(s *sequence) bool { return !s.onClear })
		return true, OutcomeFired
	case r.Mode == rules.ModeParallel:
		return true, OutcomeFired
	case r.Mode == rules.ModeQueued && queuedCount(ks) < r.MaxQueued:
		x := ks.ext()
		x.seqs = append(x.seqs, &sequence{ks: ks, queued: true, f: c.firingNow(r, ks)})
		e.markDirty(ks)
		return false, OutcomeQueued
	}
	rt.stats.Suppressed.Add(1)
	return false, OutcomeSuppressed
}

func queuedCount(ks *keyState) int {
	n := 0
	if ks.x != nil {
		for _, s := range ks.x.seqs {
			if s.queued {
				n++
			}
		}
	}
	return n
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
			s := &sequence{ks: ks, onClear: onClear, next: int32(i + 1)}
			if f != nil {
				s.f = *f
			} else {
				s.f = c.firingNow(rt.rule, ks)
			}
			s.t = newTimer(s)
			x := ks.ext()
			x.seqs = append(x.seqs, s)
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
	ks := s.ks
	rt := ks.owner.rt
	e.removeSequence(ks, s)
	e.markDirty(ks)
	ev := Evaluation{Time: at, Rule: rt.rule.Name, Topic: s.f.topic, Key: ks.key, Timer: true, Trigger: "delay",
		Outcome: OutcomeContinued, OnClear: s.onClear}
	e.withFiring(rt, ks, &s.f, at, func(c *evalCtx) {
		e.runSteps(c, rt, ks, s.onClear, int(s.next), at, &s.f)
	})
	e.startQueued(ks, at)
	ev.setPayload(s.f.payload)
	e.record(rt, &ev)
}

// removeSequence drops s from the key's sequences.
func (e *Engine) removeSequence(ks *keyState, s *sequence) {
	if ks.x == nil {
		return
	}
	if i := slices.Index(ks.x.seqs, s); i >= 0 {
		ks.x.seqs = slices.Delete(ks.x.seqs, i, i+1)
	}
}

// startQueued starts the oldest queued firing of the key when no firing
// sequence of it waits any more. Called with stateMu held.
func (e *Engine) startQueued(ks *keyState, at time.Time) {
	for ks.x != nil && !waitingFiring(ks) {
		i := slices.IndexFunc(ks.x.seqs, func(s *sequence) bool { return s.queued })
		if i < 0 {
			return
		}
		q := ks.x.seqs[i]
		ks.x.seqs = slices.Delete(ks.x.seqs, i, i+1)
		rt := ks.owner.rt
		e.withFiring(rt, ks, &q.f, at, func(c *evalCtx) {
			e.runSteps(c, rt, ks, false, 0, at, &q.f)
		})
	}
}

// cancelSequences cancels the key's waiting and queued sequences that
// match. Called with stateMu held.
func (e *Engine) cancelSequences(ks *keyState, match func(*sequence) bool) (n int) {
	if ks.x == nil || len(ks.x.seqs) == 0 {
		return 0
	}
	keep := ks.x.seqs[:0]
	for _, s := range ks.x.seqs {
		if match(s) {
			e.stopTimer(&s.t)
			n++
		} else {
			keep = append(keep, s)
		}
	}
	clear(ks.x.seqs[len(keep):])
	ks.x.seqs = keep
	if len(keep) == 0 {
		ks.x.seqs = nil
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
	snap := f.snapshot()
	msg := snap.message()
	msg.Time = at // `now` is the time the steps run
	c.load(e.active.Load().rs, &msg, snap)
	c.hop, c.trig, c.repeat = int(f.hop), f.trig, int(f.repeat)
	defer c.end()
	defer func() {
		if p := recover(); p != nil {
			rt.stats.ConditionErrors.Add(1)
			e.evalError(rt, msg.Topic, fmt.Errorf("panic: %v", p))
		}
	}()
	if err := c.setRule(r, int(f.filter)); err != nil {
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
	if ks.x == nil {
		return nil
	}
	var out []WaitingSequence
	for _, s := range ks.x.seqs {
		if s.queued {
			out = append(out, WaitingSequence{Queued: true, Repeat: int(s.f.repeat)})
		} else {
			out = append(out, WaitingSequence{OnClear: s.onClear, Step: int(s.next), Until: s.t.when(), Repeat: int(s.f.repeat)})
		}
	}
	return out
}
