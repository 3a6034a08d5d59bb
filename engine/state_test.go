package engine

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// timeline records each action with the virtual second it ran at.
type timeline struct {
	clock *fakeClock
	mu    sync.Mutex
	got   []string
}

func (tl *timeline) Do(q actions.Request) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sec := int(tl.clock.Now().Sub(t0) / time.Second)
	tl.got = append(tl.got, fmt.Sprintf("%ds %s", sec, describe(q)))
}

func (tl *timeline) take() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := tl.got
	tl.got = nil
	return out
}

// harness drives an engine second by second on a fake clock.
type harness struct {
	t     *testing.T
	e     *Engine
	clock *fakeClock
	tl    *timeline
	sec   int
}

func newHarness(t *testing.T, src string) *harness {
	t.Helper()
	return newHarnessWith(t, Config{}, src)
}

// newHarnessWith is newHarness with cfg's other settings (MaxKeys, ...);
// the harness provides Actions and Clock.
func newHarnessWith(t *testing.T, cfg Config, src string) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	tl := &timeline{clock: clock}
	cfg.Actions, cfg.Clock = tl, clock
	h := &harness{t: t, e: New(cfg), clock: clock, tl: tl}
	h.load(src)
	return h
}

func (h *harness) load(src string) {
	h.t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "state.yaml", Data: []byte(src)})
	if err != nil {
		h.t.Fatalf("load: %v", err)
	}
	h.e.SetRules(rs)
}

// to moves the clock second by second to sec, firing due timers on the way.
func (h *harness) to(sec int) {
	for h.sec < sec {
		h.sec++
		now := t0.Add(time.Duration(h.sec) * time.Second)
		h.clock.set(now)
		h.e.Advance(now)
	}
}

// run plays a script: "5 t=31" sends payload 31 on topic t at second 5;
// "20" just lets time pass to second 20.
func (h *harness) run(script ...string) []string {
	h.t.Helper()
	for _, line := range script {
		at, msg, _ := strings.Cut(line, " ")
		sec, err := strconv.Atoi(at)
		if err != nil {
			h.t.Fatalf("bad script line %q", line)
		}
		h.to(sec)
		if msg == "" {
			continue
		}
		topic, payload, _ := strings.Cut(msg, "=")
		h.e.Handle(Message{Topic: topic, Payload: []byte(payload), Time: h.clock.Now()})
	}
	return h.tl.take()
}

