package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// SetEnabled builds a new active without worlds: the remembered-topics
// store stops being updated.
func TestSetEnabledKeepsRememberedTopics(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: night-light
    topic: motion
    actions: [{log: "mode {{ state('home/mode')?.raw }}"}]
  - name: other
    topic: x
    actions: [{log: x}]
`)
	h.run("0 home/mode=night", "1 motion=1")
	if _, err := h.e.SetEnabled("other", false, "mqtt"); err != nil {
		t.Fatal(err)
	}
	got := h.run("2 home/mode=day", "3 motion=1")
	t.Logf("after SetEnabled: %q", got)
	if strings.Join(got, "|") != "3s night-light log mode day" {
		t.Errorf("got %q, want mode day", got)
	}
	n, _ := h.e.Counters().Remembered()
	t.Logf("RememberedTopics: %+v (counter %d)", h.e.RememberedTopics("#", 0), n)
}

// Restore applies overrides (SetEnabled) before restoring worlds: every
// saved remembered topic is deemed stale and deleted from the store.
func TestRestoreWithOverrideKeepsRememberedTopics(t *testing.T) {
	src := `
rules:
  - name: r
    topic: motion
    actions: [{log: "mode {{ state('home/mode')?.raw }}"}]
  - name: other
    topic: x
    actions: [{log: x}]
`
	store := newMemStore()
	h := newHarness(t, src)
	if _, err := h.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	h.run("0 home/mode=night")
	h.e.SaveState(store) // the world is saved while no override exists
	h.e.SetEnabled("other", false, "http")
	h.e.SaveState(store)
	t.Logf("store before restart: %d remembered, meta %q", len(store.world), store.meta["overrides"])

	h2 := newHarness(t, src)
	if _, err := h2.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	t.Logf("store after restart: %d remembered", len(store.world))
	got := h2.run("1 motion=1")
	t.Logf("after restart: %q", got)
	if len(store.world) != 1 || strings.Join(got, "|") != "1s r log mode night" {
		t.Errorf("remembered topics lost: store %d, got %q", len(store.world), got)
	}
	h2.run("2 home/mode=day")
	h2.e.SaveState(store)
	t.Logf("store after a later message and save: %+v", store.world)
}

// After the restart of TestRestoreWithOverrideKeepsRememberedTopics, even a
// reload (which puts the worlds back into active) never saves them again:
// world.dirty stayed nil because restore never ran on them.
func TestRememberedTopicsSavedAfterOverrideRestart(t *testing.T) {
	src := `
rules:
  - name: r
    topic: motion
    actions: [{log: "mode {{ state('home/mode')?.raw }}"}]
  - name: other
    topic: x
    actions: [{log: x}]
`
	store := newMemStore()
	store.SaveMeta("overrides", []byte(`{}`))
	h := newHarness(t, src)
	h.e.Restore(store)
	h.e.SetEnabled("other", false, "http")
	h.e.SaveState(store)
	h2 := newHarness(t, src)
	h2.e.Restore(store)
	h2.load(src) // a reload: worlds are back in active
	h2.run("1 home/mode=night")
	h2.e.SaveState(store)
	t.Logf("after reload + message + save: store holds %d remembered topics", len(store.world))
	if len(store.world) != 1 {
		t.Errorf("remembered topic not persisted: %d", len(store.world))
	}
}

// Enabled reads rt.enabledBy while SetEnabled writes it on the live runtime.
func TestEnabledWhileSetEnabledRepeats(t *testing.T) {
	h := newHarness(t, "rules: [{name: r, topic: t, actions: [{log: x}]}]")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			h.e.Enabled("r")
		}
	}()
	for range 1000 {
		h.e.SetEnabled("r", true, "http") // the file says enabled: prev == on
	}
	<-done
}

// RunNow of a rule with a delay step that is disabled (so it has no state)
// silently drops every step after the delay.
func TestRunNowRefusesDisabledRule(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    enabled: false
    actions: [{log: "on"}, {delay: 10s}, {log: "off"}]
`)
	if err := h.e.RunNow("r", nil); !errors.Is(err, ErrDisabled) {
		t.Fatalf("RunNow of a disabled rule: %v, want ErrDisabled", err)
	}
	got := h.run("60")
	got = append(h.tl.take(), got...)
	if len(got) != 0 {
		t.Errorf("a refused run ran %q", got)
	}
}

