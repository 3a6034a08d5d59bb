package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (name → content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTestExamples runs every example's _test.yaml, as CI does.
func TestTestExamples(t *testing.T) {
	code, out, errs := runCLI(t, context.Background(), "test", "../../examples")
	if code != exitOK {
		t.Fatalf("test examples: exit %d\n%s%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " passed, 0 failed") {
		t.Errorf("last line %q", last)
	}
	// Every example rule file has its tests next to it.
	files, err := filepath.Glob("../../examples/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") {
			continue
		}
		test := strings.TrimSuffix(f, ".yaml") + "_test.yaml"
		if _, err := os.Stat(test); err != nil {
			t.Errorf("%s has no %s", f, filepath.Base(test))
		} else if !strings.Contains(out, "ok    "+filepath.Join("../../examples", filepath.Base(filepath.Dir(f)), filepath.Base(test))) {
			t.Errorf("%s did not pass:\n%s", test, out)
		}
	}
}

const kitchenRules = `rules:
  - name: kitchen-too-hot
    topic: home/{room}/temperature
    when: payload.value > 30
    for: 1m
    actions:
      - publish:
          topic: "alerts/{{ room }}/hot"
          payload: '{"room":"{{ room }}","value":{{ payload.value }}}'
          qos: 1
      - log: "{{ room }} is hot"
    on_clear:
      - log: "{{ room }} back to normal"
`

// TestTestWrongExpectationFails proves a wrong expectation fails with a
// diff a newcomer can read, and exit 1.
func TestTestWrongExpectationFails(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"home.yaml": kitchenRules,
		"home_test.yaml": `tests:
  - name: right
    messages:
      - {topic: home/kitchen/temperature, payload: '{"value": 31}'}
      - {topic: home/kitchen/temperature, payload: '{"value": 25}', at: 2m}
    expect:
      - {rule: kitchen-too-hot, at: 1m, publish: {topic: alerts/kitchen/hot, payload: '{"room":"kitchen","value":31}', qos: 1}}
      - {rule: kitchen-too-hot, at: 1m, log: kitchen is hot}
      - {rule: kitchen-too-hot, at: 2m, on_clear: true, log: kitchen back to normal}
  - name: wrong
    messages:
      - {topic: home/kitchen/temperature, payload: '{"value": 31}'}
      - {topic: home/kitchen/temperature, payload: '{"value": 25}', at: 2m}
    expect:
      - {rule: kitchen-too-hot, at: 30s, publish: {topic: alerts/kitchen/hot, payload: {room: kitchen, value: 32}}}
      - {rule: kitchen-too-hot, log: kitchen is hot}
      - {rule: kitchen-too-hot, log: kitchen is cold}
`,
	})
	code, out, errs := runCLI(t, context.Background(), "test", dir)
	if code != exitInvalid {
		t.Errorf("exit = %d, want %d (a case failed)", code, exitInvalid)
	}
	if errs != "" {
		t.Errorf("stderr = %q", errs)
	}
	file := filepath.Join(dir, "home_test.yaml")
	want := `--- FAIL: wrong (` + file + `:10)
    ✗ at 1m  kitchen-too-hot  publish alerts/kitchen/hot qos=1 retain=false payload={"room":"kitchen","value":31}
             at       expected: 30s
                      got:      1m
             payload  expected: {"room":"kitchen","value":32}  (compared as JSON)
                      got:      {"room":"kitchen","value":31}
             (expect at line 15)
    ✓ at 1m  kitchen-too-hot  log info: kitchen is hot
    ✗ at 2m  kitchen-too-hot  on_clear: log info: kitchen back to normal
             message  expected: kitchen is cold
                      got:      kitchen back to normal
             (expect at line 17)
    (mqtt-rules test -v shows every message and why each rule did or did not fire)
FAIL  ` + file + `  1 of 2 cases failed
1 passed, 1 failed
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

func TestTestUnexpectedAndMissing(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"home.yaml": kitchenRules,
		"home_test.yaml": `tests:
  - name: nothing expected
    messages: [{topic: home/kitchen/temperature, payload: '{"value": 31}'}]
    until: 1m
    expect: []
  - name: too much expected
    messages: [{topic: home/kitchen/temperature, payload: '{"value": 20}'}]
    expect: [{rule: kitchen-too-hot, webhook: {url: "https://h.example/?token=s3cret"}}]
`,
	})
	code, out, _ := runCLI(t, context.Background(), "test", dir)
	if code != exitInvalid {
		t.Errorf("exit = %d, want %d", code, exitInvalid)
	}
	for _, want := range []string{
		`    + at 1m  kitchen-too-hot  publish alerts/kitchen/hot qos=1 retain=false payload={"room":"kitchen","value":31}   (unexpected: not in expect)`,
		`    + at 1m  kitchen-too-hot  log info: kitchen is hot   (unexpected: not in expect)`,
		`    - missing: kitchen-too-hot webhook url=https://h.example/?token=[REDACTED]   (expect at line 8)`,
		"0 passed, 2 failed",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("stdout lacks\n%s\n in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("a secret is shown:\n%s", out)
	}
}

