package engine

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/window"
)

// TestWorldTimelines plays scripts through rules that read state(),
// states(), windows and fired, on the fake clock.
func TestWorldTimelines(t *testing.T) {
	tests := []struct {
		name   string
		rules  string
		script []string
		want   []string
	}{
		{
			name: "state() of another topic: motion fires only in night mode",
			rules: `
rules:
  - name: r
    topic: motion
    when: state("home/mode")?.payload == "night"
    actions: [{log: "light {{ state('home/mode').raw }}"}]
`,
			script: []string{"0 motion=1", "1 home/mode=night", "2 motion=1", "3 home/mode=day", "4 motion=1"},
			want:   []string{"2s r log light night"},
		},
		{
			name: "the handled message is state(topic); prev is the one before",
			rules: `
remember: [t]
rules:
  - name: r
    topic: t
    actions: [{log: "{{ state(topic).raw }} after {{ prev?.raw ?? 'nothing' }}"}]
`,
			script: []string{"0 t=a", "1 t=b"},
			want:   []string{"0s r log a after nothing", "1s r log b after a"},
		},
		{
			name: "states() lists the remembered topics a filter matches, sorted",
			rules: `
rules:
  - name: r
    topic: check
    actions: [{log: "{{ map(states('door/+'), .topic) }} open: {{ len(filter(states('door/+'), .payload == 'open')) }}"}]
`,
			script: []string{"0 door/b=open", "1 door/a=closed", "2 door/c=open", "3 check=1"},
			want:   []string{`3s r log ["door/a","door/b","door/c"] open: 2`},
		},
		{
			name: "a JSON payload is decoded, a text one is a string",
			rules: `
rules:
  - name: r
    topic: check
    actions: [{log: "{{ state('a').payload.v + 1 }} {{ state('b').payload }}"}]
`,
			script: []string{"0 a={\"v\":41}", "0 b=on", "1 check=1"},
			want:   []string{"1s r log 42 on"},
		},
		{
			name: "a remember: list covers dynamic arguments",
			rules: `
remember: [room/+/mode]
rules:
  - name: r
    topic: motion/{room}
    when: state("room/" + room + "/mode")?.payload == "night"
    actions: [{log: "night in {{ room }}"}]
`,
			script: []string{"0 room/k/mode=night", "1 motion/k=1", "2 motion/b=1"},
			want:   []string{"1s r log night in k"},
		},
		{
			name: "windows: the humidity rose 10 points within 5 minutes",
			rules: `
rules:
  - name: shower
    topic: bath/{room}
    key: "{{ room }}"
    windows:
      humidity: {value: payload.h, over: 5m}
    when: windows.humidity.count >= 2 && windows.humidity.delta > 10
    cooldown: 1h
    actions: [{log: "fan on in {{ room }}: +{{ windows.humidity.delta }} in {{ windows.humidity.span }}"}]
`,
			script: []string{`0 bath/a={"h":50}`, `60 bath/a={"h":55}`, `120 bath/a={"h":62}`, `400 bath/a={"h":62}`},
			want:   []string{"120s shower log fan on in a: +12 in 2m0s"},
		},
		{
			name: "windows: samples older than over are dropped before each evaluation",
			rules: `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 10s}
    actions: [{log: "count {{ windows.w.count }} sum {{ windows.w.sum }} first {{ windows.w.first }}"}]
`,
			script: []string{"0 p=1", "5 p=2", "10 p=3", "11 p=4"},
			want:   []string{"0s r log count 1 sum 1 first 1", "5s r log count 2 sum 3 first 1", "10s r log count 3 sum 6 first 1", "11s r log count 3 sum 9 first 2"},
		},
		{
			name: "windows: a sample is taken whatever when short-circuits",
			rules: `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 1m}
    when: payload > 100 && windows.w.count > 0
    actions: [{log: "avg {{ windows.w.avg }} of {{ windows.w.count }}"}]
`,
			script: []string{"0 p=10", "1 p=20", "2 p=300"},
			want:   []string{"2s r log avg 110 of 3"},
		},
		{
			name: "windows: text, NaN and failing values are not samples",
			rules: `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload.v, over: 1m}
    actions: [{log: "{{ windows.w.count }} {{ windows.w.max ?? 'none' }}"}]
`,
			script: []string{"0 p=off", `1 p={"v":"x"}`, `2 p={"v":2}`, `3 p={"w":1}`},
			want:   []string{"0s r log 0 none", "1s r log 0 none", "2s r log 1 2", "3s r log 1 2"},
		},
		{
			name: "windows: the washer is done when the average power stays low for a while",
			rules: `
rules:
  - name: washer
    topic: plug/washer
    windows:
      power: {value: payload.power, over: 10m}
    when: windows.power.span >= duration("5m") && windows.power.max < 3
    on_clear: [{log: "washer started"}]
    actions: [{log: "washer done, avg {{ round(windows.power.avg * 100) / 100 }} W"}]
`,
			script: []string{`0 plug/washer={"power":200}`, `300 plug/washer={"power":2}`, `600 plug/washer={"power":1}`,
				`700 plug/washer={"power":2}`, `900 plug/washer={"power":2}`, `1000 plug/washer={"power":150}`},
			want: []string{"700s washer log washer done, avg 1.67 W", "1000s washer log washer started"},
		},
		{
			name: "windows expire on timer evaluations too",
			rules: `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 5s}
    for: 10s
    actions: [{log: "{{ windows.w.count }} samples at the deadline"}]
`,
			script: []string{"0 p=1", "2 p=2", "12"},
			want:   []string{"10s r log 0 samples at the deadline"},
		},
		{
			name: "max_samples keeps the newest",
			rules: `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 1h, max_samples: 2}
    actions: [{log: "{{ windows.w.first }}..{{ windows.w.last }} rate {{ windows.w.rate }}"}]
`,
			script: []string{"0 p=1", "10 p=2", "20 p=4"},
			want:   []string{"0s r log 1..1 rate 0", "10s r log 1..2 rate 0.1", "20s r log 2..4 rate 0.2"},
		},
		{
			name: "fired: a deadband",
			rules: `
rules:
  - name: deadband
    topic: temp
    when: fired == nil || abs(payload - fired.payload) >= 0.5
    actions: [{log: "report {{ payload }} (last {{ fired?.payload ?? 'none' }})"}]
`,
			script: []string{"0 temp=20", "1 temp=20.3", "2 temp=20.6", "3 temp=20.2", "4 temp=19.9"},
			want:   []string{"0s deadband log report 20 (last none)", "2s deadband log report 20.6 (last 20)", "4s deadband log report 19.9 (last 20.6)"},
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

// TestWorldUncoveredArgument: a dynamic argument no remembered filter
// covers is a condition error that names the topic and the fix.
func TestWorldUncoveredArgument(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: motion/{room}
    when: state("room/" + room + "/mode") != nil
    actions: [{log: x}]
`)
	h.run("0 motion/k=1")
	tr := h.e.Trace("r")
	if len(tr) != 1 || tr[0].Outcome != OutcomeError {
		t.Fatalf("trace %+v, want one error", tr)
	}
	for _, want := range []string{`state("room/k/mode")`, "remember:"} {
		if !strings.Contains(tr[0].Err, want) {
			t.Errorf("error %q, want it to hold %q", tr[0].Err, want)
		}
	}
	if n := h.e.Counters().Rule("r").ConditionErrors.Load(); n != 1 {
		t.Errorf("condition errors %d, want 1", n)
	}
}

// TestWorldTraces: traces show the state() lookups and windows an
// evaluation used.
func TestWorldTraces(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 1m}
    when: state("home/mode")?.payload == "night" && len(states("door/#")) == 0
    actions: [{log: x}]
`)
	h.run("0 home/mode=night", "1 p=5")
	tr := h.e.Trace("r")
	if len(tr) != 1 {
		t.Fatalf("trace %+v", tr)
	}
	var lookups []string
	for _, l := range tr[0].Lookups {
		lookups = append(lookups, l.String())
	}
	want := []string{`state("home/mode") = night`, `states("door/#") = 0 topics`}
	if strings.Join(lookups, "|") != strings.Join(want, "|") {
		t.Errorf("lookups %q, want %q", lookups, want)
	}
	if len(tr[0].Windows) != 1 || tr[0].Windows[0].String() != "w: count 1, first 5, last 5, min 5, max 5, avg 5, delta 0, rate 0/s, span 0s" {
		t.Errorf("windows %v", tr[0].Windows)
	}
}

// TestWorldDeleteAndEviction: an empty retained message deletes a topic;
// beyond --max-remembered the least recently updated goes, counted.
func TestWorldDeleteAndEviction(t *testing.T) {
	h := newHarnessWith(t, Config{MaxRemembered: 3}, `
remember: ["#"]
rules:
  - name: r
    topic: check
    actions: [{log: "{{ map(states('s/#'), .topic) }}"}]
`)
	h.run("0 s/a=1", "1 s/b=1", "2 s/c=1", "3 s/a=2")
	h.e.Handle(Message{Topic: "s/b", Retained: true, Time: h.clock.Now()}) // delete
	h.run("4 s/d=1", "5 s/e=1")
	if topics, evicted := h.e.Counters().Remembered(); topics != 3 || evicted != 1 {
		t.Errorf("remembered %d, evicted %d; want 3 and 1", topics, evicted)
	}
	// check itself is remembered too (#): the least recent, s/c, went.
	got := h.run("6 check=1")
	if want := `6s r log ["s/d","s/e"]`; len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWorldFloodStaysBounded: a flood of distinct topics under a
// remembered # evicts, counts, and never holds more than the bound.
func TestWorldFloodStaysBounded(t *testing.T) {
	h := newHarnessWith(t, Config{MaxRemembered: 100}, `
remember: ["flood/#"]
rules: [{name: r, topic: x, actions: [{log: x}]}]
`)
	for i := range 10_000 {
		h.e.Handle(Message{Topic: "flood/" + strconv.Itoa(i), Payload: []byte("x"), Time: t0})
		if n, _ := h.e.Counters().Remembered(); n > 100 {
			t.Fatalf("%d topics remembered after %d, want at most 100", n, i)
		}
	}
	if n, ev := h.e.Counters().Remembered(); n != 100 || ev != 9_900 {
		t.Errorf("remembered %d, evicted %d; want 100 and 9900", n, ev)
	}
	if got := len(h.e.worlds[""].entries); got != 100 {
		t.Errorf("%d entries in the map", got)
	}
}

// TestWorldReloadForgetsUncovered: a reload that stops remembering a topic
// forgets it.
func TestWorldReloadForgetsUncovered(t *testing.T) {
	h := newHarness(t, `
remember: [a/#, b/#]
rules: [{name: r, topic: x, actions: [{log: x}]}]
`)
	h.run("0 a/1=x", "0 b/1=y")
	h.load(`
remember: [a/#]
rules: [{name: r, topic: x, actions: [{log: x}]}]
`)
	if n, _ := h.e.Counters().Remembered(); n != 1 {
		t.Errorf("%d remembered after the reload, want 1 (a/1)", n)
	}
	if got := h.e.RememberedTopics("#", 0); len(got) != 1 || got[0].Topic != "a/1" {
		t.Errorf("remembered %+v", got)
	}
}

// memStore is a StateStore in memory.
type memStore struct {
	recs  map[KeyRef]KeyRecord
	world map[string]RememberedMessage
	meta  map[string][]byte
	at    time.Time
}

func (s *memStore) LoadMeta(name string) ([]byte, error) { return s.meta[name], nil }

func (s *memStore) SaveMeta(name string, v []byte) error {
	if s.meta == nil {
		s.meta = map[string][]byte{}
	}
	s.meta[name] = v
	return nil
}

func newMemStore() *memStore {
	return &memStore{recs: map[KeyRef]KeyRecord{}, world: map[string]RememberedMessage{}}
}

func (s *memStore) Load() ([]KeyRecord, time.Time, error) {
	var out []KeyRecord
	for _, r := range s.recs {
		out = append(out, r)
	}
	return out, s.at, nil
}

func (s *memStore) Save(put []KeyRecord, del []KeyRef, at time.Time) error {
	for _, d := range del {
		delete(s.recs, d)
	}
	for _, p := range put {
		s.recs[p.KeyRef] = p
	}
	s.at = at
	return nil
}

func (s *memStore) LoadWorld() ([]RememberedMessage, error) {
	var out []RememberedMessage
	for _, m := range s.world {
		out = append(out, m)
	}
	return out, nil
}

func (s *memStore) SaveWorld(put []RememberedMessage, del []string) error {
	for _, t := range del {
		delete(s.world, t)
	}
	for _, m := range put {
		s.world[m.Topic] = m
	}
	return nil
}

// TestWorldPersistence: remembered messages (retained or not), windows
// and fired survive a restart through the state store.
func TestWorldPersistence(t *testing.T) {
	src := `
rules:
  - name: r
    topic: p
    windows:
      w: {value: payload, over: 1h}
    when: fired == nil || payload != fired.payload
    actions: [{log: "mode {{ state('home/mode')?.raw }} n {{ windows.w.count }} last fired {{ fired?.raw }}"}]
`
	store := newMemStore()
	h := newHarness(t, src)
	if _, err := h.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	h.run("0 home/mode=night", "1 p=1", "2 p=2")
	h.e.SaveState(store)

	h2 := newHarness(t, src)
	h2.clock.set(t0.Add(3 * time.Second))
	h2.sec = 3
	if _, err := h2.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	got := h2.run("4 p=2", "5 p=3")
	want := []string{"5s r log mode night n 4 last fired 2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after the restart got %q, want %q", got, want)
	}
}

// TestWindowStatsInKeys: the keys view shows a key's window statistics.
func TestWindowStatsInKeys(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: p/{k}
    key: "{{ k }}"
    windows:
      w: {value: payload, over: 1m}
    when: "false"
    actions: [{log: x}]
`)
	h.run("0 p/a=1", "1 p/a=3")
	keys, tracked := h.e.Keys("r", 0)
	if tracked != 1 || len(keys) != 1 {
		t.Fatalf("keys %+v, tracked %d", keys, tracked)
	}
	st := keys[0].Windows["w"]
	if st.Count != 2 || st.Avg != 2.0 || st.Span != time.Second {
		t.Errorf("window stats %+v", st)
	}
}

// TestWindowValueNumbers: only numbers are samples.
func TestWindowValueNumbers(t *testing.T) {
	for _, tc := range []struct {
		v  any
		ok bool
	}{{1.5, true}, {3, true}, {int64(4), true}, {"5", false}, {true, false}, {nil, false}, {math.NaN(), true}} {
		if _, ok := number(tc.v); ok != tc.ok {
			t.Errorf("number(%v) ok = %v, want %v", tc.v, ok, tc.ok)
		}
	}
	w, _ := window.New(time.Minute, 0)
	if w.Add(t0, math.NaN()) || w.Add(t0, math.Inf(1)) {
		t.Error("the window took NaN or Inf")
	}
}