func TestStateTimelines(t *testing.T) {
	tests := []struct {
		name   string
		rule   string
		script []string
		want   []string
	}{
		{
			name:   "for fires when the condition held for D, by timer, with the latest message",
			rule:   "for: 10s",
			script: []string{"0 t=31", "5 t=32", "15"},
			want:   []string{"10s r log fire t 32"},
		},
		{
			name:   "for: a false message cancels",
			rule:   "for: 10s",
			script: []string{"0 t=31", "5 t=29", "20 t=31", "35"},
			want:   []string{"30s r log fire t 31"},
		},
		{
			name:   "for fires once per episode; the episode ends on a false message",
			rule:   "for: 10s",
			script: []string{"0 t=31", "12 t=33", "14 t=29", "15 t=31", "30"},
			want:   []string{"10s r log fire t 31", "25s r log fire t 31"},
		},
		{
			name:   "for: a true message at the deadline, after the timer, changes nothing",
			rule:   "for: 10s",
			script: []string{"0 t=31", "10 t=35", "11"},
			want:   []string{"10s r log fire t 31"},
		},
		{
			name:   "for: a false message at the deadline, before the timer, cancels",
			rule:   "for: 10s",
			script: []string{"0 t=31", "9 t=29", "20"},
			want:   nil,
		},
		{
			name:   "cooldown suppresses repeats per key",
			rule:   "cooldown: 10s",
			script: []string{"0 t=31", "1 t=32", "9 u=33", "10 t=34", "11 t=35"},
			want:   []string{"0s r log fire t 31", "9s r log fire u 33", "10s r log fire t 34"},
		},
		{
			name:   "on_clear runs once on the first false message after a firing",
			rule:   `on_clear: [{log: "clear {{ topic }} {{ payload }}"}]`,
			script: []string{"0 t=31", "1 t=32", "2 t=29", "3 t=28", "4 t=31"},
			want:   []string{"0s r log fire t 31", "2s r log clear t 29", "4s r log fire t 31"},
		},
		{
			name: "clear_when: hysteresis",
			rule: `clear_when: payload < 28
    on_clear: [{log: "clear {{ payload }}"}]`,
			script: []string{"0 t=31", "1 t=29", "2 t=31", "3 t=27", "4 t=31"},
			want:   []string{"0s r log fire t 31", "3s r log clear 27", "4s r log fire t 31"},
		},
		{
			name: "for + on_clear",
			rule: `for: 5s
    on_clear: [{log: "clear {{ payload }}"}]`,
			script: []string{"0 t=31", "3 t=29", "4 t=31", "12 t=20", "13 t=19", "20"},
			want:   []string{"9s r log fire t 31", "12s r log clear 20"},
		},
		{
			name: "for + cooldown",
			rule: `for: 5s
    cooldown: 30s`,
			script: []string{"0 t=31", "6 t=29", "7 t=31", "13 t=29", "40 t=31", "50"},
			want:   []string{"5s r log fire t 31", "45s r log fire t 31"},
		},
		{
			name: "absent fires once per silence, with the last counting message, and clears on the next",
			rule: `absent: 10s
    on_clear: [{log: "back {{ payload }}"}]`,
			script: []string{"0 t=31", "5 t=32", "30 t=33", "45"},
			want:   []string{"15s r log fire t 32", "30s r log back 33", "40s r log fire t 33"},
		},
		{
			name:   "absent: only messages whose condition holds count as heartbeats",
			rule:   "absent: 10s",
			script: []string{"0 t=31", "5 t=1", "9 t=2", "12"},
			want:   []string{"10s r log fire t 31"},
		},
		{
			name:   "absent: a key never seen never fires",
			rule:   "absent: 10s",
			script: []string{"0 t=1", "30"},
			want:   nil,
		},
		{
			name:   "keys are independent",
			rule:   "for: 10s",
			script: []string{"0 a=31", "5 b=31", "8 a=1", "20"},
			want:   []string{"15s r log fire b 31"},
		},
		{
			name: "key template groups topics",
			rule: `key: "{{ segments[0] }}"
    for: 10s`,
			script: []string{"0 k/a=31", "5 k/b=31", "8 k/c=1", "9 k/a=31", "30"},
			want:   []string{"19s r log fire k/a 31"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fmt.Sprintf(`
rules:
  - name: r
    topic: "#"
    when: payload > 30
    %s
    actions: [{log: "fire {{ topic }} {{ payload }}"}]
`, tt.rule))
			got := h.run(tt.script...)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("timeline:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPrevStateChanged(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: changed
    topic: door/+
    when: prev != nil && prev.payload.state != payload.state
    actions: [{log: "{{ topic }}: {{ prev.payload.state }} -> {{ payload.state }}"}]
`)
	got := h.run(
		`0 door/front={"state":"closed"}`,
		`1 door/front={"state":"closed"}`,
		`2 door/back={"state":"open"}`,
		`3 door/front={"state":"open"}`,
		`4 door/back={"state":"open"}`,
		`5 door/front={"state":"closed"}`,
	)
	want := []string{"3s changed log door/front: closed -> open", "5s changed log door/front: open -> closed"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

const reloadRules = `
rules:
  - name: pending
    topic: p
    when: payload > 30
    for: 10s
    actions: [{log: "%s"}]
  - name: other
    topic: o
    when: payload > %d
    for: 10s
    actions: [{log: "other"}]
`

func TestStateSurvivesReloadOfUnchangedRule(t *testing.T) {
	h := newHarness(t, fmt.Sprintf(reloadRules, "fire", 30))
	h.run("0 p=31", "0 o=31")
	// Reload: "pending" changes only its action text (same fingerprint),
	// "other" changes its condition (new fingerprint: state reset).
	h.load(fmt.Sprintf(reloadRules, "fire after reload", 40))
	got := h.run("5 p=32", "30")
	want := []string{"10s pending log fire after reload"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	h.load("rules: [{name: x, topic: x, actions: [{log: x}]}]")
	if n := len(h.e.timers); n != 0 {
		t.Errorf("%d timers left after the stateful rules were removed", n)
	}
}

func TestMaxKeysEvictsLeastRecentlySeen(t *testing.T) {
	h := newHarnessWith(t, Config{MaxKeys: 2}, `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    for: 10s
    actions: [{log: "fire {{ topic }} {{ payload }}"}]
`)
	e := h.e
	got := h.run("0 a=31", "1 b=31", "2 a=31", "3 c=31", "20")
	// b was the least recently seen when c arrived: it is forgotten.
	want := []string{"10s r log fire a 31", "13s r log fire c 31"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if n := e.Counters().Rule("r").KeysEvicted.Load(); n != 1 {
		t.Errorf("evictions = %d, want 1", n)
	}
}

func TestTimerConditionErrorsDoNotStopTimers(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    when: payload.v > 30
    for: 5s
    actions: [{log: "fire {{ topic }}"}]
`)
	got := h.run(`0 a={"v":31}`, `1 b=text`, `2 c={"v":31}`, "10")
	want := []string{"5s r log fire a", "7s r log fire c"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if n := h.e.Counters().Rule("r").ConditionErrors.Load(); n != 1 {
		t.Errorf("condition errors = %d, want 1", n)
	}
}

func TestTraceExplainsEachEvaluation(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    when: payload.v > 30
    for: 10s
    cooldown: 1m
    actions: [{log: "fire"}]
`)
	h.run(`0 t={"v":31}`, `2 t={"v":1}`, `3 t={"v":31}`, `13`, `14 t={"v":32}`, `20 t=oops`)
	var got []string
	for _, ev := range h.e.Trace("r") {
		got = append(got, fmt.Sprintf("%ds %s %s", int(ev.Time.Sub(t0)/time.Second), ev.Outcome, ev.Explain()))
	}
	want := []string{
		"0s pending condition true: pending for, fires at 2026-11-25T12:00:10Z unless a false message comes first",
		"2s cancelled condition false: cancelled the pending for",
		"3s pending condition true: pending for, fires at 2026-11-25T12:00:13Z unless a false message comes first",
		"13s fired fired by its timer",
		"14s episode condition true: already fired in this episode, does not fire again until it clears",
		`20s error condition failed: invalid operation: int(string) (payload is the text "oops", not a JSON object; guard with type(payload) == "map" && …)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	last := h.e.Trace("r")[5]
	if last.Payload != "oops" || last.Key != "t" || last.Cond != nil {
		t.Errorf("last evaluation = %+v", last)
	}
}

func TestKeys(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    for: 10s
    cooldown: 1m
    actions: [{log: "fire"}]
`)
	h.run("0 a=31", "1 b=31", "2 c=1", "10")
	keys, tracked := h.e.Keys("r", 0)
	if tracked != 2 { // c only ever saw a false message: nothing to track
		t.Errorf("tracked %d keys, want 2", tracked)
	}
	var got []string
	for _, k := range keys {
		got = append(got, fmt.Sprintf("%s pending=%v firing=%v deadline=%v cooldown=%v", k.Key, k.Pending, k.Firing,
			k.Deadline.Sub(t0), k.CooldownUntil.Sub(t0)))
	}
	if len(keys) != 2 || keys[0].Key != "b" || !keys[0].Pending || keys[1].Key != "a" || !keys[1].Firing || !keys[1].CooldownUntil.Equal(t0.Add(70*time.Second)) {
		t.Errorf("keys:\n%s", strings.Join(got, "\n"))
	}
}

func TestTraceKeepsTheLastN(t *testing.T) {
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "t.yaml", Data: []byte("rules: [{name: r, topic: t, actions: [{log: x}]}]")})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Config{Actions: &recorder{}, TraceLen: 3})
	e.SetRules(rs)
	for i := range 5 {
		e.Handle(Message{Topic: "t", Payload: []byte(fmt.Sprint(i))})
		if got := len(e.Trace("r")); got != min(i+1, 3) {
			t.Fatalf("after %d messages the trace holds %d", i+1, got)
		}
	}
	var got []string
	for _, ev := range e.Trace("r") {
		got = append(got, ev.Payload)
	}
	if strings.Join(got, ",") != "2,3,4" {
		t.Errorf("trace = %v, want the last 3 in order", got)
	}
}
