// Package dryrun runs a rule set with no side effects on a virtual clock:
// messages are fed at given times, time is advanced (firing due timers on
// the way, each at its own deadline, in order), and every evaluation and
// every rendered action is collected instead of being run. Nothing is
// published and no HTTP request is made.
//
// `mqtt-rules test` (rule test files and --message dry runs), `mqtt-rules
// replay` and --explain are built on it.
package dryrun

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// DefaultStart is where the virtual clock of a rule test starts unless the
// case says otherwise: a fixed time, so that tests reading `now` are
// repeatable. It is a Thursday, at noon UTC.
var DefaultStart = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Options configures a Runner.
type Options struct {
	// Start is the virtual time the clock starts at; the zero time means
	// DefaultStart.
	Start time.Time

	// Feedback feeds every publish whose topic reaches a rule of the set
	// back in as a message, as the broker would deliver it to the running
	// engine (at the same virtual time, QoS at most 1, retain flag clear,
	// after the message being handled), so chains of rules run as they
	// would live. Chains are cut at MaxHops like the engine cuts them.
	Feedback bool

	// MaxHops and MaxKeys are the engine's limits (0: the engine's
	// defaults).
	MaxHops int
	MaxKeys int

	// TimeZone and Location are the engine's --timezone (nil: the
	// machine's) and --latitude/--longitude (nil: none).
	TimeZone *time.Location
	Location *sun.Location
}

// Trigger says what started a Step.
type Trigger uint8

// The triggers of a Step.
const (
	// TriggerMessage is a message fed by the caller.
	TriggerMessage Trigger = iota + 1
	// TriggerFeedback is a publish of the rule set fed back in (Options.Feedback).
	TriggerFeedback
	// TriggerTimer is a timer (for, absent, a delay, a repeat, a schedule
	// or the sun) that came due.
	TriggerTimer
)

// Step is one thing that happened on the virtual clock: a message handled,
// or the timers due at one instant fired, with the evaluations it caused.
type Step struct {
	Time    time.Time
	Trigger Trigger
	Message engine.Message // the message handled; zero for a timer step
	From    string         // for TriggerFeedback: the rule whose publish this is
	Events  []Event        // one per rule evaluated, in order
}

// Event is one evaluation of one rule and the actions it ran.
type Event struct {
	engine.Evaluation

	// OnClear tells that Actions are the rule's on_clear actions (an
	// episode ended, or a heartbeat came back after a silence).
	OnClear bool
	// Actions are the rendered actions the evaluation ran, in order. An
	// action that failed to render is missing here and explained in Notes.
	Actions []actions.Request
	// Notes are the problems the engine logged during the evaluation that
	// Err does not hold: an action that failed to render, a loop cut.
	Notes []string
}

// Firing reports whether the evaluation ran actions (its own or on_clear's).
func (ev *Event) Firing() bool {
	return ev.Outcome == engine.OutcomeFired || ev.OnClear
}

// Runner runs one rule set on a virtual clock. It is not safe for
// concurrent use.
type Runner struct {
	eng      *engine.Engine
	rs       *rules.RuleSet
	now      time.Time
	feedback bool
	levels   []string

	// Collected while the engine handles one message or one deadline.
	reqs   []actions.Request
	notes  []string
	events []Event
}

// New returns a Runner for rs with its clock at opts.Start.
func New(rs *rules.RuleSet, opts Options) *Runner {
	r := &Runner{rs: rs, now: opts.Start, feedback: opts.Feedback}
	if r.now.IsZero() {
		r.now = DefaultStart
	}
	if opts.TimeZone == nil {
		// `now` reads in the zone the start is written in, unless the
		// case or --timezone says another.
		opts.TimeZone = r.now.Location()
	}
	r.eng = engine.New(engine.Config{
		Actions:  sink{r},
		Clock:    clock{r},
		Logger:   slog.New(noteHandler{r}),
		Observe:  r.observe,
		TraceLen: -1,
		MaxHops:  opts.MaxHops,
		MaxKeys:  opts.MaxKeys,
		TimeZone: opts.TimeZone,
		Location: opts.Location,
		// Log (and so note) every error: the limiter compares virtual times.
		ErrorLogInterval: time.Nanosecond,
	})
	r.eng.SetRules(rs)
	return r
}

// Rules returns the rule set the Runner runs.
func (r *Runner) Rules() *rules.RuleSet { return r.rs }

// Now returns the virtual time.
func (r *Runner) Now() time.Time { return r.now }

