package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// trigger is a rule's schedule or sun trigger: one timer in the engine's
// heap at its next instant (docs/time.md).
type trigger struct {
	t    timer
	rt   *ruleRuntime // the runtime owning it now (changes on a reload handover)
	kind trigKind     // trigSchedule or trigSun

	// skipped is the last stretch of days without the sun event that was
	// logged, so that a polar summer is logged once.
	skipped time.Time
}

// missedAfter is how late a trigger may fire on the real clock (Run): a
// trigger due longer ago than this — the machine slept, the clock jumped
// — is skipped to its next instant, as cron skips the firings it missed.
const missedAfter = time.Minute

// zone returns the time zone of a rule's triggers.
func (e *Engine) zone(r *rules.Rule) *time.Location {
	if r.TimeZone != nil {
		return r.TimeZone
	}
	return e.tz
}

// startTriggers gives a rule runtime its triggers: taken over from the
// previous runtime of an unchanged rule (their next instants stay), or new
// ones at their next instant after now. Called with stateMu held.
func (e *Engine) startTriggers(rt, prev *ruleRuntime, now time.Time) {
	r := rt.rule
	if !r.Timed() || !rt.enabled.Load() {
		return
	}
	if prev != nil && len(prev.trigs) > 0 {
		rt.trigs, prev.trigs = prev.trigs, nil
		for _, tr := range rt.trigs {
			tr.rt = rt
		}
		return
	}
	if r.Schedule != nil {
		rt.trigs = append(rt.trigs, &trigger{kind: trigSchedule})
	}
	if r.Sun != nil {
		rt.trigs = append(rt.trigs, &trigger{kind: trigSun})
	}
	for _, tr := range rt.trigs {
		tr.rt = rt
		tr.t = newTimer(tr)
		e.scheduleTrigger(tr, now)
	}
}

// stopTriggers cancels a rule runtime's triggers. Called with stateMu held.
func (e *Engine) stopTriggers(rt *ruleRuntime) {
	for _, tr := range rt.trigs {
		e.stopTimer(&tr.t)
	}
	rt.trigs = nil
}

// scheduleTrigger sets a trigger's timer to its next instant after t; a
// trigger with none (a schedule that never fires again) is logged and
// left unset. Called with stateMu held.
func (e *Engine) scheduleTrigger(tr *trigger, after time.Time) {
	r := tr.rt.rule
	var next time.Time
	switch tr.kind {
	case trigSchedule:
		next = r.Schedule.Next(after, e.zone(r))
	case trigSun:
		if e.location == nil {
			return // the loader refuses sun rules without a location
		}
		occ, ok := sun.Next(r.Sun.Event, r.Sun.Offset, after, *e.location, e.zone(r))
		if occ.Skipped > 0 && !occ.FirstSkipped.Equal(tr.skipped) {
			tr.skipped = occ.FirstSkipped
			e.log.Info("no sun event on some days: the rule does not fire on them", "rule", r.Name,
				"event", r.Sun.Event.String(), "days", occ.Skipped,
				"from", occ.FirstSkipped.Format(time.DateOnly), "to", occ.LastSkipped.Format(time.DateOnly))
		}
		if ok {
			next = occ.At
		}
	}
	if next.IsZero() {
		e.log.Warn("the rule's trigger has no next instant: it will not fire by time again", "rule", r.Name, "trigger", tr.kind.String())
		return
	}
	e.setTimer(&tr.t, next)
}

// due evaluates a rule for its trigger's instant at, then sets the
// trigger to its next instant. On the real clock (late true), an instant
// missed by more than missedAfter is skipped. Called with stateMu held.
func (tr *trigger) due(e *Engine, at, now time.Time, late bool) {
	rt := tr.rt
	if late && now.Sub(at) > missedAfter {
		e.log.Info("missed a timed firing while the engine could not run: skipped, as cron does", "rule", rt.rule.Name,
			"trigger", tr.kind.String(), "was_due", at.Format(time.RFC3339))
		e.scheduleTrigger(tr, now)
		return
	}
	e.evaluateTimed(rt, tr.kind, at.In(e.zone(rt.rule)))
	e.scheduleTrigger(tr, at)
}

// evaluateTimed evaluates a rule for a timed trigger at instant at: no
// topic, no payload, `now` the instant, captures "" (docs/time.md). Called
// with stateMu held.
func (e *Engine) evaluateTimed(rt *ruleRuntime, kind trigKind, at time.Time) {
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	msg := Message{Time: at}
	c.load(e.active.Load().rs, &msg, &snapshot{time: at, filter: -1})
	c.trig = kind
	defer c.end()
	e.evaluateLocked(c, rt, -1)
}

// sunCache keeps the sun's events of the days rules asked about: the
// `sun` of an evaluation costs a position (about half a microsecond), not
// a day's events (five).
type sunCache struct {
	mu   sync.Mutex
	days map[sunDay]sun.Events
}

type sunDay struct {
	y    int
	m    time.Month
	d    int
	zone *time.Location
}

// sun returns the environment's `sun` at t for rule r: nil when the
// engine has no location.
func (c *evalCtx) sun(r *rules.Rule, t time.Time) any {
	e := c.e
	if e.location == nil {
		return nil
	}
	tz := e.zone(r)
	lt := t.In(tz)
	day := sunDay{lt.Year(), lt.Month(), lt.Day(), tz}
	e.suns.mu.Lock()
	ev, ok := e.suns.days[day]
	if !ok {
		if e.suns.days == nil || len(e.suns.days) > 64 {
			e.suns.days = map[sunDay]sun.Events{}
		}
		ev = sun.Day(lt, *e.location, tz)
		e.suns.days[day] = ev
	}
	e.suns.mu.Unlock()
	return sun.ValueAt(t, *e.location, ev)
}

// String of a trigger kind for logs.
var _ fmt.Stringer = trigMessage
