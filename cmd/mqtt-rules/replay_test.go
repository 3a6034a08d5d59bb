package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/dryrun"
)

const doorRules = `rules:
  - name: door-open
    topic: door/{d}
    when: payload == "open"
    for: 5m
    actions: [{publish: {topic: "alert/{{ d }}", payload: "{{ d }} open", qos: 1}}]
    on_clear: [{log: "{{ d }} closed"}]
  - name: battery
    topic: door/{d}/battery
    when: float(payload) < 10
    actions: [{log: {message: "{{ d }} battery {{ payload }} %", level: warn}}]
`

// writeCapture writes records as a capture file and returns its path.
func writeCapture(t *testing.T, recs ...dryrun.Record) string {
	t.Helper()
	var b []byte
	for _, r := range recs {
		b = r.AppendJSON(b)
	}
	p := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplay(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	capture := writeCapture(t,
		dryrun.Record{Time: t0, Topic: "door/garage", Payload: []byte("open"), QoS: 1},
		dryrun.Record{Time: t0.Add(2 * time.Minute), Topic: "door/back", Payload: []byte("open"), QoS: 1},
		dryrun.Record{Time: t0.Add(3 * time.Minute), Topic: "door/back/battery", Payload: []byte("7")},
		dryrun.Record{Time: t0.Add(9 * time.Minute), Topic: "door/garage", Payload: []byte("closed"), QoS: 1},
		dryrun.Record{Time: t0.Add(10 * time.Minute), Topic: "door/back", Payload: []byte{0xff}}, // binary: base64 in the file
	)
	baseline := writeTree(t, map[string]string{"doors.yaml": doorRules})
	candidate := writeTree(t, map[string]string{"doors.yaml": strings.NewReplacer("for: 5m", "for: 8m", "< 10", "< 5").Replace(doorRules)})

	for _, tc := range []struct {
		name       string
		args       []string
		out, inErr string
	}{
		{"what fires", []string{"replay", capture, "--rules", baseline}, `2026-11-25T21:03:00.000Z  battery  log warn: back battery 7 %
2026-11-25T21:05:00.000Z  door-open  publish alert/garage qos=1 retain=false payload=garage open
2026-11-25T21:07:00.000Z  door-open  publish alert/back qos=1 retain=false payload=back open
2026-11-25T21:09:00.000Z  door-open  on_clear: log info: garage closed
2026-11-25T21:10:00.000Z  door-open  on_clear: log info: back closed
`, "replayed 5 messages from 2026-11-25T21:00:00.000Z to 2026-11-25T21:10:00.000Z, clock stopped at 2026-11-25T21:10:00.000Z: 5 firings\n"},
		{"candidate against baseline", []string{"replay", "--rules", candidate, capture, "--against", baseline, "--until", "1h"}, `- 2026-11-25T21:03:00.000Z  battery  log warn: back battery 7 %
- 2026-11-25T21:05:00.000Z  door-open  publish alert/garage qos=1 retain=false payload=garage open
- 2026-11-25T21:07:00.000Z  door-open  publish alert/back qos=1 retain=false payload=back open
+ 2026-11-25T21:08:00.000Z  door-open  publish alert/garage qos=1 retain=false payload=garage open
+ 2026-11-25T21:10:00.000Z  door-open  publish alert/back qos=1 retain=false payload=back open
`, "candidate 4 firings, baseline 5 firings, 5 differences\n"},
		{"no difference", []string{"replay", capture, "--rules", baseline, "--against", baseline}, "no difference\n", "0 differences"},
		{"until a time", []string{"replay", capture, "--rules", candidate, "--until", "2026-11-25T21:00:30Z"}, `2026-11-25T21:08:00.000Z  door-open  publish alert/garage qos=1 retain=false payload=garage open
2026-11-25T21:09:00.000Z  door-open  on_clear: log info: garage closed
2026-11-25T21:10:00.000Z  door-open  publish alert/back qos=1 retain=false payload=back open
2026-11-25T21:10:00.000Z  door-open  on_clear: log info: back closed
`, "4 firings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if out != tc.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.out)
			}
			if !strings.Contains(errs, tc.inErr) {
				t.Errorf("stderr %q, want it to contain %q", errs, tc.inErr)
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	rules := writeTree(t, map[string]string{"doors.yaml": doorRules})
	badRules := writeTree(t, map[string]string{"bad.yaml": "rules: [{name: x}]\n"})
	good := writeCapture(t, dryrun.Record{Time: time.Now(), Topic: "door/a", Payload: []byte("open")})
	broken := filepath.Join(t.TempDir(), "broken.jsonl")
	if err := os.WriteFile(broken, []byte(`{"time":"2026-11-25T21:00:00Z","topic":"a"}`+"\n"+`{"topic":"a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"replay", "--rules", rules}, exitUsage, "name one capture file"},
		{[]string{"replay", good, good, "--rules", rules}, exitUsage, "name one capture file"},
		{[]string{"replay", good, "--rules", rules, "--until", "later"}, exitUsage, `--until "later"`},
		{[]string{"replay", good, "--rules", badRules}, exitInvalid, `rule "x": topic: missing`},
		{[]string{"replay", good, "--rules", rules, "--against", badRules}, exitInvalid, `rule "x": topic: missing`},
		{[]string{"replay", filepath.Join(t.TempDir(), "nope.jsonl"), "--rules", rules}, exitInvalid, "nope.jsonl"},
		{[]string{"replay", broken, "--rules", rules}, exitInvalid, broken + ":2: time missing"},
	} {
		code, _, errs := runCLI(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("mqtt-rules %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
}
