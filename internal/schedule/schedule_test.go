package schedule_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed

	"github.com/mqtt-rules/mqtt-rules/internal/schedule"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// firings returns the first n firings of spec after from, in loc, as RFC 3339.
func firings(t *testing.T, spec string, loc *time.Location, from string, n int) []string {
	t.Helper()
	s, err := schedule.Parse(spec)
	if err != nil {
		t.Fatalf("Parse(%q): %v", spec, err)
	}
	at := mustTime(t, from)
	var got []string
	for range n {
		next := s.Next(at, loc)
		if next.IsZero() {
			return append(got, "zero")
		}
		if !next.After(at) {
			t.Fatalf("Next(%s) = %s, not after it", at.Format(time.RFC3339), next.Format(time.RFC3339))
		}
		at = next
		got = append(got, next.Format(time.RFC3339))
	}
	return got
}

type nextCase struct {
	spec string
	from string
	want []string
}

func runNext(t *testing.T, loc *time.Location, cases []nextCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.spec+" from "+c.from, func(t *testing.T) {
			got := firings(t, c.spec, loc, c.from, len(c.want))
			if !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// Thursday 1 January 2026, UTC.
const newYear = "2026-01-01T00:00:00Z"

func TestSyntax(t *testing.T) {
	runNext(t, time.UTC, []nextCase{
		{"* * * * *", newYear, []string{"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"}},
		{"5 * * * *", newYear, []string{"2026-01-01T00:05:00Z", "2026-01-01T01:05:00Z"}},
		{"5,35 * * * *", newYear, []string{"2026-01-01T00:05:00Z", "2026-01-01T00:35:00Z", "2026-01-01T01:05:00Z"}},
		{"10-12 * * * *", newYear, []string{"2026-01-01T00:10:00Z", "2026-01-01T00:11:00Z", "2026-01-01T00:12:00Z", "2026-01-01T01:10:00Z"}},
		{"*/15 * * * *", newYear, []string{"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"}},
		{"10-40/15 * * * *", newYear, []string{"2026-01-01T00:10:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:40:00Z", "2026-01-01T01:10:00Z"}},
		{"50/5 * * * *", newYear, []string{"2026-01-01T00:50:00Z", "2026-01-01T00:55:00Z", "2026-01-01T01:50:00Z"}},
		{"0 6-9/2,22 * * *", newYear, []string{"2026-01-01T06:00:00Z", "2026-01-01T08:00:00Z", "2026-01-01T22:00:00Z", "2026-01-02T06:00:00Z"}},
		{"0 12 15 * *", newYear, []string{"2026-01-15T12:00:00Z", "2026-02-15T12:00:00Z"}},
		{"0 0 1 jan,jul *", newYear, []string{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"0 0 1 JAN-Mar *", newYear, []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"0 22 * * mon-fri", newYear, []string{"2026-01-01T22:00:00Z", "2026-01-02T22:00:00Z", "2026-01-05T22:00:00Z"}},
		{"*/15 6-9 * jan,dec *", "2026-01-31T09:40:00Z", []string{"2026-01-31T09:45:00Z", "2026-12-01T06:00:00Z", "2026-12-01T06:15:00Z"}},
		{"0 12 * * 0", newYear, []string{"2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"}},
		{"0 12 * * 7", newYear, []string{"2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"}},
		{"0 12 * * sun", newYear, []string{"2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"}},
		{"0 12 * * SAT", newYear, []string{"2026-01-03T12:00:00Z", "2026-01-10T12:00:00Z"}},
		{"0 12 * * fri-sun", newYear, []string{"2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-09T12:00:00Z"}},
		{"0 12 * * 5-7", newYear, []string{"2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-09T12:00:00Z"}},
		{"0 12 * * 1-7/3", newYear, []string{"2026-01-01T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-05T12:00:00Z", "2026-01-08T12:00:00Z"}},
		{"0 12 * * sun-sat/3", newYear, []string{"2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-07T12:00:00Z", "2026-01-10T12:00:00Z"}},
		{"0 12 * * mon-sun", newYear, []string{"2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z"}},
		{"0 12 * * 7,3", newYear, []string{"2026-01-04T12:00:00Z", "2026-01-07T12:00:00Z"}},
		{" 0\t22  * *  * ", newYear, []string{"2026-01-01T22:00:00Z", "2026-01-02T22:00:00Z"}},
		{"@hourly", newYear, []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
		{"@daily", newYear, []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}},
		{"@midnight", newYear, []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}},
		{"@DAILY", newYear, []string{"2026-01-02T00:00:00Z"}},
		{"@weekly", newYear, []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"@monthly", newYear, []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
		{"@yearly", newYear, []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		{"@annually", newYear, []string{"2027-01-01T00:00:00Z"}},
		{"@every 90s", newYear, []string{"2026-01-01T00:01:30Z", "2026-01-01T00:03:00Z"}},
		{"@every 1h30m", newYear, []string{"2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z"}},
		{"@every 1s", newYear, []string{"2026-01-01T00:00:01Z"}},
		{"@every  36h ", newYear, []string{"2026-01-02T12:00:00Z"}},
	})
}

// TestNextStrictlyAfter: a firing instant itself, or a time within its
// minute, gives the next firing.
func TestNextStrictlyAfter(t *testing.T) {
	runNext(t, time.UTC, []nextCase{
		{"0 12 * * *", "2026-01-01T12:00:00Z", []string{"2026-01-02T12:00:00Z"}},
		{"0 12 * * *", "2026-01-01T11:59:59.999Z", []string{"2026-01-01T12:00:00Z"}},
		{"0 12 * * *", "2026-01-01T12:00:00.001Z", []string{"2026-01-02T12:00:00Z"}},
		{"0 12 * * *", "2026-01-01T12:00:30Z", []string{"2026-01-02T12:00:00Z"}},
	})
}

// TestDayOfMonthOrDayOfWeek: as in standard cron, a day matches when either
// field matches if both are restricted, and when both match if either field
// starts with *.
func TestDayOfMonthOrDayOfWeek(t *testing.T) {
	// 1 April 2026 is a Wednesday; the 13th a Monday.
	const april = "2026-04-01T00:00:00Z"
	runNext(t, time.UTC, []nextCase{
		{"0 12 13 * fri", april, []string{"2026-04-03T12:00:00Z", "2026-04-10T12:00:00Z", "2026-04-13T12:00:00Z", "2026-04-17T12:00:00Z", "2026-04-24T12:00:00Z", "2026-05-01T12:00:00Z"}},
		{"0 12 13 * *", april, []string{"2026-04-13T12:00:00Z", "2026-05-13T12:00:00Z"}},
		{"0 12 * * fri", april, []string{"2026-04-03T12:00:00Z", "2026-04-10T12:00:00Z"}},
		{"0 12 1-31 * fri", april, []string{"2026-04-01T12:00:00Z", "2026-04-02T12:00:00Z", "2026-04-03T12:00:00Z"}},
		{"0 12 */10 * fri", april, []string{"2026-05-01T12:00:00Z", "2026-07-31T12:00:00Z", "2026-08-21T12:00:00Z"}},
		{"0 12 13 * */6", april, []string{"2026-06-13T12:00:00Z", "2026-09-13T12:00:00Z", "2026-12-13T12:00:00Z"}},
		{"0 0 30 2 mon", newYear, []string{"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"}},
	})
}

func TestLeapDay(t *testing.T) {
	runNext(t, time.UTC, []nextCase{
		{"0 12 29 2 *", newYear, []string{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z", "2036-02-29T12:00:00Z"}},
		// 2100 is not a leap year: eight years, beyond robfig/cron's five.
		{"0 12 29 2 *", "2097-03-01T00:00:00Z", []string{"2104-02-29T12:00:00Z"}},
		// 29 February on a weekend: 2032, then 2048, beyond ten years.
		{"0 0 29 2 */6", newYear, []string{"2032-02-29T00:00:00Z", "zero"}},
	})
}

// Europe/Berlin in 2026: summer time from Sunday 29 March, 02:00 CET becomes
// 03:00 CEST; it ends on Sunday 25 October, 03:00 CEST becomes 02:00 CET.
func TestNextBerlinDST(t *testing.T) {
	runNext(t, mustLoad(t, "Europe/Berlin"), []nextCase{
		// Spring forward: 02:00-02:59 does not exist on 29 March.
		{"30 2 * * *", "2026-03-28T00:00:00+01:00", []string{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"}},
		{"0 2 * * *", "2026-03-28T12:00:00+01:00", []string{"2026-03-30T02:00:00+02:00"}},
		{"30 * * * *", "2026-03-29T00:00:00+01:00", []string{"2026-03-29T00:30:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-29T04:30:00+02:00"}},
		{"*/15 * * * *", "2026-03-29T01:30:00+01:00", []string{"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"}},
		{"0 3 * * *", "2026-03-28T12:00:00+01:00", []string{"2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"}},

		// Fall back: 02:00-02:59 happens twice on 25 October and fires once.
		{"30 2 * * *", "2026-10-24T12:00:00+02:00", []string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"30 2 * * *", "2026-10-25T02:30:00+02:00", []string{"2026-10-26T02:30:00+01:00"}},
		{"30 2 * * *", "2026-10-25T00:30:00Z", []string{"2026-10-26T02:30:00+01:00"}}, // the same instant in UTC
		{"30 2 * * *", "2026-10-25T02:10:00+01:00", []string{"2026-10-26T02:30:00+01:00"}},
		{"0 2 * * *", "2026-10-24T12:00:00+02:00", []string{"2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00"}},
		{"30 * * * *", "2026-10-25T00:00:00+02:00", []string{"2026-10-25T00:30:00+02:00", "2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T03:30:00+01:00", "2026-10-25T04:30:00+01:00"}},
		{"*/15 * * * *", "2026-10-25T02:30:00+02:00", []string{"2026-10-25T02:45:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T03:15:00+01:00"}},
		{"*/15 * * * *", "2026-10-25T02:05:00+01:00", []string{"2026-10-25T03:00:00+01:00"}},
		{"* * * * *", "2026-10-25T02:59:30+02:00", []string{"2026-10-25T03:00:00+01:00"}},
		{"0 3 * * *", "2026-10-24T12:00:00+02:00", []string{"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
	})
}

// Australia/Sydney in 2026: summer time ends on Sunday 5 April (03:00 AEDT
// becomes 02:00 AEST) and starts on Sunday 4 October (02:00 AEST becomes
// 03:00 AEDT).
func TestNextSydneyDST(t *testing.T) {
	runNext(t, mustLoad(t, "Australia/Sydney"), []nextCase{
		{"30 2 * * *", "2026-04-04T12:00:00+11:00", []string{"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"}},
		{"30 2 * * *", "2026-10-03T12:00:00+10:00", []string{"2026-10-05T02:30:00+11:00"}},
	})
}

// Australia/Lord_Howe shifts by half an hour: on Sunday 5 April 2026 01:30-01:59
// happens twice, on Sunday 4 October 2026 02:00-02:29 does not exist.
func TestNextHalfHourDST(t *testing.T) {
	runNext(t, mustLoad(t, "Australia/Lord_Howe"), []nextCase{
		{"*/15 * * * *", "2026-04-05T01:30:00+11:00", []string{"2026-04-05T01:45:00+11:00", "2026-04-05T02:00:00+10:30", "2026-04-05T02:15:00+10:30"}},
		{"*/15 * * * *", "2026-10-04T01:30:00+10:30", []string{"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00"}},
	})
}

// TestNextMatchesWallClock compares Next around every transition of 2026 in
// several zones with a minute-by-minute walk of the clock: an instant fires
// when the local time it shows matches and has not been shown before.
func TestNextMatchesWallClock(t *testing.T) {
	specs := []struct {
		spec  string
		match func(h, m int) bool
	}{
		{"* * * * *", func(h, m int) bool { return true }},
		{"*/15 * * * *", func(h, m int) bool { return m%15 == 0 }},
		{"30 * * * *", func(h, m int) bool { return m == 30 }},
		{"30 2 * * *", func(h, m int) bool { return h == 2 && m == 30 }},
		{"0 3 * * *", func(h, m int) bool { return h == 3 && m == 0 }},
		{"0 0 * * *", func(h, m int) bool { return h == 0 && m == 0 }},
		{"30 23 * * *", func(h, m int) bool { return h == 23 && m == 30 }},
		{"10 0-1 * * *", func(h, m int) bool { return h <= 1 && m == 10 }},
	}
	zones := []string{
		"Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
		"America/Havana",   // midnight does not exist in spring, 00:00-00:59 twice in autumn
		"America/Santiago", // 00:00 becomes 01:00 in September, 23:00-23:59 twice in April
	}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		for _, tr := range transitions(loc, 2026) {
			lo, hi := tr.Add(-26*time.Hour), tr.Add(26*time.Hour)
			for _, sp := range specs {
				t.Run(fmt.Sprintf("%s %s %s", zone, tr.Format("2006-01-02"), sp.spec), func(t *testing.T) {
					s, err := schedule.Parse(sp.spec)
					if err != nil {
						t.Fatal(err)
					}
					var want []time.Time
					seen := map[string]bool{}
					for at := lo; !at.After(hi); at = at.Add(time.Minute) {
						w := at.In(loc)
						key := w.Format("2006-01-02 15:04")
						if !seen[key] && sp.match(w.Hour(), w.Minute()) {
							want = append(want, at)
						}
						seen[key] = true
					}
					var got []time.Time
					for at := s.Next(lo.Add(-time.Nanosecond), loc); !at.After(hi); at = s.Next(at, loc) {
						got = append(got, at)
					}
					if !slices.EqualFunc(got, want, time.Time.Equal) {
						t.Fatalf("firings\ngot  %s\nwant %s", formatAll(got, loc), formatAll(want, loc))
					}
					// From any instant near the transition (every minute and
					// a half), Next is the first firing after it.
					for at := tr.Add(-3 * time.Hour); at.Before(tr.Add(3 * time.Hour)); at = at.Add(90 * time.Second) {
						i, _ := slices.BinarySearchFunc(want, at, func(f, at time.Time) int {
							if f.After(at) {
								return 1
							}
							return -1
						})
						if i == len(want) {
							break
						}
						if got := s.Next(at, loc); !got.Equal(want[i]) {
							t.Fatalf("Next(%s) = %s, want %s", at.In(loc).Format(time.RFC3339),
								got.In(loc).Format(time.RFC3339), want[i].In(loc).Format(time.RFC3339))
						}
					}
				})
			}
		}
	}
}

// transitions returns the instants at which loc's offset changes in year.
func transitions(loc *time.Location, year int) []time.Time {
	var out []time.Time
	at := time.Date(year, time.January, 1, 0, 0, 0, 0, loc)
	for {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.Year() > year {
			return out
		}
		out = append(out, end)
		at = end
	}
}

func formatAll(ts []time.Time, loc *time.Location) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.In(loc).Format("01-02T15:04Z07:00 "))
	}
	return b.String()
}

func TestEvery(t *testing.T) {
	s, err := schedule.Parse("@every 90s")
	if err != nil {
		t.Fatal(err)
	}
	// Across Berlin's spring forward: the interval counts real time, and
	// the zone makes no difference.
	start := mustTime(t, "2026-03-29T01:58:00+01:00")
	want := []string{"2026-03-29T00:59:30Z", "2026-03-29T01:01:00Z", "2026-03-29T01:02:30Z"}
	for _, loc := range []*time.Location{time.UTC, mustLoad(t, "Europe/Berlin"), nil} {
		var got []string
		for at := start; len(got) < len(want); {
			at = s.Next(at, loc)
			got = append(got, at.UTC().Format(time.RFC3339))
		}
		if !slices.Equal(got, want) {
			t.Errorf("in %v: got %q, want %q", loc, got, want)
		}
	}
}

func TestString(t *testing.T) {
	for _, spec := range []string{"*/15 6-9 * jan,dec *", "@every 90s", "0 12 * * 7", "@daily"} {
		s, err := schedule.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String(); got != spec {
			t.Errorf("String() = %q, want %q", got, spec)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"", `empty schedule: want 5 fields (minute hour day-of-month month day-of-week) such as "0 22 * * *" or a descriptor such as @daily`},
		{"   ", `empty schedule: want 5 fields (minute hour day-of-month month day-of-week) such as "0 22 * * *" or a descriptor such as @daily`},
		{"0 22 * *", "want 5 fields (minute hour day-of-month month day-of-week), got 4"},
		{"0 22 * * * * *", "want 5 fields (minute hour day-of-month month day-of-week), got 7"},
		{"0 0 22 * * *", "want 5 fields (minute hour day-of-month month day-of-week), got 6; a seconds field is not supported"},
		{"TZ=Europe/Berlin 0 22 * * *", `time zone prefix "TZ=Europe/Berlin" is not supported: set the rule's timezone: key`},
		{"CRON_TZ=UTC @daily", `time zone prefix "CRON_TZ=UTC" is not supported: set the rule's timezone: key`},
		{"60 * * * *", "minute: 60 is out of range 0-59"},
		{"99999 * * * *", "minute: 99999 is out of range 0-59"},
		{"0 25 * * *", "hour: 25 is out of range 0-23"},
		{"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
		{"0 0 32 * *", "day-of-month: 32 is out of range 1-31"},
		{"0 0 * 0 *", "month: 0 is out of range 1-12"},
		{"0 0 * 13 *", "month: 13 is out of range 1-12"},
		{"0 0 * * 8", "day-of-week: 8 is out of range 0-7"},
		{"0 0 * * 1-8", "day-of-week: 8 is out of range 0-7"},
		{"0 0 * * mun", `day-of-week: unknown name "mun" (want sun, mon, tue, wed, thu, fri or sat)`},
		{"0 0 * * monday", `day-of-week: unknown name "monday" (want sun, mon, tue, wed, thu, fri or sat)`},
		{"0 0 * jnu *", `month: unknown name "jnu" (want jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov or dec)`},
		{"0 noon * * *", `hour: "noon" is not a number`},
		{"0 0 * * mon 1", "want 5 fields (minute hour day-of-month month day-of-week), got 6; a seconds field is not supported"},
		{"0 0 L * *", `day-of-month: "L" is not a number`},
		{"0 0 ? * *", `day-of-month: "?" is not a number`},
		{"0 0 * * 1#2", `day-of-week: "1#2" is not a number or a name`},
		{"0 0 * * 5L", `day-of-week: "5L" is not a number or a name`},
		{"+5 * * * *", `minute: "+5" is not a number`},
		{"1,,2 * * * *", `minute: empty item in list "1,,2"`},
		{"1, * * * *", `minute: empty item in list "1,"`},
		{"*/0 * * * *", "minute: step 0 is out of range 1-59"},
		{"*/60 * * * *", "minute: step 60 is out of range 1-59"},
		{"0 */24 * * *", "hour: step 24 is out of range 1-23"},
		{"0 0 * * */7", "day-of-week: step 7 is out of range 1-6"},
		{"*/x * * * *", `minute: step "x" is not a number`},
		{"*/ * * * *", `minute: "*/" is missing its step`},
		{"*/5/2 * * * *", `minute: "*/5/2" has more than one step`},
		{"1-2-3 * * * *", `minute: "1-2-3" is not a number or a range`},
		{"-5 * * * *", `minute: "-5" is not a number or a range`},
		{"5- * * * *", `minute: "5-" is not a number or a range`},
		{"*-5 * * * *", `minute: "*" is not a number`},
		{"0 22-6 * * *", "hour: range 22-6 runs backwards; use a list such as 22-23,0-6"},
		{"0 23-1 * * *", "hour: range 23-1 runs backwards; use a list such as 23,0-1"},
		{"0 22-6/2 * * *", "hour: range 22-6 runs backwards"},
		{"0 0 * * fri-mon", "day-of-week: range fri-mon runs backwards; use a list such as fri-sat,sun-mon"},
		{"0 0 * nov-feb *", "month: range nov-feb runs backwards; use a list such as nov-dec,jan-feb"},
		{"0 0 30 2 *", "day-of-month: 30 does not occur in month 2; the schedule would never fire"},
		{"0 0 30,31 feb *", "day-of-month: 30,31 does not occur in month feb; the schedule would never fire"},
		{"0 0 31 apr,jun,sep,nov *", "day-of-month: 31 does not occur in month apr,jun,sep,nov; the schedule would never fire"},
		{"0 0 31 2 */2", "day-of-month: 31 does not occur in month 2; the schedule would never fire"},
		{"@every", "@every: missing duration, e.g. @every 90s"},
		{"@every 1h 30m", `@every: want one duration such as 1h30m, got "1h 30m"`},
		{"@every 2d", `@every: "2d" is not a duration (write e.g. 90s, 15m, 36h or 1h30m)`},
		{"@every 500ms", "@every: 500ms is shorter than the minimum of 1s"},
		{"@every 0s", "@every: 0s is shorter than the minimum of 1s"},
		{"@every -5m", "@every: -5m is shorter than the minimum of 1s"},
		{"@dayly", `unknown descriptor "@dayly" (want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION)`},
		{"@reboot", `unknown descriptor "@reboot" (want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION)`},
		{"@daily 5", `@daily takes no arguments, got "5"`},
	} {
		t.Run(c.spec, func(t *testing.T) {
			s, err := schedule.Parse(c.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error %q", c.spec, s, c.want)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("Parse(%q) error\ngot  %s\nwant %s", c.spec, got, c.want)
			}
		})
	}
}

func TestNextConcurrent(t *testing.T) {
	s, err := schedule.Parse("*/15 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	loc := mustLoad(t, "Europe/Berlin")
	from := mustTime(t, "2026-10-25T02:30:00+02:00")
	want := s.Next(from, loc)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := s.Next(from, loc); !got.Equal(want) {
					t.Errorf("got %v, want %v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"0 22 * * mon-fri", "*/15 6-9 * jan,dec *", "@every 90s", "@daily", "0 12 29 2 *",
		"0 0 30 2 *", "1-7/3 * * * fri-sun", "5/10 1,2,3 1-31 * 7", "0 22-6 * * *", "TZ=UTC * * * * *",
	} {
		f.Add(seed)
	}
	berlin := mustLoad(f, "Europe/Berlin")
	from := time.Date(2026, time.October, 25, 2, 30, 0, 0, berlin)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := schedule.Parse(spec)
		if err != nil {
			// The fields check must reject all that robfig/cron rejects, so
			// that every error names its field.
			if strings.HasPrefix(err.Error(), "invalid schedule") {
				t.Errorf("Parse(%q): %v", spec, err)
			}
			return
		}
		if s.String() != spec {
			t.Errorf("String() = %q, want %q", s.String(), spec)
		}
		if next := s.Next(from, berlin); !next.IsZero() && !next.After(from) {
			t.Errorf("Next(%v) = %v, not after it", from, next)
		}
	})
}

func ExampleParse() {
	_, err := schedule.Parse("0 25 * * mon-fri")
	fmt.Println(err)
	// Output: hour: 25 is out of range 0-23
}

func ExampleSchedule_Next() {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	s, err := schedule.Parse("30 * * * *")
	if err != nil {
		panic(err)
	}
	// The clocks go back from 03:00 to 02:00 that night; 02:30 fires once.
	at := time.Date(2026, time.October, 25, 1, 0, 0, 0, berlin)
	for range 3 {
		at = s.Next(at, berlin)
		fmt.Println(at.Format(time.RFC3339))
	}
	// Output:
	// 2026-10-25T01:30:00+02:00
	// 2026-10-25T02:30:00+02:00
	// 2026-10-25T03:30:00+01:00
}