// Send fires the timers due at or before the message's time (a zero Time
// means Now; a time before Now is taken as Now), then handles the message
// at that time, then any publishes fed back. It returns what happened, in
// order.
func (r *Runner) Send(m engine.Message) []Step {
	if m.Time.IsZero() || m.Time.Before(r.now) {
		m.Time = r.now
	}
	steps := r.Advance(m.Time)
	return r.handle(steps, m, TriggerMessage, "")
}

// Advance moves the clock to t, firing every timer due at or before t at
// its own deadline, in deadline order (publishes they make are fed back
// before the next deadline). It returns what happened, in order. A t
// before Now does nothing.
func (r *Runner) Advance(t time.Time) []Step {
	var steps []Step
	for {
		next, ok := r.eng.NextTimer()
		if !ok || next.After(t) {
			break
		}
		if next.After(r.now) {
			r.now = next
		}
		r.eng.Advance(r.now)
		s := Step{Time: r.now, Trigger: TriggerTimer, Events: r.take()}
		if len(s.Events) > 0 {
			steps = append(steps, s)
			steps = r.feed(steps, s)
		}
	}
	if t.After(r.now) {
		r.now = t
	}
	return steps
}

// handle runs one message through the engine, then the publishes it leads
// to when Feedback is on.
func (r *Runner) handle(steps []Step, m engine.Message, trig Trigger, from string) []Step {
	msg := m
	msg.Payload = append([]byte(nil), m.Payload...) // the engine owns what it is handed
	r.eng.Handle(msg)
	s := Step{Time: m.Time, Trigger: trig, Message: m, From: from, Events: r.take()}
	steps = append(steps, s)
	return r.feed(steps, s)
}

// feed hands the publishes of step s that reach a rule of the set back to
// the engine, breadth first, when Feedback is on.
func (r *Runner) feed(steps []Step, s Step) []Step {
	if !r.feedback {
		return steps
	}
	type pending struct {
		msg  engine.Message
		from string
	}
	var queue []pending
	collect := func(s Step) {
		for _, ev := range s.Events {
			for _, a := range ev.Actions {
				m, ok := a.Action.(interface{ MQTTMessage() *actions.Publish })
				if !ok {
					continue
				}
				p := m.MQTTMessage()
				r.levels = topic.Split(p.Topic, r.levels[:0])
				if !r.rs.Reaches(r.levels) {
					continue
				}
				queue = append(queue, pending{
					msg: engine.Message{Topic: p.Topic, Payload: p.Payload,
						QoS: min(p.QoS, 1), Time: r.now, Broker: p.Broker, Properties: p.Properties},
					from: ev.Rule,
				})
			}
		}
	}
	collect(s)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		msg := p.msg
		msg.Payload = append([]byte(nil), p.msg.Payload...)
		r.eng.Handle(msg)
		fs := Step{Time: p.msg.Time, Trigger: TriggerFeedback, Message: p.msg, From: p.from, Events: r.take()}
		steps = append(steps, fs)
		collect(fs)
	}
	return steps
}

// take returns the events collected since the last take.
func (r *Runner) take() []Event {
	out := r.events
	r.events, r.reqs, r.notes = nil, nil, nil
	return out
}

// observe receives every evaluation after the actions it ran.
func (r *Runner) observe(ev engine.Evaluation) {
	e := Event{
		Evaluation: ev,
		OnClear:    ev.Outcome == engine.OutcomeCleared || ev.Outcome == engine.OutcomeBack || ev.OnClear,
		Actions:    r.reqs,
	}
	for _, n := range r.notes {
		if ev.Err == "" || n != ev.Err {
			e.Notes = append(e.Notes, n)
		}
	}
	r.events = append(r.events, e)
	r.reqs, r.notes = nil, nil
}

// sink collects the actions of the evaluation under way.
type sink struct{ r *Runner }

func (s sink) Do(req actions.Request) { s.r.reqs = append(s.r.reqs, req) }

// clock is the Runner's virtual time.
type clock struct{ r *Runner }

func (c clock) Now() time.Time { return c.r.now }

// noteHandler turns the engine's warnings and errors into notes on the
// evaluation under way.
type noteHandler struct{ r *Runner }

func (h noteHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h noteHandler) Handle(_ context.Context, rec slog.Record) error {
	note := rec.Message
	var errText string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			errText = a.Value.String()
		}
		return true
	})
	if errText != "" {
		if rec.Message == "rule evaluation failed" {
			note = errText
		} else {
			note = fmt.Sprintf("%s: %s", rec.Message, errText)
		}
	}
	h.r.notes = append(h.r.notes, note)
	return nil
}

func (h noteHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h noteHandler) WithGroup(string) slog.Handler      { return h }
