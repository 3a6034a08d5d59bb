// Package schedule implements the schedule: trigger of a rule: a five-field
// cron expression or a descriptor (@daily, @every 90s, …) whose firings are
// computed in a time zone.
//
// Parsing is robfig/cron's; this package adds error messages that name the
// field at fault, Sunday as 7, and firings that follow the zone's wall clock
// through daylight-saving changes: a local time that does not exist is
// skipped, one that occurs twice fires once (see Schedule.Next).
//
// It computes instants only. The engine keeps the timers, calling Next once
// per firing.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinEvery is the shortest interval @every accepts.
const MinEvery = time.Second

// horizonYears bounds the search of Next.
const horizonYears = 10

// starBit marks a cron field as unrestricted in robfig/cron's bit sets.
const starBit = 1 << 63

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// descriptors maps each descriptor but @every to the five fields it stands for.
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

const fieldNames = "minute hour day-of-month month day-of-week"

// Schedule is a parsed schedule. It is immutable and safe for concurrent use.
type Schedule struct {
	src   string
	cron  *cron.SpecSchedule // nil for @every
	every time.Duration
}

// Parse reads a schedule:
//
//   - five fields, minute hour day-of-month month day-of-week, each `*`, a
//     value, a range `a-b` or a list of them `a,b-c`, each optionally with a
//     step: `*/15`, `6-18/2`; `a/n` means `a-max/n`. Months may be named
//     jan–dec, days sun–sat (case does not matter); Sunday is 0 or 7, so
//     `mon-sun` and `1-7` are the whole week;
//   - a descriptor: @hourly, @daily (or @midnight), @weekly (Sunday 00:00),
//     @monthly, @yearly (or @annually);
//   - @every DURATION, a Go duration (90s, 15m, 1h30m) of at least MinEvery.
//
// When both day-of-month and day-of-week are restricted, as in standard cron
// a day matches if EITHER matches: `0 12 13 * fri` fires on every 13th and on
// every Friday. A field counts as unrestricted when it starts with `*` (so
// `*/2` is unrestricted for this rule, as in Vixie cron); then both must match.
//
// Errors name the field, e.g. `hour: 25 is out of range 0-23`. A seconds
// field, a TZ= prefix and a schedule that can never fire (`0 0 30 2 *`) are
// errors.
func Parse(spec string) (*Schedule, error) {
	s := strings.TrimSpace(spec)
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return nil, errors.New(`empty schedule: want 5 fields (` + fieldNames + `) such as "0 22 * * *" or a descriptor such as @daily`)
	case hasPrefixFold(f[0], "TZ=") || hasPrefixFold(f[0], "CRON_TZ="):
		return nil, fmt.Errorf("time zone prefix %q is not supported: set the rule's timezone: key", f[0])
	case s[0] == '@':
		return parseDescriptor(spec, f)
	case len(f) == 6:
		return nil, errors.New("want 5 fields (" + fieldNames + "), got 6; a seconds field is not supported")
	case len(f) != 5:
		return nil, fmt.Errorf("want 5 fields (%s), got %d", fieldNames, len(f))
	}
	for i := range f {
		var err error
		if f[i], err = fields[i].check(f[i]); err != nil {
			return nil, err
		}
	}
	return parseFields(spec, f)
}

func parseDescriptor(spec string, f []string) (*Schedule, error) {
	name := strings.ToLower(f[0])
	if name == "@every" {
		switch len(f) {
		case 1:
			return nil, errors.New("@every: missing duration, e.g. @every 90s")
		case 2:
		default:
			return nil, fmt.Errorf("@every: want one duration such as 1h30m, got %q", strings.Join(f[1:], " "))
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return nil, fmt.Errorf("@every: %q is not a duration (write e.g. 90s, 15m, 36h or 1h30m)", f[1])
		}
		if d < MinEvery {
			return nil, fmt.Errorf("@every: %s is shorter than the minimum of %s", f[1], MinEvery)
		}
		return &Schedule{src: spec, every: d}, nil
	}
	fs, ok := descriptors[name]
	if !ok {
		return nil, fmt.Errorf("unknown descriptor %q (want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION)", f[0])
	}
	if len(f) > 1 {
		return nil, fmt.Errorf("%s takes no arguments, got %q", f[0], strings.Join(f[1:], " "))
	}
	return parseFields(spec, strings.Fields(fs))
}

