package dryrun

import (
	"errors"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"io"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// FiringTimeFormat is how replay prints times: RFC 3339 with milliseconds,
// in the zone the capture wrote.
const FiringTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Firing is what one evaluation ran in a replay: a rule's actions, or its
// on_clear actions.
type Firing struct {
	Time    time.Time
	Rule    string
	OnClear bool
	Actions []actions.Request
	Notes   []string // why an action is missing (it failed to render)
}

// String renders the firing on one line: time, rule, then each action
// (see Line), separated by " | ":
//
//	2026-11-25T12:05:00.000Z  door-left-open  publish alert/door/garage qos=1 retain=true payload=… | log warn: garage open
//	2026-11-25T12:07:00.000Z  door-left-open  on_clear: publish alert/door/garage qos=1 retain=true payload=…
func (f Firing) String() string {
	var b strings.Builder
	b.WriteString(f.Time.Format(FiringTimeFormat))
	b.WriteString("  ")
	b.WriteString(f.Rule)
	b.WriteString("  ")
	if f.OnClear {
		b.WriteString("on_clear: ")
	}
	for i, a := range f.Actions {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(Line(a))
	}
	for i, n := range f.Notes {
		if i > 0 || len(f.Actions) > 0 {
			b.WriteString(" | ")
		}
		b.WriteString("error: ")
		b.WriteString(n)
	}
	return b.String()
}

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// Until is when the clock stops; when zero it stops at the last
	// message plus After. Timers due by then fire.
	Until time.Time
	After time.Duration
	// TimeZone and Location are --timezone and --latitude/--longitude.
	TimeZone *time.Location
	Location *sun.Location
}

// ReplayStats says what a Replay read.
type ReplayStats struct {
	Messages    int
	First, Last time.Time // times of the first and last messages
	End         time.Time // where the clock stopped
	Reordered   int       // messages stamped before the one before them, replayed at its time
}

// Replay feeds every record of src, at its recorded time, to each rule
// set, in lockstep on a virtual clock, with no side effects. Timers fire
// between messages as they would have; after the last message the clock
// runs to opts.Until (or the last message plus opts.After). A message
// stamped earlier than the one before it (a wall clock stepping back) is
// replayed at the earlier message's time. Publishes are not fed back: a
// capture holds the messages the running engine published, when its
// filters covered them. emit receives every firing, with the index of the
// set that made it, in time order per set.
func Replay(src *CaptureReader, sets []*rules.RuleSet, opts ReplayOptions, emit func(set int, f Firing)) (ReplayStats, error) {
	var st ReplayStats
	var runners []*Runner
	each := func(i int, steps []Step) {
		for _, s := range steps {
			for _, ev := range s.Events {
				if !ev.Firing() || (len(ev.Actions) == 0 && len(ev.Notes) == 0) {
					continue
				}
				emit(i, Firing{Time: ev.Time, Rule: ev.Rule, OnClear: ev.OnClear, Actions: ev.Actions, Notes: ev.Notes})
			}
		}
	}
	for {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		if runners == nil {
			st.First = rec.Time
			for _, rs := range sets {
				runners = append(runners, New(rs, Options{Start: rec.Time, TimeZone: opts.TimeZone, Location: opts.Location}))
			}
		}
		if rec.Time.Before(st.Last) {
			st.Reordered++
			rec.Time = st.Last
		}
		st.Messages++
		st.Last = rec.Time
		for i, r := range runners {
			each(i, r.Send(engine.Message{Topic: rec.Topic, Payload: rec.Payload, QoS: rec.QoS, Retained: rec.Retain, Time: rec.Time}))
		}
	}
	if runners == nil {
		return st, nil
	}
	st.End = opts.Until
	if st.End.IsZero() {
		st.End = st.Last.Add(opts.After)
	}
	for i, r := range runners {
		each(i, r.Advance(st.End))
	}
	if st.End.Before(st.Last) {
		st.End = st.Last
	}
	return st, nil
}

// DiffLine is a firing that only one of two replays made: Sign '+' for the
// candidate, '-' for the baseline.
type DiffLine struct {
	Sign   byte
	Firing Firing
}

// String renders the line: "+ " or "- " then the firing.
func (d DiffLine) String() string { return string(d.Sign) + " " + d.Firing.String() }

// Diff compares the firings of a baseline and a candidate replay of the
// same capture: firings are the same when their lines (time to the
// millisecond, rule, rendered actions) are. It returns the firings only
// one of them made, in time order, at each instant the baseline's ("-")
// before the candidate's ("+").
func Diff(base, cand []Firing) []DiffLine {
	ms := func(f Firing) time.Time { return f.Time.Truncate(time.Millisecond) }
	var out []DiffLine
	i, j := 0, 0
	for i < len(base) || j < len(cand) {
		// The next instant either side has.
		var t time.Time
		switch {
		case i == len(base):
			t = ms(cand[j])
		case j == len(cand), !ms(cand[j]).Before(ms(base[i])):
			t = ms(base[i])
		default:
			t = ms(cand[j])
		}
		bi, cj := i, j
		for i < len(base) && !ms(base[i]).After(t) {
			i++
		}
		for j < len(cand) && !ms(cand[j]).After(t) {
			j++
		}
		out = append(out, diffSame(base[bi:i], cand[cj:j])...)
	}
	return out
}

// diffSame compares the firings of one instant as multisets of lines.
func diffSame(base, cand []Firing) []DiffLine {
	count := map[string]int{}
	for _, f := range base {
		count[f.String()]++
	}
	var plus []DiffLine
	for _, f := range cand {
		s := f.String()
		if count[s] > 0 {
			count[s]--
			continue
		}
		plus = append(plus, DiffLine{'+', f})
	}
	var out []DiffLine
	for _, f := range base {
		s := f.String()
		if count[s] > 0 {
			count[s]--
			out = append(out, DiffLine{'-', f})
		}
	}
	return append(out, plus...)
}