func TestTestVerbose(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"home.yaml":      kitchenRules,
		"home_test.yaml": "tests:\n  - name: hot\n    messages: [{topic: home/kitchen/temperature, payload: '{\"value\": 31}'}]\n    until: 1m\n    expect: [{publish: {topic: alerts/kitchen/hot}}, {log: kitchen is hot}]\n",
	})
	code, out, _ := runCLI(t, context.Background(), "test", "-v", dir)
	want := `=== RUN   hot (` + filepath.Join(dir, "home_test.yaml") + `:2)
    +0s  message home/kitchen/temperature {"value": 31}
        kitchen-too-hot  when true   pending (for)
          why: condition true: pending for, fires at 2026-01-01T12:01:00Z unless a false message comes first
    +1m  timers due
        kitchen-too-hot  (timer)     fired
          why: fired by its timer
          publish  alerts/kitchen/hot  qos 1  retain false
                   {"room":"kitchen","value":31}
          log      info  kitchen is hot
--- PASS: hot (2 actions)
`
	if code != exitOK || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, stdout:\n%s\nwant it to start with:\n%s", code, out, want)
	}
}

func TestTestMessage(t *testing.T) {
	t.Setenv("HOOK_TOKEN", "s3cret-token")
	dir := writeTree(t, map[string]string{"home.yaml": kitchenRules + `  - name: notify
    topic: home/+/temperature
    when: payload.value > 30
    actions:
      - webhook:
          url: "https://hooks.example/notify?token=${HOOK_TOKEN}"
          headers: {Authorization: "Bearer ${HOOK_TOKEN}", X-Room: "{{ topic }}"}
          body: "{{ toJSON(payload) }}"
`})
	code, out, errs := runCLI(t, context.Background(), "test", dir,
		"--message", `home/kitchen/temperature={"value": 31}`, "--message", "office/lamp=ON",
		"--now", "2026-01-01T12:00:00Z", "--explain", "--qos", "1")
	want := `message home/kitchen/temperature {"value": 31}  (qos 1)
    kitchen-too-hot  when true   pending (for)
      why: condition true: pending for, fires at 2026-01-01T12:01:00Z unless a false message comes first
    notify           when true   fired
      why: condition true: fired
      webhook  POST https://hooks.example/notify?token=[REDACTED]  timeout 10s  retries 3
               Authorization: [REDACTED]
               X-Room: home/kitchen/temperature
               {"value":31}
message office/lamp ON  (qos 1)
    no rule matches this topic

dry run at 2026-01-01T12:00:00Z, nothing sent: 2 messages, 2 rules matched, 1 fired, 1 action
`
	if code != exitOK || out != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", code, out, want, errs)
	}
	if strings.Contains(out+errs, "s3cret") {
		t.Error("a secret is shown")
	}

	// Without --explain: no why lines; --until shows the timer firing.
	code, out, _ = runCLI(t, context.Background(), "test", dir, "--message", `home/kitchen/temperature={"value": 31}`,
		"--now", "2026-01-01T12:00:00Z", "--until", "90s", "--retain")
	want = `+0s  message home/kitchen/temperature {"value": 31}  (retained)
    kitchen-too-hot  when true   pending (for)
    notify           when true   fired
      webhook  POST https://hooks.example/notify?token=[REDACTED]  timeout 10s  retries 3
               Authorization: [REDACTED]
               X-Room: home/kitchen/temperature
               {"value":31}
+1m  timers due
    kitchen-too-hot  (timer)     fired
      publish  alerts/kitchen/hot  qos 1  retain false
               {"room":"kitchen","value":31}
      log      info  kitchen is hot

dry run at 2026-01-01T12:00:00Z to +1m30s, nothing sent: 1 message, 2 rules matched, 2 fired, 3 actions
`
	if code != exitOK || out != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestTestExitCodes(t *testing.T) {
	rules := writeTree(t, map[string]string{"home.yaml": kitchenRules})
	bad := writeTree(t, map[string]string{"bad.yaml": "rules:\n  - {name: x, topic: a, when: paylod > 1, actions: [{log: x}]}\n", "x_test.yaml": "tests: []\n"})
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"test"}, exitUsage, "name at least one rule file or directory"},
		{[]string{"test", rules}, exitUsage, "no rule test files (*_test.yaml) under " + rules},
		{[]string{"test", rules, "--run", "("}, exitUsage, "--run: error parsing regexp"},
		{[]string{"test", rules, "--message", "no-equals-sign"}, exitUsage, "want TOPIC=PAYLOAD"},
		{[]string{"test", rules, "--message", "a/#=x"}, exitUsage, "wildcard"},
		{[]string{"test", rules, "--message", "a=x", "--qos", "3"}, exitUsage, "--qos 3"},
		{[]string{"test", rules, "--message", "a=x", "--now", "noon"}, exitUsage, `--now "noon"`},
		{[]string{"test", rules, "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"test", "-h"}, exitOK, "Usage: mqtt-rules test PATH..."},
		{[]string{"test", bad, "--message", "a=x"}, exitInvalid, `when: unknown name "paylod"`},
		{[]string{"test", filepath.Join(rules, "nope"), "--message", "a=x"}, exitInvalid, "nope"},
		{[]string{"test", filepath.Join(rules, "nope")}, exitInvalid, "nope"},
		{[]string{"test", bad}, exitInvalid, ""},
		{[]string{"test", t.TempDir(), "--message", "a=x"}, exitInvalid, "no rule files"},
	} {
		code, _, errs := runCLI(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("mqtt-rules %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
}
