package dryrun

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

func pub(rule, topic, payload string) Actual {
	return Actual{Rule: rule, Request: actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{Topic: topic, Payload: []byte(payload)}}}
}

func logA(rule, msg string) Actual {
	return Actual{Rule: rule, Request: actions.Request{Kind: actions.KindLog, Action: &actions.Log{Message: msg}}}
}

func ptr[T any](v T) *T { return &v }

func expPub(rule, topic string) Expectation {
	return Expectation{Rule: rule, Kind: actions.KindPublish, Fields: []ExpectedField{text("topic", topic)}}
}

func expLog(rule, msg string) Expectation {
	return Expectation{Rule: rule, Kind: actions.KindLog, Fields: []ExpectedField{text("message", msg)}}
}

func text(name, v string) ExpectedField { return ExpectedField{Name: name, Value: Value{Text: v}} }

// opsString renders ops as "✓0=0 ✗1=1 -2 +3".
func opsString(ops []Op) string {
	var parts []string
	for _, op := range ops {
		switch op.Kind {
		case OpMatch:
			parts = append(parts, fmt.Sprintf("✓%d=%d", op.Expected, op.Actual))
		case OpMismatch:
			parts = append(parts, fmt.Sprintf("✗%d=%d", op.Expected, op.Actual))
		case OpMissing:
			parts = append(parts, fmt.Sprintf("-%d", op.Expected))
		case OpUnexpected:
			parts = append(parts, fmt.Sprintf("+%d", op.Actual))
		}
	}
	return strings.Join(parts, " ")
}

