package dryrun

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseTestFile(t *testing.T) {
	src := `
x-hot: &hot {topic: home/kitchen/temperature, payload: {value: 31, unit: "°C", ok: true, tags: [a, 1.5]}}
rule_files: [rules.yaml, ../shared]
tests:
  - name: first
    start: 2026-03-01T23:00:00+01:00
    messages:
      - *hot
      - {topic: a/b, payload: 21.5, at: 30s, qos: 1, retain: true}
      - {topic: a/b}                     # at: as the message before
    until: 5m
    expect:
      - rule: r
        at: 30s
        on_clear: false
        publish: {topic: "alerts/${ROOM}", payload: '{"x":1}', qos: 2, retain: yes}
      - {webhook: {method: post, url: "${URL:-http://h/}", headers: {Authorization: Bearer t}, body: {a: [1, 2]}}}
      - {rule: r, log: hello}
      - {log: {message: hi, level: WARN}}
      - {publish: }
  - name: second
    messages: [{topic: t, payload: x, at: 1m}]
`
	tf, err := ParseTestFile("dir/t_test.yaml", []byte(src), env(map[string]string{"ROOM": "kitchen"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join("dir", "rules.yaml"), "shared"}; !reflect.DeepEqual(tf.RuleFiles, want) {
		t.Errorf("RuleFiles = %q, want %q", tf.RuleFiles, want)
	}
	if len(tf.Cases) != 2 {
		t.Fatalf("%d cases, want 2", len(tf.Cases))
	}
	c := tf.Cases[0]
	if c.Name != "first" || c.Line != 5 || c.Until != 5*time.Minute || c.Start.Hour() != 23 {
		t.Errorf("case = %q line %d until %v start %v", c.Name, c.Line, c.Until, c.Start)
	}
	wantMsgs := []Message{
		{Line: 8, Topic: "home/kitchen/temperature", Payload: []byte(`{"value":31,"unit":"°C","ok":true,"tags":["a",1.5]}`)},
		{Line: 9, Topic: "a/b", Payload: []byte("21.5"), At: 30 * time.Second, QoS: 1, Retain: true},
		{Line: 10, Topic: "a/b", At: 30 * time.Second},
	}
	for i := range wantMsgs {
		if i == 0 {
			wantMsgs[0].Line = c.Messages[0].Line // the alias points at the anchor's line
		}
		if !reflect.DeepEqual(c.Messages[i], wantMsgs[i]) {
			t.Errorf("message %d = %+v (payload %s), want %+v (payload %s)", i, c.Messages[i], c.Messages[i].Payload, wantMsgs[i], wantMsgs[i].Payload)
		}
	}
	if len(c.Expect) != 5 {
		t.Fatalf("%d expectations, want 5", len(c.Expect))
	}
	// fields renders an expectation's fields as name=value (json: for
	// values compared as JSON), sub-fields in brackets.
	var fields func(fs []ExpectedField) string
	fields = func(fs []ExpectedField) string {
		var parts []string
		for _, f := range fs {
			p := f.Name + "=" + f.Value.Text
			if f.Value.IsJSON {
				p = f.Name + "=json:" + f.Value.Text
			}
			if len(f.Sub) > 0 {
				p += "[" + fields(f.Sub) + "]"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " ")
	}
	e := c.Expect[0]
	if e.Rule != "r" || *e.At != 30*time.Second || *e.OnClear || e.Kind != actions.KindPublish ||
		fields(e.Fields) != `topic=alerts/kitchen payload={"x":1} qos=2 retain=yes` {
		t.Errorf("publish expectation = %+v: %s", e, fields(e.Fields))
	}
	e = c.Expect[1]
	if e.Kind != actions.KindWebhook ||
		fields(e.Fields) != `method=post url=http://h/ headers=json:{"Authorization":"Bearer t"}[headers.Authorization=Bearer t] body=json:{"a":[1,2]}[body.a=json:[1,2]]` {
		t.Errorf("webhook expectation = %+v: %s", e, fields(e.Fields))
	}
	if e := c.Expect[2]; e.Kind != actions.KindLog || fields(e.Fields) != "message=hello" {
		t.Errorf("log expectation = %+v", e)
	}
	if e := c.Expect[3]; fields(e.Fields) != "message=hi level=WARN" {
		t.Errorf("log mapping expectation = %+v: %s", e, fields(e.Fields))
	}
	if e := c.Expect[4]; e.Kind != actions.KindPublish || len(e.Fields) != 0 {
		t.Errorf("bare publish expectation = %+v", e)
	}
	if c := tf.Cases[1]; c.Until != time.Minute || len(c.Expect) != 0 {
		t.Errorf("second case: until %v (want the last at), %d expectations", c.Until, len(c.Expect))
	}
}

func TestParseTestFileErrors(t *testing.T) {
	const ok = "  - name: n\n    messages: [{topic: t}]\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"not yaml", "tests: [", []string{"t_test.yaml:1:8: did not find expected node content"}},
		{"empty", "", []string{"t_test.yaml: empty test file: want a tests: list"}},
		{"not a mapping", "- a\n", []string{"t_test.yaml:1:1: a test file is a mapping with a tests: list, not a list"}},
		{"no tests", "rule_files: x.yaml\n", []string{"t_test.yaml:1:1: no tests: list"}},
		{"unknown top key", "test:\n" + ok, []string{`t_test.yaml:1:1: unknown key "test" (did you mean "tests"?)`, "t_test.yaml:1:1: no tests: list"}},
		{"unknown case key", "tests:\n" + ok + "    expects: []\n", []string{`t_test.yaml:4:5: test "n": unknown key "expects" (did you mean "expect"?)`}},
		{"no name", "tests:\n  - messages: [{topic: t}]\n", []string{`t_test.yaml:2:5: test "#1": name: missing`}},
		{"no messages", "tests:\n  - name: n\n", []string{`t_test.yaml:2:5: test "n": messages: missing`}},
		{"empty messages", "tests:\n  - name: n\n    messages: []\n", []string{`t_test.yaml:3:15: test "n": messages: must be a list of at least one message`}},
		{"duplicate name", "tests:\n" + ok + ok, []string{`t_test.yaml:4:5: test "n": name: already used by the test at line 2`}},
		{"unknown message key", "tests:\n  - name: n\n    messages: [{topic: t, payloads: x}]\n", []string{`t_test.yaml:3:27: test "n": messages[0]: unknown key "payloads" (did you mean "payload"?)`}},
		{"wildcard topic", "tests:\n  - name: n\n    messages: [{topic: a/#}]\n", []string{`t_test.yaml:3:24: test "n": messages[0].topic: topic "a/#" holds a wildcard`}},
		{"at backwards", "tests:\n  - name: n\n    messages: [{topic: t, at: 1m}, {topic: t, at: 30s}]\n", []string{`t_test.yaml:3:51: test "n": messages[1].at: 30s is before the previous message (at: 1m)`}},
		{"bad at", "tests:\n  - name: n\n    messages: [{topic: t, at: soon}]\n", []string{`messages[0].at: "soon" is not a duration`}},
		{"bad qos", "tests:\n  - name: n\n    messages: [{topic: t, qos: 3}]\n", []string{`messages[0].qos: "3" is not a whole number from 0 to 2`}},
		{"until before last", "tests:\n  - name: n\n    messages: [{topic: t, at: 2m}]\n    until: 1m\n", []string{`t_test.yaml:4:12: test "n": until: 1m is before the last message (at: 2m)`}},
		{"bad start", "tests:\n" + ok + "    start: tomorrow\n", []string{`start: "tomorrow" is not an RFC 3339 time`}},
		{"two kinds", "tests:\n" + ok + "    expect: [{log: a, publish: {topic: b}}]\n", []string{`t_test.yaml:4:14: test "n": expect[0]: give exactly one of ` + actions.NameList() + ` (found 2)`}},
		{"no kind", "tests:\n" + ok + "    expect: [{rule: r}]\n", []string{`expect[0]: give exactly one of ` + actions.NameList() + ` (found 0)`}},
		{"unknown publish key", "tests:\n" + ok + "    expect: [{publish: {topik: b}}]\n", []string{`t_test.yaml:4:25: test "n": expect[0].publish: unknown key "topik" (did you mean "topic"?)`}},
		{"unknown webhook key", "tests:\n" + ok + "    expect: [{webhook: {header: {}}}]\n", []string{`expect[0].webhook: unknown key "header" (did you mean "headers"?)`}},
		{"unknown field", "tests:\n" + ok + "    expect: [{log: {message: m, lvl: warn}}]\n", []string{`expect[0].log: unknown key "lvl" (did you mean "level"?)`}},
		{"unset env", "tests:\n" + ok + "    expect: [{log: \"${NOPE}\"}]\n", []string{`expect[0].log: environment variable NOPE is not set`}},
		{"key twice", "tests:\n" + ok + "    name: m\n", []string{`t_test.yaml:4:5: test "n": name: key given twice`}},
		{"all errors at once", "tests:\n  - name: n\n    messages: [{topic: t, qos: 9}]\n    expect: [{log: x, rul: r}]\n", []string{
			`t_test.yaml:3:32: test "n": messages[0].qos`,
			`t_test.yaml:4:23: test "n": expect[0]: unknown key "rul" (did you mean "rule"?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTestFile("t_test.yaml", []byte(tc.src), env(nil))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors:\n%s\nwant one containing %q", got, w)
				}
			}
			if len(es) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%s", len(es), len(tc.want), got)
			}
		})
	}
}