// repeat has no lower bound (@every has 1s): repeat: 1us makes one Advance
// fire a repeat for every microsecond that passed, holding stateMu.
func TestRepeatShorterThanASecondRefused(t *testing.T) {
	_, err := rules.NewLoader().LoadSources(rules.Source{Name: "r.yaml", Data: []byte(`
rules:
  - name: r
    topic: t
    on_clear: [{log: clear}]
    repeat: 1us
    actions: [{log: "x"}]
`)})
	if err == nil || !strings.Contains(err.Error(), "repeat: 1µs is shorter than 1s") {
		t.Errorf("repeat: 1us loaded: %v", err)
	}
}

// states() of a literal filter with an in-level capture: the view's index
// ignores the text around the capture, so it lists topics the rule's own
// matcher would refuse.
func TestStatesWithCaptureRefused(t *testing.T) {
	_, err := rules.NewLoader().LoadSources(rules.Source{Name: "r.yaml", Data: []byte(`
rules:
  - name: r
    topic: go
    actions: [{log: "{{ join(map(states('z/{room}_motion'), .topic), ',') }}"}]
`)})
	if err == nil || !strings.Contains(err.Error(), "states() takes an MQTT filter: write + or # here") {
		t.Errorf("states() with a capture loaded: %v", err)
	}
}

// sortedStore returns records in key order, as bbolt does.
type sortedStore struct{ *memStore }

func (s sortedStore) Load() ([]KeyRecord, time.Time, error) {
	recs, at, err := s.memStore.Load()
	slices.SortFunc(recs, func(a, b KeyRecord) int { return strings.Compare(a.Key, b.Key) })
	return recs, at, err
}

// Restore with more saved keys than --max-keys keeps the keys last in the
// store's order, not the most recently seen: a firing key seen last is
// evicted (its episode lost), and the LRU order afterwards is alphabetical.
func TestRestoreBeyondMaxKeysKeepsMostRecent(t *testing.T) {
	src := `
rules:
  - name: r
    topic: s/{k}
    key: "{{ k }}"
    when: payload > 30
    on_clear: [{log: "{{ k }} cleared"}]
    actions: [{log: "{{ k }} fired"}]
`
	store := sortedStore{newMemStore()}
	h := newHarnessWith(t, Config{MaxKeys: 10}, src)
	h.e.Restore(store)
	h.run("0 s/b=31", "1 s/c=31", "2 s/a=31") // a is the most recent
	h.e.SaveState(store)

	h2 := newHarnessWith(t, Config{MaxKeys: 2}, src)
	h2.clock.set(t0.Add(3 * time.Second))
	h2.sec = 3
	h2.e.Restore(store)
	keys, _ := h2.e.Keys("r", 0)
	var names []string
	for _, k := range keys {
		names = append(names, k.Key)
	}
	t.Logf("kept after restore with --max-keys 2: %v", names)
	got := h2.run("4 s/a=1")
	t.Logf("a clears: %q", got)
	if len(got) != 1 {
		t.Errorf("the most recently seen firing key was dropped on restore: got %q", got)
	}
}

func TestScheduleAcrossDSTHourly(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	santiago, _ := time.LoadLocation("America/Santiago")
	for _, tc := range []struct {
		name       string
		zone       *time.Location
		spec       string
		start, end time.Time
	}{
		{"hourly fall back", berlin, "30 * * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), time.Date(2026, 10, 25, 4, 0, 0, 0, berlin)},
		{"*/20 spring", berlin, "*/20 * * * *", time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)},
		{"midnight gap", santiago, "0 0 * * *", time.Date(2026, 9, 4, 12, 0, 0, 0, santiago), time.Date(2026, 9, 8, 12, 0, 0, 0, santiago)},
		{"midnight gap 0 1", santiago, "0 1 * * *", time.Date(2026, 9, 4, 12, 0, 0, 0, santiago), time.Date(2026, 9, 8, 12, 0, 0, 0, santiago)},
		{"santiago fall back", santiago, "30 23 * * *", time.Date(2026, 4, 3, 12, 0, 0, 0, santiago), time.Date(2026, 4, 6, 12, 0, 0, 0, santiago)},
	} {
		e, c, rec := timed(t, tc.start, tc.zone, nil, "rules: [{name: r, schedule: \""+tc.spec+"\", actions: [{log: \"{{ now }}\"}]}]")
		runUntil(e, c, tc.end, time.Minute)
		t.Logf("%s:\n  %s", tc.name, strings.Join(rec.got, "\n  "))
	}
}

