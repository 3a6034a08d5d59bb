package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/internal/schedule"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
)

// Mode says what a new firing for a key does while an earlier sequence of
// that key still waits in a delay (docs/time.md, "Run modes").
type Mode uint8

// The run modes; Restart is the default.
const (
	ModeRestart  Mode = iota // cancel the rest of the earlier sequence, start anew
	ModeSingle               // ignore the new firing (counted as suppressed)
	ModeQueued               // run it after the earlier ones, at most MaxQueued waiting
	ModeParallel             // run it alongside
)

var modeNames = [...]string{ModeRestart: "restart", ModeSingle: "single", ModeQueued: "queued", ModeParallel: "parallel"}

// String returns the mode as rule files write it.
func (m Mode) String() string { return modeNames[m] }

// DefaultMaxQueued is how many firings a queued rule keeps waiting per key.
const DefaultMaxQueued = 10

// SunTrigger fires a rule at a sun event of each day, shifted by Offset.
type SunTrigger struct {
	Event  sun.Event
	Offset time.Duration
}

// String shows the trigger as a rule file could write it.
func (s *SunTrigger) String() string {
	if s.Offset == 0 {
		return s.Event.String()
	}
	sign := "+"
	if s.Offset < 0 {
		sign = "-"
	}
	off := s.Offset
	if off < 0 {
		off = -off
	}
	return s.Event.String() + " " + sign + off.String()
}

// HasDelays reports whether the rule's actions or on_clear hold a delay
// step, so that its firings run as sequences that wait (docs/time.md).
func (r *Rule) HasDelays() bool { return r.delays }

// Timed reports whether the rule has a schedule or sun trigger.
func (r *Rule) Timed() bool { return r.Schedule != nil || r.Sun != nil }

// schedule reads a rule's schedule: key.
func (fl *fileLoader) schedule(r *Rule, v *yaml.Node, label string) {
	s, ok := fl.yr.Str(v, label, "schedule")
	if !ok {
		return
	}
	sch, err := schedule.Parse(s)
	if err != nil {
		fl.errorf(v, label, "schedule: %q: %v", s, err)
		return
	}
	r.Schedule = sch
}

var sunKeys = []string{"event", "offset"}

// sunTrigger reads a rule's sun: key, `sun: sunset` or `sun: {event:
// sunset, offset: -30m}`.
func (fl *fileLoader) sunTrigger(r *Rule, v *yaml.Node, label string) {
	t := &SunTrigger{}
	var eventNode *yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		eventNode = v
	case yaml.MappingNode:
		for _, kv := range fl.yr.Pairs(v, label) {
			switch kv.Key.Value {
			case "event":
				eventNode = kv.Value
			case "offset":
				s, ok := fl.yr.Str(kv.Value, label, "sun.offset")
				if !ok {
					continue
				}
				d, err := time.ParseDuration(strings.TrimPrefix(s, "+"))
				if err != nil {
					fl.errorf(kv.Value, label, "sun.offset: %q is not a duration (write -30m, 15m, 1h30m)", s)
					continue
				}
				if d <= -24*time.Hour || d >= 24*time.Hour {
					fl.errorf(kv.Value, label, "sun.offset: %s: within a day, please (-24h < offset < 24h)", s)
					continue
				}
				t.Offset = d
			default:
				fl.errorf(kv.Key, label, "sun: unknown key %q%s", kv.Key.Value, yamlnode.Suggest(kv.Key.Value, sunKeys))
			}
		}
		if eventNode == nil {
			fl.errorf(v, label, "sun.event: missing (sunrise, sunset, dawn, dusk or noon)")
			return
		}
	default:
		fl.errorf(v, label, "sun: must be an event (sunset) or a mapping of event and offset, not %s", yamlnode.KindName(v))
		return
	}
	s, ok := fl.yr.Str(eventNode, label, "sun.event")
	if !ok {
		return
	}
	ev, err := sun.ParseEvent(s)
	if err != nil {
		fl.errorf(eventNode, label, "sun: %v%s", err, yamlnode.Suggest(s, []string{"sunrise", "sunset", "dawn", "dusk", "noon"}))
		return
	}
	t.Event = ev
	if fl.location == nil && !fl.noLocationOK {
		fl.errorf(v, label, "sun: the engine needs a location: run it with --latitude and --longitude (config keys latitude and longitude)")
		return
	}
	r.Sun = t
}

