package dryrun

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/engine"
)

// writeFiles creates files (name → content) under a new temp dir.
func writeFiles(t *testing.T, files map[string]string) string {
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

const (
	ruleA = "rules:\n  - {name: a, topic: a, actions: [{log: from a}]}\n"
	ruleB = "rules:\n  - {name: b, topic: a, actions: [{log: from b}]}\n"
	// testBoth passes when rules a and b are both loaded.
	testBoth = "tests:\n  - name: both\n    messages: [{topic: a}]\n    expect: [{log: from a}, {log: from b}]\n"
	// testA passes when only rule a is loaded.
	testA = "tests:\n  - name: only a\n    messages: [{topic: a}]\n    expect: [{log: from a}]\n"
)

func TestRunTestsRuleSets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string // relative to the dir; none: the dir
		want  string   // the last line
	}{
		{"the rule files under the paths", map[string]string{
			"one/a.yaml": ruleA, "two/b.yaml": ruleB, "one/both_test.yaml": testBoth,
		}, nil, "1 passed, 0 failed"},
		{"rule_files relative to the test file", map[string]string{
			"one/a.yaml": ruleA, "two/b.yaml": ruleB,
			"one/a_test.yaml": "rule_files: [a.yaml]\n" + testA,
		}, nil, "1 passed, 0 failed"},
		{"a test file alone runs against its folder", map[string]string{
			"one/a.yaml": ruleA, "one/a_test.yml": testA, "two/b.yaml": ruleB,
		}, []string{"one/a_test.yml"}, "1 passed, 0 failed"},
		{"dot folders are skipped", map[string]string{
			"a.yaml": ruleA, "a_test.yaml": testA, ".old/b.yaml": ruleB, ".old/x_test.yaml": "broken",
		}, nil, "1 passed, 0 failed"},
		{"a broken test file", map[string]string{
			"a.yaml": ruleA, "a_test.yaml": testA, "b_test.yaml": "tests: {}\n",
		}, nil, "1 passed, 1 failed"},
		{"broken rules fail their tests", map[string]string{
			"a.yaml": "rules:\n  - {name: a, topic: a/#/b, actions: [{log: x}]}\n", "a_test.yaml": testA, "b_test.yaml": testA,
		}, nil, "0 passed, 1 failed"},
		{"no rule files", map[string]string{"a_test.yaml": testA}, nil, "0 passed, 1 failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			args := []string{dir}
			if tc.args != nil {
				args = nil
				for _, a := range tc.args {
					args = append(args, filepath.Join(dir, a))
				}
			}
			var b bytes.Buffer
			sum, err := RunTests(&b, args, SuiteOptions{LookupEnv: env(nil)})
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(b.String())
			lines := strings.Split(out, "\n")
			if last := lines[len(lines)-1]; last != tc.want {
				t.Errorf("last line %q, want %q; report:\n%s", last, tc.want, out)
			}
			if sum.OK() != strings.HasSuffix(tc.want, " 0 failed") {
				t.Errorf("OK = %v for %+v", sum.OK(), sum)
			}
		})
	}
}

func TestRunTestsReportsLoadErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":      "rules:\n  - {name: a, topic: a, when: paylod > 1, actions: [{log: x}]}\n",
		"a_test.yaml": testA,
		"b_test.yaml": "tests:\n  - name: x\n    mesages: []\n",
	})
	var b bytes.Buffer
	if _, err := RunTests(&b, []string{dir}, SuiteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--- ERROR: rules " + dir,
		filepath.Join(dir, "a.yaml") + `:2:31: rule "a": when: unknown name "paylod"`,
		"FAIL  " + filepath.Join(dir, "a_test.yaml") + "  its rules do not load",
		"--- ERROR: test file " + filepath.Join(dir, "b_test.yaml"),
		filepath.Join(dir, "b_test.yaml") + `:3:5: test "x": unknown key "mesages" (did you mean "messages"?)`,
		"2 test or rule files did not load (counted as failed)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRunTestsSelection(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":      ruleA,
		"a_test.yaml": "tests:\n  - {name: one, messages: [{topic: a}], expect: [{log: from a}]}\n  - {name: two, messages: [{topic: a}], expect: []}\n",
	})
	var b bytes.Buffer
	sum, err := RunTests(&b, []string{dir}, SuiteOptions{Run: regexp.MustCompile("^one$")})
	if err != nil || sum.Passed != 1 || sum.Failed != 0 {
		t.Errorf("--run one: %+v, %v\n%s", sum, err, b.String())
	}
	if _, err := RunTests(&b, []string{dir}, SuiteOptions{Run: regexp.MustCompile("three")}); !errors.Is(err, ErrNoCases) {
		t.Errorf("--run three: err = %v, want ErrNoCases", err)
	}
	empty := writeFiles(t, map[string]string{"a.yaml": ruleA})
	if _, err := RunTests(&b, []string{empty}, SuiteOptions{}); !errors.Is(err, ErrNoTests) {
		t.Errorf("no test file: err = %v, want ErrNoTests", err)
	}
	if _, err := RunTests(&b, []string{filepath.Join(empty, "nope")}, SuiteOptions{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing path: err = %v", err)
	}
}

func TestDryRun(t *testing.T) {
	rs := load(t, `
rules:
  - name: hot
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - publish: {topic: "alerts/{{ room }}", payload: "{{ payload.value }}", qos: 1}
      - webhook: {url: "https://hooks.example/x?token=abc", headers: {Authorization: "Bearer s3cret"}, body: "{{ room }}"}
  - name: cold-for
    topic: home/+/temperature
    when: payload.value < 10
    for: 2m
    actions: [{log: {message: "cold {{ topic }}", level: warn}}]
  - name: all
    topic: "#"
    actions: [{log: "{{ topic }}"}]
  - name: only-home
    topic: home/#
    when: payload.value > 100
    actions: [{log: never}]
`)
	var b bytes.Buffer
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m1, _ := ParseMessage(`home/kitchen/temperature={"value": 31}`)
	m2, _ := ParseMessage(`home/cellar/temperature={"value": 5}`)
	m2.QoS, m2.Retained = 1, true
	sum := DryRun(&b, rs, []engine.Message{m1, m2}, DryRunOptions{Now: now, Until: 3 * time.Minute, Explain: true})
	want := `+0s  message home/kitchen/temperature {"value": 31}
    hot        when true   fired
      why: condition true: fired
      publish  alerts/kitchen  qos 1  retain false
               31
      webhook  POST https://hooks.example/x?token=[REDACTED]  timeout 10s  retries 3
               Authorization: [REDACTED]
               kitchen
    cold-for   when false  does not fire
      why: condition false: does not fire
    all        always      fired
      why: condition true: fired
      log      info  home/kitchen/temperature
    only-home  when false  does not fire
      why: condition false: does not fire
+0s  message alerts/kitchen 31  (qos 1, published by hot)
    all  always      fired
      why: condition true: fired
      log      info  alerts/kitchen
+0s  message home/cellar/temperature {"value": 5}  (qos 1, retained)
    hot        when false  does not fire
      why: condition false: does not fire
    cold-for   when true   pending (for)
      why: condition true: pending for, fires at 2026-01-01T12:02:00Z unless a false message comes first
    all        always      fired
      why: condition true: fired
      log      info  home/cellar/temperature
    only-home  when false  does not fire
      why: condition false: does not fire
+2m  timers due
    cold-for  (timer)     fired
      why: fired by its timer
      log      warn  cold home/cellar/temperature

dry run at 2026-01-01T12:00:00Z to +3m, nothing sent: 2 messages (+1 published back by the rules), 9 rules matched, 5 fired, 6 actions
`
	if strings.Contains(b.String(), "s3cret") || strings.Contains(b.String(), "token=abc") {
		t.Errorf("a secret is shown:\n%s", b.String())
	}
	if sum.Messages != 2 || sum.FedBack != 1 || sum.Fired != 5 || sum.Actions != 6 {
		t.Errorf("summary %+v", sum)
	}
	checkLines(t, strings.Split(b.String(), "\n"), strings.Split(want, "\n")...)
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		in, topic, payload, err string
	}{
		{"a/b=1", "a/b", "1", ""},
		{"a/b=", "a/b", "", ""},
		{"a/b=x=y", "a/b", "x=y", ""},
		{"a/b", "", "", "want TOPIC=PAYLOAD"},
		{"=x", "", "", "topic is empty"},
		{"a/+=x", "", "", "wildcard"},
	} {
		m, err := ParseMessage(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMessage(%q) err = %v, want %q", tc.in, err, tc.err)
			}
		case err != nil || m.Topic != tc.topic || string(m.Payload) != tc.payload:
			t.Errorf("ParseMessage(%q) = %q %q %v", tc.in, m.Topic, m.Payload, err)
		}
	}
}