// On the real clock, a trigger due more than a minute ago is skipped.
func TestMissedTriggerSkipped(t *testing.T) {
	e, c, rec := timed(t, t0, time.UTC, nil, `rules: [{name: r, schedule: "0 * * * *", actions: [{log: "{{ now }}"}]}]`)
	c.set(t0.Add(time.Hour + 30*time.Second))
	e.advance(c.Now(), true) // 30 s late: fires
	c.set(t0.Add(3*time.Hour + 2*time.Minute))
	e.advance(c.Now(), true) // the 14:00 firing 2 min late: skipped
	next, _ := e.NextTimer()
	t.Logf("fired %q; next %v", rec.got, next)
	if len(rec.got) != 1 || !next.Equal(t0.Add(4*time.Hour)) {
		t.Errorf("missed trigger handling: %q next %v", rec.got, next)
	}
}

// A message that loaded the active set before SetEnabled (or SetRules)
// swapped it evaluates the old runtime, whose state is dead: it creates a
// key in the dead state and a timer nobody cancels, and fires a rule that
// was just disabled. (White-box: the interleaving of Handle with
// SetEnabled, replayed in order.)
func TestMessageInFlightDuringDisable(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    absent: 24h
    actions: [{log: "absent"}]
`)
	a := h.e.active.Load() // Handle has loaded the set...
	h.e.SetEnabled("r", false, "http")
	msg := Message{Topic: "t", Payload: []byte("1"), Time: h.clock.Now()}
	c := h.e.ctxs.Get().(*evalCtx)
	for _, m := range c.begin(a.rs, &msg) { // ...and goes on with it
		if rt := a.rules[m.Rule.Index]; rt.enabled.Load() {
			h.e.evaluate(c, rt, m.Filter)
		}
	}
	c.end()
	t.Logf("rule disabled; timers in the heap: %d (dead state holds %d keys)", len(h.e.timers), len(a.rules[0].st.keys))
	if len(h.e.timers) != 0 {
		t.Errorf("a disabled rule's key left a 24h timer in the heap")
	}
}

// countingStore counts Save calls.
type countingStore struct {
	*memStore
	saves int
}

func (s *countingStore) Save(put []KeyRecord, del []KeyRef, at time.Time) error {
	s.saves++
	return s.memStore.Save(put, del, at)
}

// A rule with a schedule keeps a timer in the heap for ever, so SaveState
// writes the store on every tick though nothing changed.
func TestScheduleAloneDoesNotSaveEverySecond(t *testing.T) {
	store := &countingStore{memStore: newMemStore()}
	h := newHarness(t, `rules: [{name: r, schedule: "0 22 * * *", actions: [{log: x}]}]`)
	h.e.Restore(store)
	for i := range 60 {
		h.to(i + 1)
		h.e.SaveState(store)
	}
	if store.saves > 0 {
		t.Errorf("60 ticks without any state change: %d store transactions, want none", store.saves)
	}
}

func TestQueuedOrderWithTwoDelays(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    mode: queued
    actions: [{log: "1 {{ raw }}"}, {delay: 10s}, {log: "2 {{ raw }}"}, {delay: 10s}, {log: "3 {{ raw }}"}]
`)
	got := h.run("0 t=a", "5 t=b", "6 t=c", "100")
	want := "0s r log 1 a | 10s r log 2 a | 20s r log 3 a | 20s r log 1 b | 30s r log 2 b | 40s r log 3 b | 40s r log 1 c | 50s r log 2 c | 60s r log 3 c"
	if strings.Join(got, " | ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " | "), want)
	}
}