// timezone reads a rule's timezone: key, an IANA zone name.
func (fl *fileLoader) timezone(r *Rule, v *yaml.Node, label string) {
	s, ok := fl.yr.Str(v, label, "timezone")
	if !ok {
		return
	}
	loc, err := LoadZone(s)
	if err != nil {
		fl.errorf(v, label, "timezone: %v", err)
		return
	}
	r.TimeZone = loc
}

// LoadZone loads an IANA time zone by name ("Europe/Berlin", "UTC",
// "Local"), with an error a user can act on.
func LoadZone(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: write an IANA name such as Europe/Berlin, America/New_York or UTC", name)
	}
	return loc, nil
}

// mode reads a rule's mode: key.
func (fl *fileLoader) mode(r *Rule, v *yaml.Node, label string) {
	s, ok := fl.yr.Str(v, label, "mode")
	if !ok {
		return
	}
	i := slices.Index(modeNames[:], s)
	if i < 0 {
		fl.errorf(v, label, "mode: %q is not restart, single, queued or parallel%s", s, yamlnode.Suggest(s, modeNames[:]))
		return
	}
	r.Mode = Mode(i)
}

// timeKeys reads the keys of rule time features and checks how they
// combine; errors are reported at their nodes.
func (fl *fileLoader) timeKeys(r *Rule, byKey map[string]*yaml.Node, label string) {
	if v := byKey["schedule"]; v != nil {
		fl.schedule(r, v, label)
	}
	if v := byKey["sun"]; v != nil {
		fl.sunTrigger(r, v, label)
	}
	if v := byKey["timezone"]; v != nil {
		fl.timezone(r, v, label)
		if byKey["schedule"] == nil && byKey["sun"] == nil {
			fl.errorf(v, label, "timezone: applies to schedule and sun triggers, and this rule has neither")
		}
	}
	r.MaxQueued = DefaultMaxQueued
	if v := byKey["mode"]; v != nil {
		fl.mode(r, v, label)
	}
	if v := byKey["max_queued"]; v != nil {
		r.MaxQueued, _ = fl.yr.Int(v, label, "max_queued", 1, 1000)
		if r.Mode != ModeQueued && byKey["mode"] != nil {
			fl.errorf(v, label, "max_queued: applies to mode: queued, not %s", r.Mode)
		}
	}
	if v := byKey["repeat"]; v != nil {
		r.Repeat, _ = fl.yr.Duration(v, label, "repeat", false)
		if r.Repeat > 0 && r.Repeat < schedule.MinEvery {
			fl.errorf(v, label, "repeat: %s is shorter than %s, the shortest interval a rule repeats at", r.Repeat, schedule.MinEvery)
		}
		if !r.Episodic() && r.Absent == 0 && byKey["for"] == nil && byKey["on_clear"] == nil && byKey["clear_when"] == nil && byKey["absent"] == nil {
			fl.errorf(v, label, "repeat: needs episodes to repeat in: give the rule for, on_clear, clear_when or absent (it repeats while a key is firing, until it clears)")
		}
	}
	if v := byKey["max_repeats"]; v != nil {
		r.MaxRepeats, _ = fl.yr.Int(v, label, "max_repeats", 1, 1_000_000)
		if byKey["repeat"] == nil {
			fl.errorf(v, label, "max_repeats: applies with repeat: (how often to repeat), which this rule does not have")
		}
	}
}

// delay reads a `- delay: D` step.
func (fl *fileLoader) delay(v *yaml.Node, rule, where string) (time.Duration, bool) {
	s, ok := fl.yr.Str(v, rule, where+".delay")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		fl.errorf(v, rule, "%s.delay: %q is not a positive duration (write 30s, 2m, 1h30m)", where, s)
		return 0, false
	}
	return d, true
}