func TestAlign(t *testing.T) {
	for _, tc := range []struct {
		name string
		exp  []Expectation
		act  []Actual
		want string
	}{
		{"nothing", nil, nil, ""},
		{"all match", []Expectation{expPub("a", "x"), expLog("a", "m")}, []Actual{pub("a", "x", ""), logA("a", "m")}, "✓0=0 ✓1=1"},
		{"unexpected", nil, []Actual{pub("a", "x", "")}, "+0"},
		{"missing", []Expectation{expPub("a", "x")}, nil, "-0"},
		{"mismatch pairs up", []Expectation{expPub("a", "x")}, []Actual{pub("a", "y", "")}, "✗0=0"},
		{"another rule does not pair", []Expectation{expPub("a", "x")}, []Actual{pub("b", "x", "")}, "-0 +0"},
		{"another kind does not pair", []Expectation{expPub("a", "x")}, []Actual{logA("a", "x")}, "-0 +0"},
		{"any rule", []Expectation{{Kind: actions.KindLog}}, []Actual{logA("b", "x")}, "✓0=0"},
		{"one missing in the middle", []Expectation{expPub("a", "1"), expPub("a", "2"), expPub("a", "3")},
			[]Actual{pub("a", "1", ""), pub("a", "3", "")}, "✓0=0 -1 ✓2=1"},
		{"one extra in the middle", []Expectation{expPub("a", "1"), expPub("a", "3")},
			[]Actual{pub("a", "1", ""), pub("a", "2", ""), pub("a", "3", "")}, "✓0=0 +1 ✓1=2"},
		{"order swapped", []Expectation{expLog("a", "1"), expPub("a", "2")},
			[]Actual{pub("a", "2", ""), logA("a", "1")}, "-0 ✓1=0 +1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := opsString(align(tc.exp, tc.act)); got != tc.want {
				t.Errorf("align = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	hook := Actual{Rule: "r", At: time.Minute, OnClear: true, Request: actions.Request{Kind: actions.KindWebhook, Action: &actions.Webhook{
		Method: "POST", URL: "https://h.example/x?token=abc", Header: http.Header{"Authorization": {"Bearer real"}, "X-A": {"1"}},
		Body: []byte(`{"b": 2, "a": [1, "x"]}`),
	}}}
	for _, tc := range []struct {
		name string
		e    Expectation
		want []FieldDiff
	}{
		{"all given fields equal", Expectation{Rule: "r", Kind: actions.KindWebhook, At: ptr(time.Minute), OnClear: ptr(true),
			Fields: []ExpectedField{text("method", "POST"), text("url", "https://h.example/x?token=abc"),
				{Name: "headers", Sub: []ExpectedField{text("headers.authorization", "Bearer real")}},
				{Name: "body", Value: Value{IsJSON: true, JSON: map[string]any{"a": []any{1.0, "x"}, "b": 2.0}, Text: `{"a":[1,"x"],"b":2}`}}}}, nil},
		{"at and on_clear", Expectation{Kind: actions.KindWebhook, At: ptr(2 * time.Minute), OnClear: ptr(false)},
			[]FieldDiff{{"at", "2m", "1m"}, {"on_clear", "false", "true"}}},
		{"secret part of the url", Expectation{Kind: actions.KindWebhook, Fields: []ExpectedField{text("url", "https://h.example/x?token=xyz")}},
			[]FieldDiff{{"url", "https://h.example/x?token=[REDACTED]", "https://h.example/x?token=[REDACTED]  (differs in a secret part, not shown)"}}},
		{"secret header", Expectation{Kind: actions.KindWebhook, Fields: []ExpectedField{{Name: "headers", Sub: []ExpectedField{text("headers.Authorization", "Bearer other")}}}},
			[]FieldDiff{{"headers.Authorization", "[REDACTED]", "[REDACTED]  (differs in a secret part, not shown)"}}},
		{"missing header", Expectation{Kind: actions.KindWebhook, Fields: []ExpectedField{{Name: "headers", Sub: []ExpectedField{text("headers.X-B", "2")}}}},
			[]FieldDiff{{"headers.X-B", "2", "(not set)"}}},
		{"text body compares bytes", Expectation{Kind: actions.KindWebhook, Fields: []ExpectedField{text("body", `{"a":[1,"x"],"b":2}`)}},
			[]FieldDiff{{"body", `{"a":[1,"x"],"b":2}`, `{"b": 2, "a": [1, "x"]}`}}},
		{"json body compares values", Expectation{Kind: actions.KindWebhook, Fields: []ExpectedField{{Name: "body", Value: Value{IsJSON: true, JSON: map[string]any{"b": 3.0}, Text: `{"b":3}`}}}},
			[]FieldDiff{{"body", `{"b":3}  (compared as JSON)`, `{"b": 2, "a": [1, "x"]}`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.e.compare(hook)
			if !ok {
				t.Fatal("not comparable")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("diffs:\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
	lg := Actual{Rule: "r", Request: actions.Request{Kind: actions.KindLog, Action: &actions.Log{Message: "m", Level: slog.LevelInfo}}}
	e := Expectation{Kind: actions.KindLog, Fields: []ExpectedField{text("message", "m"), text("level", "warn")}}
	if got, _ := e.compare(lg); fmt.Sprint(got) != fmt.Sprint([]FieldDiff{{"level", "warn", "info"}}) {
		t.Errorf("log level diff = %q", got)
	}
}

// TestCompareBoolAndNested: yes/on stand for true only in a boolean field
// (retain), not in a payload; a mapping nested two deep (properties.user)
// compares its entries.
func TestCompareBoolAndNested(t *testing.T) {
	p := Actual{Rule: "r", Request: actions.Request{Kind: actions.KindPublish, Action: &actions.Publish{
		Topic: "t", Payload: []byte("true"), Retain: true,
		Properties: &actions.Properties{User: []actions.UserProperty{{Name: "source", Value: "rules"}}},
	}}}
	for _, tc := range []struct {
		name string
		e    []ExpectedField
		want []FieldDiff
	}{
		{"retain yes", []ExpectedField{text("retain", "yes")}, nil},
		{"payload yes is not true", []ExpectedField{text("payload", "yes")}, []FieldDiff{{"payload", "yes", "true"}}},
		{"nested user property", []ExpectedField{{Name: "properties", Sub: []ExpectedField{{Name: "properties.user",
			Sub: []ExpectedField{text("properties.user.source", "rules")}}}}}, nil},
		{"nested user property differs", []ExpectedField{{Name: "properties", Sub: []ExpectedField{{Name: "properties.user",
			Sub: []ExpectedField{text("properties.user.source", "other")}}}}}, []FieldDiff{{"properties.user.source", "other", "rules"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := (&Expectation{Kind: actions.KindPublish, Fields: tc.e}).compare(p)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("diffs:\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// TestFailingCaseReport pins the report of a failing case: a newcomer
// must understand it without reading the code.
func TestFailingCaseReport(t *testing.T) {
	rs := load(t, `
rules:
  - name: door-open
    topic: door/{d}
    when: payload == "open"
    for: 5m
    actions:
      - publish: {topic: "alert/{{ d }}", payload: "{{ d }} open", qos: 1}
      - log: {message: "{{ d }} open", level: warn}
    on_clear: [{publish: {topic: "alert/{{ d }}", payload: "{{ d }} closed"}}]
  - name: broken
    topic: door/{d}
    when: payload.state == "x"
    actions: [{log: never}]
`)
	tf, err := ParseTestFile("door_test.yaml", []byte(`tests:
  - name: a door left open
    messages:
      - {topic: door/garage, payload: open}
      - {topic: door/garage, payload: closed, at: 7m}
    expect:
      - {rule: door-open, at: 5m, publish: {topic: alert/garage, payload: garage open}}
      - {rule: door-open, at: 4m, log: garage open for five minutes}
      - {rule: door-open, publish: {topic: alert/back}}
      - {rule: door-opn, log: x}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	res := RunCase(rs, tf.Cases[0])
	if res.Passed {
		t.Fatal("the case passed")
	}
	var b bytes.Buffer
	WriteResult(&b, rs, res, false)
	want := `--- FAIL: a door left open (door_test.yaml:2)
    door_test.yaml:10:9: rule "door-opn": no rule of that name in the rule set (did you mean "door-open"?)
    ✓ at 5m  door-open  publish alert/garage qos=1 retain=false payload=garage open
    ✗ at 5m  door-open  log warn: garage open
             at       expected: 4m
                      got:      5m
             message  expected: garage open for five minutes
                      got:      garage open
             (expect at line 8)
    ✗ at 7m  door-open  on_clear: publish alert/garage qos=0 retain=false payload=garage closed
             topic  expected: alert/back
                    got:      alert/garage
             (expect at line 9)
    - missing: door-opn log message=x   (expect at line 10)
    ! at 0s  broken: condition failed: ` + res.Steps[0].Events[1].Err + `
    ! at 7m  broken: condition failed: ` + res.Steps[2].Events[1].Err + `
    (mqtt-rules test -v shows every message and why each rule did or did not fire)
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPassingCaseVerbose(t *testing.T) {
	rs := load(t, "rules:\n  - {name: r, topic: \"t/{x}\", when: payload == \"on\", actions: [{log: \"{{ x }} on\"}]}\n")
	tf, err := ParseTestFile("t_test.yaml", []byte("tests:\n  - name: on\n    messages: [{topic: t/a, payload: on}, {topic: t/b, payload: off, at: 1s}]\n    expect: [{log: a on}]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	res := RunCase(rs, tf.Cases[0])
	var b bytes.Buffer
	WriteResult(&b, rs, res, false)
	if !res.Passed || b.Len() != 0 {
		t.Errorf("passed %v, report %q: want a pass and no report", res.Passed, b.String())
	}
	WriteResult(&b, rs, res, true)
	want := `=== RUN   on (t_test.yaml:2)
    +0s  message t/a on
        r  when true   fired
          why: condition true: fired
          log      info  a on
    +1s  message t/b off
        r  when false  does not fire
          why: condition false: does not fire
--- PASS: on (1 action)
`
	if b.String() != want {
		t.Errorf("verbose report:\n%s\nwant:\n%s", b.String(), want)
	}
}
