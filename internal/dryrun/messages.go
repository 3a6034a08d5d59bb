package dryrun

import (
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"io"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// ParseMessage parses a --message argument, TOPIC=PAYLOAD: the topic is
// everything before the first "=" and must be a valid topic name.
func ParseMessage(s string) (engine.Message, error) {
	t, payload, ok := strings.Cut(s, "=")
	if !ok {
		return engine.Message{}, fmt.Errorf("message %q: want TOPIC=PAYLOAD", s)
	}
	if err := topic.ValidateName(t); err != nil {
		return engine.Message{}, fmt.Errorf("message %q: %w", s, err)
	}
	return engine.Message{Topic: t, Payload: []byte(payload)}, nil
}

// DryRunOptions configures DryRun.
type DryRunOptions struct {
	// Now is the virtual time of the messages (zero: the current time).
	Now time.Time
	// Until, when positive, runs the clock that much longer after the
	// messages, showing the timers (for, absent) that fire.
	Until time.Duration
	// Explain says, for every rule a message reached, why it did or did
	// not fire.
	Explain bool
	// TimeZone and Location are --timezone and --latitude/--longitude.
	TimeZone *time.Location
	Location *sun.Location
}

// DryRunSummary counts what a DryRun did.
type DryRunSummary struct {
	Messages int // the messages given
	FedBack  int // publishes of the rules that reached the set again
	Matched  int // rule evaluations for a message
	Fired    int // evaluations that ran actions (timers included)
	Actions  int
}

// DryRun feeds msgs, in order and all at opts.Now, to rs on a virtual
// clock with no side effects (publishes that reach the set are fed back,
// as a broker would) and writes, for each message, the rules its topic
// reached, their condition's value, what they did, and the actions of
// those that fired, fully rendered (secrets redacted):
//
//	message sensors/greenhouse/temperature {"value": 38.5}
//	    too-hot        when true   fired
//	      log      info  greenhouse at 38.5
//	    sensor-silent  always      heartbeat
//
// then a one-line summary.
func DryRun(w io.Writer, rs *rules.RuleSet, msgs []engine.Message, opts DryRunOptions) DryRunSummary {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := New(rs, Options{Start: now, Feedback: true, TimeZone: opts.TimeZone, Location: opts.Location})
	p := &Printer{W: w, Rules: rs, Explain: opts.Explain}
	if opts.Until > 0 {
		p.Start = now
	}
	var sum DryRunSummary
	show := func(steps []Step) {
		for _, s := range steps {
			p.Step(s)
			switch s.Trigger {
			case TriggerMessage:
				sum.Messages++
			case TriggerFeedback:
				sum.FedBack++
			}
			for _, ev := range s.Events {
				if !ev.Timer {
					sum.Matched++
				}
				if ev.Firing() && len(ev.Actions) > 0 {
					sum.Fired++
				}
				sum.Actions += len(ev.Actions)
			}
		}
	}
	for _, m := range msgs {
		m.Time = now
		show(r.Send(m))
	}
	if opts.Until > 0 {
		show(r.Advance(now.Add(opts.Until)))
	}
	clock := now.Format(time.RFC3339)
	if opts.Until > 0 {
		clock += " to +" + FormatDuration(opts.Until)
	}
	fed := ""
	if sum.FedBack > 0 {
		fed = fmt.Sprintf(" (+%d published back by the rules)", sum.FedBack)
	}
	fmt.Fprintf(w, "\ndry run at %s, nothing sent: %d %s%s, %d %s matched, %d fired, %d %s\n",
		clock, sum.Messages, plural(sum.Messages, "message"), fed, sum.Matched, plural(sum.Matched, "rule"),
		sum.Fired, sum.Actions, plural(sum.Actions, "action"))
	return sum
}
