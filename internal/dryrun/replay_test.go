package dryrun

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

func TestRecordJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 21, 0, 0, 120000000, time.UTC)
	for _, tc := range []struct {
		name string
		rec  Record
		want string
	}{
		{"text", Record{Time: at, Topic: "a/b", Payload: []byte(`{"v":"°C"}`), QoS: 1},
			`{"time":"2026-11-25T21:00:00.120000000Z","topic":"a/b","payload":"{\"v\":\"°C\"}","qos":1,"retain":false}`},
		{"empty", Record{Time: at, Topic: "a", Retain: true},
			`{"time":"2026-11-25T21:00:00.120000000Z","topic":"a","payload":"","qos":0,"retain":true}`},
		{"binary", Record{Time: at, Topic: "a", Payload: []byte{0xff, 0x00, 0x10}, QoS: 2},
			`{"time":"2026-11-25T21:00:00.120000000Z","topic":"a","payload":"/wAQ","encoding":"base64","qos":2,"retain":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.rec.AppendJSON(nil))
			if got != tc.want+"\n" {
				t.Errorf("AppendJSON =\n  %s\nwant\n  %s", got, tc.want)
			}
			back, err := NewCaptureReader(strings.NewReader(got), "c").Next()
			if err != nil {
				t.Fatal(err)
			}
			if !back.Time.Equal(tc.rec.Time) || back.Topic != tc.rec.Topic || !bytes.Equal(back.Payload, tc.rec.Payload) ||
				back.QoS != tc.rec.QoS || back.Retain != tc.rec.Retain {
				t.Errorf("read back %+v, want %+v", back, tc.rec)
			}
		})
	}
}

func TestCaptureReaderErrors(t *testing.T) {
	const good = `{"time":"2026-11-25T21:00:00Z","topic":"a","payload":"x"}` + "\n"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"not json", "hello", "cap.jsonl:3: not a capture record"},
		{"no time", `{"topic":"a"}`, "cap.jsonl:3: time missing"},
		{"bad time", `{"time":"yesterday","topic":"a"}`, `cap.jsonl:3: time "yesterday": not RFC 3339`},
		{"no topic", `{"time":"2026-11-25T21:00:00Z"}`, "cap.jsonl:3: topic missing"},
		{"bad qos", `{"time":"2026-11-25T21:00:00Z","topic":"a","qos":3}`, "cap.jsonl:3: qos 3: want 0, 1 or 2"},
		{"bad base64", `{"time":"2026-11-25T21:00:00Z","topic":"a","payload":"%%","encoding":"base64"}`, "cap.jsonl:3: payload: not base64"},
		{"bad encoding", `{"time":"2026-11-25T21:00:00Z","topic":"a","encoding":"hex"}`, `cap.jsonl:3: encoding "hex": want base64 or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewCaptureReader(strings.NewReader(good+"\n"+tc.line+"\n"), "cap.jsonl")
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
			_, err := r.Next()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q…", err, tc.want)
			}
		})
	}
	// Unknown fields are ignored; no final newline is fine.
	r := NewCaptureReader(strings.NewReader(`{"time":"2026-11-25T21:00:00Z","topic":"a","client":"x"}`), "c")
	if rec, err := r.Next(); err != nil || rec.Topic != "a" {
		t.Errorf("Next = %+v, %v", rec, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last record: %v, want EOF", err)
	}
}

func capture(recs ...Record) *CaptureReader {
	var b []byte
	for _, r := range recs {
		b = r.AppendJSON(b)
	}
	return NewCaptureReader(bytes.NewReader(b), "cap.jsonl")
}

