package dryrun

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// notifyRequest is a rendered notify whose URL holds a password and a
// token, given as the loader records what a file took from ${ENV}.
func notifyRequest() actions.Request {
	return actions.Request{
		Kind:    actions.KindNotify,
		Secrets: []string{"kitchen-s3cret-topic", "hunter2-pw"},
		Action: &actions.Notify{
			URL:     "ntfy://phone:hunter2-pw@ntfy.example.com/kitchen-s3cret-topic?priority=high&tags=fire",
			Title:   "Kitchen hot",
			Message: "31.5 °C since 10:02",
			Timeout: 10 * time.Second,
			Retries: 3,
		},
	}
}

func TestNotifyLineAndFull(t *testing.T) {
	const redacted = "ntfy://[REDACTED]@ntfy.example.com/[REDACTED]?priority=high&tags=fire"
	if got, want := Line(notifyRequest()), "notify "+redacted+" title=Kitchen hot message=31.5 °C since 10:02"; got != want {
		t.Errorf("Line =\n  %s\nwant\n  %s", got, want)
	}
	untitled := notifyRequest()
	untitled.Action.(*actions.Notify).Title = ""
	untitled.Action.(*actions.Notify).Message = "line 1\nline 2"
	if got, want := Line(untitled), "notify "+redacted+` message="line 1\nline 2"`; got != want {
		t.Errorf("Line without a title =\n  %s\nwant\n  %s", got, want)
	}

	var b bytes.Buffer
	Full(&b, "  ", notifyRequest())
	want := "  notify   " + redacted + "  title Kitchen hot  timeout 10s  retries 3\n" +
		"           31.5 °C since 10:02\n"
	if b.String() != want {
		t.Errorf("Full =\n%s\nwant\n%s", b.String(), want)
	}

	var names []string
	for _, f := range notifyRequest().Action.Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "url title timeout retries message" {
		t.Errorf("Fields: %s", got)
	}
}

// TestNotifyDryRunAndRuleTest: a rule file whose notify takes its secrets
// from ${ENV}: the dry run shows them redacted, and a rule test compares
// the notify's fields.
func TestNotifyDryRunAndRuleTest(t *testing.T) {
	env := map[string]string{"NTFY_PASSWORD": "hunter2-pw", "NTFY_TOPIC": "kitchen-s3cret-topic"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	const ruleFile = `
rules:
  - name: kitchen-hot
    topic: home/{room}/temperature
    when: payload.value > 30
    actions:
      - notify:
          url: "ntfy://phone:${NTFY_PASSWORD}@ntfy.example.com/${NTFY_TOPIC}?priority=high"
          title: "{{ room }} is hot"
          message: "{{ payload.value }} °C"
`
	l := rules.NewLoader()
	l.LookupEnv = lookup
	rs, err := l.LoadSources(rules.Source{Name: "hot.yaml", Data: []byte(ruleFile)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	m, _ := ParseMessage(`home/kitchen/temperature={"value": 31.5}`)
	DryRun(&b, rs, []engine.Message{m}, DryRunOptions{Now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)})
	if want := "notify   ntfy://[REDACTED]@ntfy.example.com/[REDACTED]?priority=high  title kitchen is hot  timeout 10s  retries 3"; !strings.Contains(b.String(), want) {
		t.Errorf("dry run lacks %q:\n%s", want, b.String())
	}
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("dry run shows %q:\n%s", secret, b.String())
		}
	}

	const tests = `
tests:
  - name: hot kitchen
    messages: [{topic: home/kitchen/temperature, payload: '{"value": 31.5}'}]
    expect:
      - notify:
          url: "ntfy://phone:${NTFY_PASSWORD}@ntfy.example.com/${NTFY_TOPIC}?priority=high"
          title: kitchen is hot
          message: 31.5 °C
  - name: wrong title
    messages: [{topic: home/kitchen/temperature, payload: '{"value": 31.5}'}]
    expect:
      - notify: {title: cellar is hot}
`
	dir := writeFiles(t, map[string]string{"hot.yaml": ruleFile, "hot_test.yaml": tests})
	b.Reset()
	sum, err := RunTests(&b, []string{dir}, SuiteOptions{LookupEnv: lookup})
	if err != nil || sum.Passed != 1 || sum.Failed != 1 {
		t.Errorf("RunTests: %+v, %v\n%s", sum, err, b.String())
	}
	if !strings.Contains(b.String(), "title  expected: cellar is hot") || !strings.Contains(b.String(), "got:      kitchen is hot") {
		t.Errorf("the failing case does not show the title it expected:\n%s", b.String())
	}
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("rule test report shows %q:\n%s", secret, b.String())
		}
	}
}
