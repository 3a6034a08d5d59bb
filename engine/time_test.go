package engine

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// TestSequenceTimelines: delay steps and run modes, second by second.
func TestSequenceTimelines(t *testing.T) {
	motion := func(mode string) string {
		return `
rules:
  - name: light
    topic: motion/{room}
    key: "{{ room }}"
    ` + mode + `
    actions:
      - log: "on {{ room }} ({{ raw }})"
      - delay: 2m
      - log: "off {{ room }} ({{ raw }})"
`
	}
	tests := []struct {
		name   string
		rules  string
		script []string
		want   []string
	}{
		{
			name:   "restart (the default): new motion re-arms the delay",
			rules:  motion(""),
			script: []string{"0 motion/k=a", "60 motion/k=b", "300"},
			want:   []string{"0s light log on k (a)", "60s light log on k (b)", "180s light log off k (b)"},
		},
		{
			name:   "keys are independent",
			rules:  motion("mode: restart"),
			script: []string{"0 motion/k=a", "60 motion/b=b", "300"},
			want:   []string{"0s light log on k (a)", "60s light log on b (b)", "120s light log off k (a)", "180s light log off b (b)"},
		},
		{
			name:   "single: a firing while the sequence waits is ignored",
			rules:  motion("mode: single"),
			script: []string{"0 motion/k=a", "60 motion/k=b", "130 motion/k=c", "300"},
			want:   []string{"0s light log on k (a)", "120s light log off k (a)", "130s light log on k (c)", "250s light log off k (c)"},
		},
		{
			name:   "queued: a firing runs after the waiting one",
			rules:  motion("mode: queued"),
			script: []string{"0 motion/k=a", "60 motion/k=b", "400"},
			want:   []string{"0s light log on k (a)", "120s light log off k (a)", "120s light log on k (b)", "240s light log off k (b)"},
		},
		{
			name:   "queued: at most max_queued wait",
			rules:  motion("mode: queued\n    max_queued: 1"),
			script: []string{"0 motion/k=a", "10 motion/k=b", "20 motion/k=c", "400"},
			want:   []string{"0s light log on k (a)", "120s light log off k (a)", "120s light log on k (b)", "240s light log off k (b)"},
		},
		{
			name:   "parallel: firings run alongside",
			rules:  motion("mode: parallel"),
			script: []string{"0 motion/k=a", "60 motion/k=b", "300"},
			want:   []string{"0s light log on k (a)", "60s light log on k (b)", "120s light log off k (a)", "180s light log off k (b)"},
		},
		{
			name: "now in a later step is the time it runs",
			rules: `
rules:
  - name: r
    topic: t
    actions:
      - delay: 90s
      - log: "{{ (now - prev?.time ?? now).Seconds() }} {{ now.Sub(date('2026-11-25T12:00:00Z')).Seconds() }}"
`,
			script: []string{"0 t=x", "200"},
			want:   []string{"90s r log 0 90"},
		},
		{
			name: "on_clear cancels the waiting firing sequence; a new firing cancels a waiting on_clear",
			rules: `
rules:
  - name: door
    topic: door
    when: payload == "open"
    actions:
      - log: open
      - delay: 5m
      - log: still open after 5m
    on_clear:
      - delay: 1m
      - log: closed for a minute
`,
			script: []string{"0 door=open", "60 door=closed", "90 door=open", "600 door=closed", "1000"},
			want:   []string{"0s door log open", "90s door log open", "390s door log still open after 5m", "660s door log closed for a minute"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.rules)
			got := h.run(tt.script...)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestSingleModeCountsSuppressed(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    mode: single
    actions: [{log: a}, {delay: 1m}, {log: b}]
`)
	h.run("0 t=1", "10 t=2", "20 t=3")
	s := h.e.Counters().Rule("r")
	if s.Suppressed.Load() != 2 || s.Fires.Load() != 1 {
		t.Errorf("suppressed %d fires %d; want 2 and 1", s.Suppressed.Load(), s.Fires.Load())
	}
	keys, _ := h.e.Keys("r", 0)
	if len(keys) != 1 || len(keys[0].Waiting) != 1 || keys[0].Waiting[0].Step != 2 || !keys[0].Waiting[0].Until.Equal(t0.Add(time.Minute)) {
		t.Errorf("keys %+v, want one waiting sequence at step 2 until +1m", keys)
	}
}

// TestRepeatTimelines: repeat until the episode clears, max_repeats, and
// acknowledgement.
func TestRepeatTimelines(t *testing.T) {
	const freezer = `
rules:
  - name: freezer
    topic: freezer
    when: payload > -12
    for: 1m
    repeat: 10m
    %s
    actions: [{log: "warm {{ payload }} repeat {{ repeat }}"}]
    on_clear: [{log: "cold again"}]
`
	t.Run("until clear", func(t *testing.T) {
		h := newHarness(t, strings.Replace(freezer, "%s", "", 1))
		got := h.run("0 freezer=-5", "61", "1900 freezer=-20", "4000")
		want := []string{"60s freezer log warm -5 repeat 0", "660s freezer log warm -5 repeat 1", "1260s freezer log warm -5 repeat 2",
			"1860s freezer log warm -5 repeat 3", "1900s freezer log cold again"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if n := h.e.Counters().Rule("freezer").Fires.Load(); n != 4 {
			t.Errorf("fires %d, want 4 (repeats are firings)", n)
		}
	})
	t.Run("max_repeats", func(t *testing.T) {
		h := newHarness(t, strings.Replace(freezer, "%s", "max_repeats: 2", 1))
		got := h.run("0 freezer=-5", "5000")
		want := []string{"60s freezer log warm -5 repeat 0", "660s freezer log warm -5 repeat 1", "1260s freezer log warm -5 repeat 2"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})
	t.Run("until acknowledged", func(t *testing.T) {
		h := newHarness(t, strings.Replace(freezer, "%s", "", 1))
		got := h.run("0 freezer=-5", "700")
		n, err := h.e.Ack("freezer", "")
		if err != nil || n != 1 {
			t.Fatalf("Ack = %d, %v; want 1 key", n, err)
		}
		keys, _ := h.e.Keys("freezer", 0)
		if len(keys) != 1 || !keys[0].Firing || !keys[0].Acked {
			t.Errorf("keys after the ack %+v, want firing and acked", keys)
		}
		got = append(got, h.run("3000 freezer=-20", "3100 freezer=-4", "3200", "4000")...)
		want := []string{"60s freezer log warm -5 repeat 0", "660s freezer log warm -5 repeat 1",
			"3000s freezer log cold again", "3160s freezer log warm -4 repeat 0", "3760s freezer log warm -4 repeat 1"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if _, err := h.e.Ack("nope", ""); err == nil {
			t.Error("Ack of an unknown rule: no error")
		}
	})
}

// nowRecorder records each action with the time of the engine's clock,
// in a zone.
type nowRecorder struct {
	mu    sync.Mutex
	clock *fakeClock
	zone  *time.Location
	got   []string
}

func (r *nowRecorder) Do(q actions.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, r.clock.Now().In(r.zone).Format("01-02 15:04 MST")+" "+describe(q))
}

// timed returns an engine on a fake clock at start, with rules loaded
// with a location, and a recorder of its actions.
func timed(t *testing.T, start time.Time, zone *time.Location, loc *sun.Location, src string) (*Engine, *fakeClock, *nowRecorder) {
	t.Helper()
	clock := &fakeClock{now: start}
	rec := &nowRecorder{clock: clock, zone: zone}
	e := New(Config{Actions: rec, Clock: clock, TimeZone: zone, Location: loc})
	l := rules.NewLoader()
	l.Location = loc
	rs, err := l.LoadSources(rules.Source{Name: "t.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	e.SetRules(rs)
	return e, clock, rec
}

// runUntil advances the clock in steps to end, firing timers.
func runUntil(e *Engine, c *fakeClock, end time.Time, step time.Duration) {
	for now := c.Now(); !now.After(end); now = now.Add(step) {
		c.set(now)
		e.Advance(now)
	}
}

// TestScheduleAcrossDST: in Europe/Berlin 02:30 does not exist on
// 2026-03-29 (skipped) and occurs twice on 2026-10-25 (fired once).
func TestScheduleAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data")
	}
	src := `
rules:
  - name: nightly
    schedule: "30 2 * * *"
    actions: [{log: "{{ trigger }} {{ topic }}{{ payload }} {{ now }}"}]
`
	t.Run("spring forward", func(t *testing.T) {
		e, c, rec := timed(t, time.Date(2026, 3, 27, 12, 0, 0, 0, berlin), berlin, nil, src)
		runUntil(e, c, time.Date(2026, 3, 31, 12, 0, 0, 0, berlin), 15*time.Minute)
		want := []string{
			"03-28 02:30 CET nightly log schedule  2026-03-28T02:30:00+01:00",
			"03-30 02:30 CEST nightly log schedule  2026-03-30T02:30:00+02:00",
			"03-31 02:30 CEST nightly log schedule  2026-03-31T02:30:00+02:00",
		}
		if strings.Join(rec.got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(rec.got, "\n  "), strings.Join(want, "\n  "))
		}
	})
	t.Run("fall back", func(t *testing.T) {
		e, c, rec := timed(t, time.Date(2026, 10, 24, 12, 0, 0, 0, berlin), berlin, nil, src)
		runUntil(e, c, time.Date(2026, 10, 26, 12, 0, 0, 0, berlin), 15*time.Minute)
		want := []string{
			"10-25 02:30 CEST nightly log schedule  2026-10-25T02:30:00+02:00",
			"10-26 02:30 CET nightly log schedule  2026-10-26T02:30:00+01:00",
		}
		if strings.Join(rec.got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n  %s\nwant\n  %s", strings.Join(rec.got, "\n  "), strings.Join(want, "\n  "))
		}
	})
	t.Run("a rule's timezone overrides the engine's", func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Skip("no zone")
		}
		e, c, rec := timed(t, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), berlin, nil, `
rules:
  - name: r
    schedule: "0 9 * * *"
    timezone: America/New_York
    actions: [{log: x}]
`)
		runUntil(e, c, time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), time.Minute)
		if want := []string{time.Date(2026, 6, 1, 9, 0, 0, 0, ny).In(berlin).Format("01-02 15:04 MST") + " r log x"}; strings.Join(rec.got, "|") != strings.Join(want, "|") {
			t.Errorf("got %q, want %q", rec.got, want)
		}
	})
}

// TestScheduleWithState: a timed evaluation goes through the key's state
// like a message: `when` applies, episodes and on_clear work.
func TestScheduleWithState(t *testing.T) {
	e, c, rec := timed(t, t0, time.UTC, nil, `
rules:
  - name: doors-at-night
    schedule: "@every 1h"
    when: any(states("door/+"), {.payload == "open"})
    on_clear: [{log: "all closed"}]
    actions: [{log: "open: {{ join(map(filter(states('door/+'), .payload == 'open'), .topic), ',') }} key '{{ key }}'"}]
`)
	e.Handle(Message{Topic: "door/front", Payload: []byte("open"), Time: t0})
	runUntil(e, c, t0.Add(150*time.Minute), time.Minute) // fires at 1h, an episode at 2h
	e.Handle(Message{Topic: "door/front", Payload: []byte("closed"), Time: c.Now()})
	runUntil(e, c, t0.Add(200*time.Minute), time.Minute)
	want := []string{"11-25 13:00 UTC doors-at-night log open: door/front key ''", "11-25 15:00 UTC doors-at-night log all closed"}
	if strings.Join(rec.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(rec.got, "\n  "), strings.Join(want, "\n  "))
	}
	tr := e.Trace("doors-at-night")
	if len(tr) == 0 || tr[0].Trigger != "schedule" || !tr[0].Timer {
		t.Errorf("trace %+v, want schedule evaluations", tr)
	}
}

// TestSunTrigger: a rule fires at sunset −30m each day, with sun in its
// environment, at the times internal/sun computes for the place.
func TestSunTrigger(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data")
	}
	loc := &sun.Location{Latitude: 52.52, Longitude: 13.405}
	start := time.Date(2026, 6, 20, 0, 0, 0, 0, berlin)
	e, c, rec := timed(t, start, berlin, loc, `
rules:
  - name: porch
    sun: {event: sunset, offset: -30m}
    actions: [{log: "{{ trigger }} up={{ sun.up }} sunset={{ sun.sunset.In(sun.sunset.Location()).Format('15:04') }}"}]
`)
	runUntil(e, c, start.Add(48*time.Hour), time.Minute)
	var want []string
	for d := range 2 {
		day := start.AddDate(0, 0, d)
		ev := sun.Day(day, *loc, berlin)
		at := ev.Sunset.Add(-30 * time.Minute)
		want = append(want, at.Truncate(time.Minute).Add(time.Minute).In(berlin).Format("01-02 15:04 MST")+
			" porch log sun up=true sunset="+ev.Sunset.In(berlin).Format("15:04"))
	}
	if strings.Join(rec.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(rec.got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestTriggerVariable: `trigger` says what started the evaluation.
func TestTriggerVariable(t *testing.T) {
	e, c, rec := timed(t, t0, time.UTC, nil, `
rules:
  - name: r
    topic: t
    schedule: "@every 30m"
    actions: [{log: "{{ trigger }}"}]
`)
	e.Handle(Message{Topic: "t", Time: t0})
	runUntil(e, c, t0.Add(40*time.Minute), time.Minute)
	want := []string{"11-25 12:00 UTC r log message", "11-25 12:30 UTC r log schedule"}
	if strings.Join(rec.got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", rec.got, want)
	}
}

// TestSequencesAcrossReload: an unchanged rule keeps its waiting
// sequences; a changed one loses them (logged).
func TestSequencesAcrossReload(t *testing.T) {
	src := `
rules:
  - name: r
    topic: t
    actions: [{log: a}, {delay: 1m}, {log: "%s"}]
`
	h := newHarness(t, strings.Replace(src, "%s", "b", 1))
	h.run("0 t=1")
	h.load(strings.Replace(src, "%s", "b", 1))
	if got := h.run("100"); strings.Join(got, "|") != "60s r log b" {
		t.Errorf("unchanged rule: got %q, want the waiting step to run", got)
	}
	h.run("200 t=1")
	h.load(strings.Replace(src, "%s", "changed", 1))
	if got := h.run("400"); len(got) != 0 {
		t.Errorf("changed rule: got %q, want the sequence cancelled", got)
	}
}

// TestSequencesPersist: a waiting delay resumes after a restart with the
// time it had left.
func TestSequencesPersist(t *testing.T) {
	src := `
rules:
  - name: r
    topic: t
    actions: [{log: "a {{ raw }}"}, {delay: 2m}, {log: "b {{ raw }}"}]
`
	store := newMemStore()
	h := newHarness(t, src)
	if _, err := h.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	h.run("0 t=x", "30")
	h.e.SaveState(store)

	h2 := newHarness(t, src) // down for an hour in between: that time does not count
	h2.clock.set(t0.Add(time.Hour))
	h2.sec = 3600
	if _, err := h2.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	if got := h2.run("3680"); len(got) != 0 {
		t.Errorf("fired early: %q", got)
	}
	if got := h2.run("3700"); strings.Join(got, "|") != "3690s r log b x" {
		t.Errorf("got %q, want b 90s after the restart", got)
	}
}