// TestRunTestsNeedNoProductionSecrets: a test file's env: gives ${NAME}
// values to the rules it tests, and a rule file whose variable is not set
// is left out (with a note) instead of failing every test of the folder.
func TestRunTestsNeedNoProductionSecrets(t *testing.T) {
	const hook = `rules:
  - name: hook
    topic: h
    actions: [{webhook: {url: "${MQTT_RULES_TEST_UNSET_HOOK}", body: "{{ raw }}"}}]
`
	dir := writeFiles(t, map[string]string{
		"a.yaml":      ruleA,
		"hook.yaml":   hook,
		"a_test.yaml": testA,
		"hook_test.yaml": `env:
  MQTT_RULES_TEST_UNSET_HOOK: https://hooks.example.com/services/T0/B0/testtoken
tests:
  - name: hook posts
    messages: [{topic: h, payload: hi}]
    expect: [{webhook: {url: "https://hooks.example.com/services/T0/B0/testtoken", body: hi}}]
`,
	})
	var out bytes.Buffer
	sum, err := RunTests(&out, []string{dir}, SuiteOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil || !sum.OK() || sum.Passed != 2 {
		t.Fatalf("sum %+v, err %v:\n%s", sum, err, out.String())
	}
	note := filepath.Join(dir, "hook.yaml") + " is left out of these tests: set the variable, or give it under env: in the test file"
	if !strings.Contains(out.String(), note) {
		t.Errorf("report lacks %q:\n%s", note, out.String())
	}
}

// TestRunTestsBrokersAndProperties: a test case's messages say which
// broker they come from and carry MQTT 5 properties, so a request/response
// rule on another broker is testable without its config.
func TestRunTestsBrokersAndProperties(t *testing.T) {
	rules := `rules:
  - name: answer
    broker: cloud
    topic: req/time
    when: properties.response_topic != ""
    actions:
      - publish:
          topic: "{{ properties.response_topic }}"
          payload: "{{ properties.user.who }} asked"
          properties: {correlation_data: "{{ properties.correlation_data }}"}
`
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"from its broker", `{topic: req/time, broker: cloud, properties: {response_topic: resp/1, correlation_data: c-7, user: {who: ann}}}`, "1 passed, 0 failed"},
		{"from the default broker", `{topic: req/time, properties: {response_topic: resp/1, correlation_data: c-7, user: {who: ann}}}`, "0 passed, 1 failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"r.yaml": rules, "r_test.yaml": `tests:
  - name: answers
    messages: [` + tc.msg + `]
    expect:
      - publish: {topic: resp/1, payload: ann asked, broker: cloud, properties: {correlation_data: c-7}}
`})
			var b bytes.Buffer
			if _, err := RunTests(&b, []string{dir}, SuiteOptions{LookupEnv: env(nil)}); err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(b.String())
			if lines := strings.Split(out, "\n"); lines[len(lines)-1] != tc.want {
				t.Errorf("report:\n%s\nwant last line %q", out, tc.want)
			}
		})
	}
}

// TestParseMessageProperties pins the errors of a message's properties.
func TestParseMessageProperties(t *testing.T) {
	_, err := ParseTestFile("t_test.yaml", []byte(`tests:
  - name: x
    messages: [{topic: a, properties: {content: x, message_expiry: -1, response_topic: "a/+"}}]
`), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`unknown key "content" (properties are user, content_type,`, `message_expiry`, `response_topic`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