// repeat with a delay step in a restart rule: each repeat restarts the sequence.
func TestRepeatRestartsSequenceWithDelay(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    when: raw == "1"
    on_clear: [{log: clear}]
    repeat: 30s
    max_repeats: 2
    actions: [{log: "on {{ repeat }}"}, {delay: 20s}, {log: "later {{ repeat }}"}]
`)
	got := h.run("0 t=1", "200", "210 t=0", "220 t=1", "240")
	h.e.Ack("r", "")
	got = append(got, h.run("400")...)
	want := "0s r log on 0 | 20s r log later 0 | 30s r log on 1 | 50s r log later 1 | 60s r log on 2 | 80s r log later 2 | 210s r log clear | 220s r log on 0 | 240s r log later 0"
	if strings.Join(got, " | ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " | "), want)
	}
}

// `now` reads in --timezone in the steps after a delay and in repeats too,
// not only for a message.
func TestNowZoneAfterDelayAndInRepeats(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	h := newHarnessWith(t, Config{TimeZone: ny}, `
rules:
  - name: r
    topic: t
    on_clear: [{log: clear}]
    repeat: 1m
    actions: [{log: "hour {{ now.Hour() }} trigger {{ trigger }} repeat {{ repeat }}"}, {delay: 10s}, {log: "after delay hour {{ now.Hour() }}"}]
`)
	got := h.run("0 t=1", "70")
	for _, g := range got[1:] {
		if !strings.Contains(g, "hour 7") {
			t.Errorf("not in --timezone: %q", g)
		}
	}
}

// TestStateOfNoTopicName: state() of a computed string that is no topic
// name says so, rather than asking for a remember: filter that exists.
func TestStateOfNoTopicName(t *testing.T) {
	h := newHarness(t, `
remember: [a/#]
rules:
  - name: r
    topic: q
    when: state("a/" + raw) == nil
    actions: [{log: "nil"}]
`)
	got := h.run("0 q=+", "1 q=x")
	if strings.Join(got, "|") != "1s r log nil" {
		t.Errorf("got %q, want only the valid topic to evaluate", got)
	}
	var errs []string
	for _, ev := range h.e.Trace("r") {
		if ev.Err != "" {
			errs = append(errs, ev.Err)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], `state("a/+"): not a topic name`) {
		t.Errorf("errors %q, want one saying a/+ is not a topic name", errs)
	}
}

// hookClock runs hook once, on the next Now.
type hookClock struct {
	*fakeClock
	hook func()
}

func (c *hookClock) Now() time.Time {
	if h := c.hook; h != nil {
		c.hook = nil
		h()
	}
	return c.fakeClock.Now()
}

// TestRunNowRacesDisable: a disable (HTTP) or a reload that lands between
// RunNow's enabled check and its lock does not fire the just-disabled rule
// nor leave a key and a delay timer in the dropped state.
func TestRunNowRacesDisable(t *testing.T) {
	fc := &fakeClock{now: t0}
	clock := &hookClock{fakeClock: fc}
	tl := &timeline{clock: fc}
	h := &harness{t: t, e: New(Config{Actions: tl, Clock: clock}), clock: fc, tl: tl}
	h.load(`
rules:
  - name: r
    topic: t
    actions: [{log: "on"}, {delay: 24h}, {log: "off"}]
`)
	// RunNow's e.clock.Now() runs after its enabled check, before stateMu:
	// the disable arrives exactly there.
	clock.hook = func() {
		if _, err := h.e.SetEnabled("r", false, "http"); err != nil {
			t.Error(err)
		}
	}
	err := h.e.RunNow("r", nil)
	got := h.tl.take()
	on, _, _ := h.e.Enabled("r")
	if on {
		t.Fatal("the hook did not disable the rule")
	}
	if !errors.Is(err, ErrDisabled) || len(got) > 0 {
		t.Errorf("RunNow = %v and ran %q, want ErrDisabled and nothing run", err, got)
	}
	if err == nil && len(got) > 0 {
		t.Errorf("the run fired actions of a rule disabled before it took the lock")
	}
	if len(h.e.timers) != 0 {
		t.Errorf("a disabled rule's run left %d timer(s) in the heap", len(h.e.timers))
	}
}
