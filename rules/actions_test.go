package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// TestActionErrors pins the loader's messages for actions: every error at
// its place, one error per root cause, and hints that name the key meant.
func TestActionErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string
		src   string
		want  []string // every error, in order
	}{
		{"exec refused without --allow-exec", nil, `
rules:
  - name: r
    topic: a
    actions: [{exec: {command: [/bin/true]}}]
`, []string{`rules/home.yaml:5:16: rule "r": actions[0]: exec actions run programs on this machine and are refused unless the engine runs with --allow-exec`}},
		{"payload under webhook", nil, `
rules:
  - name: r
    topic: a
    actions:
      - webhook: {url: "http://h/x", payload: x}
`, []string{`rules/home.yaml:6:38: rule "r": actions[0].webhook: unknown key "payload" (did you mean "body"? webhook calls it body)`}},
		{"a key of another kind", nil, `
rules:
  - name: r
    topic: a
    actions:
      - log: {message: m, qos: 1}
`, []string{`rules/home.yaml:6:27: rule "r": actions[0].log: unknown key "qos" (qos is a key of publish; log takes message, level)`}},
		{"a URL without a scheme", nil, `
rules:
  - name: r
    topic: a
    actions:
      - webhook: {url: "hooks.example.com/x"}
`, []string{`rules/home.yaml:6:24: rule "r": actions[0].webhook.url: not a URL: it has no scheme; write http://… or https://…`}},
		{"a missing variable is one error", nil, `
rules:
  - name: r
    topic: a
    actions:
      - webhook: {url: "${NO_SUCH_VARIABLE}"}
`, []string{`rules/home.yaml:6:24: rule "r": actions[0].webhook.url: environment variable NO_SUCH_VARIABLE is not set (write ${NO_SUCH_VARIABLE:-default} for a default)`}},
		{"an unclosed {{ is one error", nil, `
rules:
  - name: r
    topic: a
    actions:
      - publish: {topic: "out/{{ topic", payload: x}
`, []string{`rules/home.yaml:6:31: rule "r": actions[0].publish.topic: {{ without a closing }}`}},
		{"exec without a command", []string{"--allow-exec"}, `
rules:
  - name: r
    topic: a
    actions: [{exec: {timeout: 5s}}]
`, []string{`rules/home.yaml:5:22: rule "r": actions[0].exec: command missing (the program and its arguments, as a list)`}},
		{"a misspelt key is not also missing", nil, `
rules:
  - name: r
    topic: a
    actions: [{publish: {topc: x}}]
`, []string{`rules/home.yaml:5:26: rule "r": actions[0].publish: unknown key "topc" (did you mean "topic"?)`}},
		{"another key's problem does not hide a missing one", nil, `
rules:
  - name: r
    topic: a
    actions: [{publish: {qos: 7}}]
`, []string{`rules/home.yaml:5:25: rule "r": actions[0].publish: topic missing`,
			`rules/home.yaml:5:31: rule "r": actions[0].publish.qos: "7" is not a whole number from 0 to 2`}},
		{"exec with a string command", []string{"--allow-exec"}, `
rules:
  - name: r
    topic: a
    actions: [{exec: {command: "rm -rf /"}}]
`, []string{`rules/home.yaml:5:32: rule "r": actions[0].exec.command: must be a list of the program and its arguments, e.g. [/usr/bin/notify-send, "{{ topic }}"], not "rm -rf /"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader()
			l.Allow = tc.allow
			l.LookupEnv = func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }
			_, err := l.LoadSources(Source{Name: "rules/home.yaml", Data: []byte(tc.src)})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestExecLoadsWithAllowExec(t *testing.T) {
	l := NewLoader()
	l.Allow = []string{"--allow-exec"}
	rs, err := l.LoadSources(Source{Name: "r.yaml", Data: []byte(`
rules:
  - name: r
    topic: home/{room}/door
    actions:
      - exec:
          command: [/usr/local/bin/door-alert, "{{ room }}", "{{ payload.state }}"]
          stdin: "{{ raw }}"
          timeout: 5s
          publish_output: "doors/{{ room }}/alert"
`)})
	if err != nil {
		t.Fatal(err)
	}
	a := rs.Rule("r").Actions[0]
	spec, ok := a.Spec.(*actions.ExecSpec)
	if a.Kind != actions.KindExec || !ok || len(spec.Command) != 3 || spec.Timeout.String() != "5s" {
		t.Fatalf("action %+v", a)
	}
	if u := rs.Rule("r").Uses(); u&UsesCaptures == 0 || u&UsesPayload == 0 || u&UsesRaw == 0 {
		t.Errorf("uses %b: the exec templates' names are not recorded", u)
	}
}

// TestPlainURL: a URL from the environment that is no secret is shown,
// anything that may hold one stays [REDACTED].
func TestPlainURL(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		plain       bool
	}{
		{"HA_URL", "http://homeassistant.local:8123", true},
		{"NTFY_SERVER", "https://ntfy.example.com/house", true},
		{"HA_TOKEN", "http://homeassistant.local:8123", false}, // the name says secret
		{"SLACK_URL", "https://hooks.example.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", false},
		{"HOOK", "https://h.example.com/x?key=1", false},                // a query
		{"HOOK", "https://user:pw@h.example.com/x", false},              // credentials
		{"HOOK", "https://h.example.com/hooks/a1b2c3d4e5f6g7h8", false}, // token-like path
		{"ROOM", "kitchen-and-dining", false},                           // not a URL
	} {
		if got := PlainURL(tc.name, tc.value); got != tc.plain {
			t.Errorf("PlainURL(%s=%s) = %v, want %v", tc.name, tc.value, got, tc.plain)
		}
	}
}