func TestReplay(t *testing.T) {
	const base = `
rules:
  - name: open
    topic: door/{d}
    when: payload == "open"
    for: 5m
    actions: [{log: "{{ d }} open {{ now.Format('15:04') }}"}]
    on_clear: [{log: "{{ d }} closed"}]
`
	cand := strings.Replace(base, "for: 5m", "for: 2m", 1)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	recs := []Record{
		{Time: at(0), Topic: "door/a", Payload: []byte("open")},
		{Time: at(3 * time.Minute), Topic: "door/b", Payload: []byte("open")},
		{Time: at(time.Minute), Topic: "door/b", Payload: []byte("open")}, // the clock stepped back
		{Time: at(10 * time.Minute), Topic: "door/a", Payload: []byte("closed")},
	}
	for _, tc := range []struct {
		name string
		opts ReplayOptions
		want []string
		end  time.Duration
	}{
		{"stops at the last message", ReplayOptions{}, []string{
			"0 2026-01-01T12:05:00.000Z  open  log info: a open 12:00",
			"0 2026-01-01T12:08:00.000Z  open  log info: b open 12:03",
			"0 2026-01-01T12:10:00.000Z  open  on_clear: log info: a closed",
		}, 10 * time.Minute},
		{"until before the last", ReplayOptions{Until: at(time.Minute)}, []string{
			"0 2026-01-01T12:05:00.000Z  open  log info: a open 12:00",
			"0 2026-01-01T12:08:00.000Z  open  log info: b open 12:03",
			"0 2026-01-01T12:10:00.000Z  open  on_clear: log info: a closed",
		}, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			st, err := Replay(capture(recs...), []*rules.RuleSet{load(t, base)}, tc.opts, func(set int, f Firing) {
				got = append(got, string(rune('0'+set))+" "+f.String())
			})
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, got, tc.want...)
			want := ReplayStats{Messages: 4, First: at(0), Last: at(10 * time.Minute), End: at(tc.end), Reordered: 1}
			if !reflect.DeepEqual(st, want) {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
		})
	}

	// Two sets in lockstep, the clock running on after the last message.
	var firings [2][]Firing
	_, err := Replay(capture(recs[:2]...), []*rules.RuleSet{load(t, cand), load(t, base)}, ReplayOptions{After: time.Hour},
		func(set int, f Firing) { firings[set] = append(firings[set], f) })
	if err != nil {
		t.Fatal(err)
	}
	var diff []string
	for _, d := range Diff(firings[1], firings[0]) {
		diff = append(diff, d.String())
	}
	checkLines(t, diff,
		"+ 2026-01-01T12:02:00.000Z  open  log info: a open 12:00", // now: the message's time
		"- 2026-01-01T12:05:00.000Z  open  log info: a open 12:00",
		"+ 2026-01-01T12:05:00.000Z  open  log info: b open 12:03",
		"- 2026-01-01T12:08:00.000Z  open  log info: b open 12:03",
	)

	if st, err := Replay(capture(), []*rules.RuleSet{load(t, base)}, ReplayOptions{}, nil); err != nil || st.Messages != 0 {
		t.Errorf("empty capture: %+v, %v", st, err)
	}
}

func TestDiff(t *testing.T) {
	f := func(sec int, rule string) Firing {
		return Firing{Time: t0.Add(time.Duration(sec) * time.Second), Rule: rule}
	}
	for _, tc := range []struct {
		name       string
		base, cand []Firing
		want       string
	}{
		{"same", []Firing{f(1, "a"), f(2, "b")}, []Firing{f(1, "a"), f(2, "b")}, ""},
		{"both empty", nil, nil, ""},
		{"only candidate", nil, []Firing{f(1, "a")}, "+a@1"},
		{"only baseline", []Firing{f(1, "a")}, nil, "-a@1"},
		{"same instant, order ignored", []Firing{f(1, "a"), f(1, "b")}, []Firing{f(1, "b"), f(1, "a")}, ""},
		{"twice in one, once in the other", []Firing{f(1, "a"), f(1, "a")}, []Firing{f(1, "a")}, "-a@1"},
		{"interleaved", []Firing{f(1, "a"), f(3, "c")}, []Firing{f(2, "b"), f(3, "c"), f(4, "d")}, "-a@1 +b@2 +d@4"},
		{"moved", []Firing{f(5, "a")}, []Firing{f(2, "a")}, "+a@2 -a@5"},
		{"same instant, baseline first", []Firing{f(1, "a")}, []Firing{f(1, "b")}, "-a@1 +b@1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Diff(tc.base, tc.cand) {
				got = append(got, string(d.Sign)+d.Firing.Rule+"@"+FormatDuration(d.Firing.Time.Sub(t0))[:1])
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("Diff = %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