// parseFields builds the schedule from five fields that check accepted.
func parseFields(spec string, f []string) (*Schedule, error) {
	parsed, err := parser.Parse(strings.Join(f, " "))
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", spec, err)
	}
	c, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("invalid schedule %q: unexpected %T", spec, parsed)
	}
	// Next hands robfig/cron wall-clock times written in UTC (see Next).
	c.Location = time.UTC
	// robfig/cron ORs day-of-month and day-of-week when neither has its star
	// bit, which it sets for `*` but not for `*/2`; follow the text instead.
	domStar := strings.HasPrefix(f[fieldDom], "*")
	c.Dom = withStar(c.Dom, domStar)
	c.Dow = withStar(c.Dow, strings.HasPrefix(f[fieldDow], "*"))
	if !domStar && c.Dow&starBit != 0 && !dayExists(c) {
		// check leaves these two fields as written.
		return nil, fmt.Errorf("day-of-month: %s does not occur in month %s; the schedule would never fire",
			f[fieldDom], f[fieldMonth])
	}
	return &Schedule{src: spec, cron: c}, nil
}

func withStar(bits uint64, star bool) uint64 {
	if star {
		return bits | starBit
	}
	return bits &^ starBit
}

// dayExists reports whether some month of c has some day of month of c.
func dayExists(c *cron.SpecSchedule) bool {
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if c.Month&(1<<m) != 0 && c.Dom&(1<<(days[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// String returns the schedule as it was given to Parse.
func (s *Schedule) String() string { return s.src }

// Next returns the first firing strictly after the instant after, in loc (nil
// means UTC).
//
// An @every D schedule ignores loc and returns after+D: passing the previous
// firing's scheduled instant (and the rule's start for the first) puts the
// firings on start+D, start+2D, … however late the timer wakes.
//
// A cron schedule follows the wall clock of loc, and each local time it
// matches fires at most once:
//
//   - a local time that does not exist because the clocks spring forward is
//     skipped, not moved: in Europe/Berlin on the last Sunday of March
//     `30 2 * * *` does not fire, `*/15 * * * *` fires at 01:45 then 03:00,
//     and `30 * * * *` at 01:30 then 03:30;
//   - a local time that occurs twice because the clocks fall back fires at its
//     first occurrence only, and this holds for hourly and shorter schedules
//     too: nothing fires in the second pass of the repeated hour, whose local
//     times all had their turn in the first. On the last Sunday of October
//     `30 2 * * *` fires at 02:30 summer time only, `30 * * * *` at 02:30
//     summer time and then 03:30 winter time (two hours apart), and
//     `*/15 * * * *` at 02:45 summer time and then 03:00 winter time (an
//     hour and a quarter apart). A rule that needs a steady interval uses
//     @every or the time zone UTC.
//
// Next returns the zero time when the schedule has no firing within ten years
// after after. Parse rejects schedules that can never fire; what remains are
// rare combinations such as `0 0 29 2 */6` (29 February on a weekend: 2032,
// then 2048). The engine logs such a rule and sets no timer for it.
func (s *Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if s.cron == nil {
		return after.Add(s.every)
	}
	if loc == nil {
		loc = time.UTC
	}
	// robfig/cron's SpecSchedule.Next, run in the schedule's zone, skips
	// local times that do not exist but fires twice at one that occurs
	// twice. Run in UTC, which has no transitions, it steps through
	// wall-clock times exactly; this maps each to its first instant in loc,
	// if any.
	w := wallClock(after, loc)
	end := w.Year() + horizonYears
	for w.Year() <= end {
		n := s.cron.Next(w)
		if n.IsZero() {
			// robfig/cron gave up five years after w; go on from there.
			y := w.Add(time.Second-time.Duration(w.Nanosecond())).Year() + 5
			w = time.Date(y, time.December, 31, 23, 59, 59, 0, time.UTC)
			continue
		}
		if n.Year() > end {
			break
		}
		// A wall-clock time after after's can still have occurred before it
		// when after lies in the second pass of a repeated hour.
		if t, ok := firstInstant(n, loc); ok && t.After(after) {
			return t
		}
		w = n
	}
	return time.Time{}
}

// wallClock returns the time in UTC whose clock reads what t's reads in loc.
func wallClock(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	return t.Add(time.Duration(off) * time.Second).UTC()
}

// firstInstant returns the first instant at which loc's clock reads the
// wall-clock time w (written in UTC), or false if it never does.
func firstInstant(w time.Time, loc *time.Location) (time.Time, bool) {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
	_, off := t.Zone()
	if t.Unix()+int64(off) != w.Unix() {
		return time.Time{}, false // in a gap: time.Date moved it
	}
	// time.Date may pick the second of two instants with this clock reading;
	// the first has the offset of the zone period before t's.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t, true
	}
	if _, prev := start.Add(-time.Nanosecond).Zone(); prev > off {
		e := t.Add(-time.Duration(prev-off) * time.Second)
		if _, o := e.Zone(); o == prev {
			return e, true
		}
	}
	return t, true
}
