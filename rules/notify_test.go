package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

// TestNotifyLoadErrors pins the loader's messages for notify actions: a
// URL the service's parser refuses, at its file:line:col, naming the
// supported services when the scheme is unknown.
func TestNotifyLoadErrors(t *testing.T) {
	const schemes = "supported: discord, generic, gotify, matrix, ntfy, pushover, slack, smtp, teams, telegram"
	for _, tc := range []struct {
		name string
		src  string
		want []string // every error, in order
	}{
		{"unknown scheme", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfyy://ntfy.sh/kitchen", message: hot}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: unknown service "ntfyy" (did you mean "ntfy"?; ` + schemes + `)`}},
		{"unknown scheme, nothing near", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "signal://host/+123/+456"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: unknown service "signal" (` + schemes + `)`}},
		{"an http URL", `
rules:
  - name: r
    topic: a
    actions:
      - notify:
          url: https://hooks.example.com/x
`, []string{`rules/home.yaml:7:16: rule "r": actions[0].notify.url: unknown service "https" (for an HTTP endpoint write a webhook action, or generic+https://…; ` + schemes + `)`}},
		{"no scheme", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: ntfy.sh/kitchen}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: not a service URL: it has no scheme; write SERVICE://… (` + schemes + `)`}},
		{"not a URL", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfy://ntfy sh/kitchen"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: not a service URL: write it as SERVICE://…, e.g. ntfy://ntfy.sh/TOPIC`}},
		{"ntfy without a topic", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfy://ntfy.sh/"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: ntfy URL: topic is required`}},
		{"ntfy with a bad priority", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfy://ntfy.sh/kitchen?priority=loudest"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: ntfy URL: setting query parameter "priority" to "loudest": `}},
		{"smtp without a sender, password masked", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "smtp://bot:${SMTP_PASSWORD}@mail.example.com:587/?to=ops@example.com"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: smtp URL: `}},
		{"telegram without chats", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram"}
`, []string{`rules/home.yaml:6:23: rule "r": actions[0].notify.url: telegram URL: `}},
		{"url missing", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {title: Hot, message: "{{ payload }}"}
`, []string{`rules/home.yaml:6:17: rule "r": actions[0].notify: url missing (a service URL such as ntfy://ntfy.sh/TOPIC)`}},
		{"body for message", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfy://ntfy.sh/kitchen", body: hot}
`, []string{`rules/home.yaml:6:49: rule "r": actions[0].notify: unknown key "body" (did you mean "message"? notify calls it message)`}},
		{"topic for url", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {topic: kitchen, message: hot}
`, []string{
			`rules/home.yaml:6:18: rule "r": actions[0].notify: unknown key "topic" (did you mean "url"? notify calls it url)`,
		}},
		{"retries out of range", `
rules:
  - name: r
    topic: a
    actions:
      - notify: {url: "ntfy://ntfy.sh/kitchen", retries: 21}
`, []string{`rules/home.yaml:6:58: rule "r": actions[0].notify.retries: `}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoader()
			l.LookupEnv = func(k string) (string, bool) {
				if k == "SMTP_PASSWORD" {
					return "hunter2-smtp-password", true
				}
				v, ok := testEnv[k]
				return v, ok
			}
			_, err := l.LoadSources(Source{Name: "rules/home.yaml", Data: []byte(tc.src)})
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			if len(es) != len(tc.want) {
				t.Fatalf("errors:\n  %v\nwant %d:\n  %s", err, len(tc.want), strings.Join(tc.want, "\n  "))
			}
			for i, e := range es {
				// A message that ends in ": " is pinned up to the service's own words.
				if got, want := e.Error(), tc.want[i]; got != want && !(strings.HasSuffix(want, ": ") && strings.HasPrefix(got, want)) {
					t.Errorf("error %d:\n  %s\nwant\n  %s", i, got, want)
				}
				if strings.Contains(e.Error(), "hunter2") || strings.Contains(e.Error(), "AAHdqTcv") {
					t.Errorf("error %d shows a secret: %s", i, e)
				}
			}
		})
	}
}

// notifyRenderer renders the rule set's templates for a notify spec.
type notifyRenderer struct{ e *Evaluator }

func (r notifyRenderer) Render(t actions.Template) (string, error) { return r.e.Render(t.(*Template)) }
func (r notifyRenderer) Append(dst []byte, t actions.Template) ([]byte, error) {
	return r.e.Append(dst, t.(*Template))
}

// TestNotifyLoads: every key, secrets from ${ENV} recorded for masking and
// redacted where the action is shown.
func TestNotifyLoads(t *testing.T) {
	l := NewLoader()
	env := map[string]string{"NTFY_PASSWORD": "hunter2-ntfy-pw", "NTFY_TOPIC": "kitchen-s3cret-topic"}
	l.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	rs, err := l.LoadSources(Source{Name: "r.yaml", Data: []byte(`
rules:
  - name: r
    topic: home/{room}/temperature
    actions:
      - notify:
          url: "ntfy://phone:${NTFY_PASSWORD}@ntfy.example.com/${NTFY_TOPIC}?priority=high"
          title: "{{ room }} is hot"
          message: "{{ payload.value }} °C"
          timeout: 5s
          retries: 1
      - notify: {url: "gotify://gotify.example.com/AbCdEfGhIjKlMnO"}
`)})
	if err != nil {
		t.Fatal(err)
	}
	r := rs.Rule("r")
	a := r.Actions[0]
	spec, ok := a.Spec.(*actions.NotifySpec)
	if a.Kind != actions.KindNotify || !ok || spec.Timeout != 5*time.Second || spec.Retries != 1 || spec.Title == nil || spec.Message == nil {
		t.Fatalf("action %+v", a)
	}
	if d := r.Actions[1].Spec.(*actions.NotifySpec); d.Timeout != actions.DefaultWebhookTimeout || d.Retries != actions.DefaultWebhookRetries || d.Title != nil || d.Message != nil {
		t.Errorf("defaults: %+v", d)
	}
	if !slices.Contains(r.EnvValues, env["NTFY_PASSWORD"]) || !slices.Contains(r.EnvValues, env["NTFY_TOPIC"]) {
		t.Errorf("EnvValues = %q: the secrets are not kept for masking", r.EnvValues)
	}
	var shown []string
	for _, f := range spec.Describe() {
		shown = append(shown, f.Name+"="+f.Show(f.Value, r.EnvValues))
	}
	want := []string{
		"url=ntfy://[REDACTED]@ntfy.example.com/[REDACTED]?priority=high",
		"title={{ room }} is hot", "timeout=5s", "retries=1", "message={{ payload.value }} °C",
	}
	if !slices.Equal(shown, want) {
		t.Errorf("Describe:\n got %q\nwant %q", shown, want)
	}

	e := NewEvaluator()
	e.Vars["room"] = "kitchen"
	e.Vars[VarPayload] = map[string]any{"value": 31.5}
	act, err := spec.Render(notifyRenderer{e}, []byte(`{"value":31.5}`))
	if err != nil {
		t.Fatal(err)
	}
	n := act.(*actions.Notify)
	if n.URL != "ntfy://phone:hunter2-ntfy-pw@ntfy.example.com/kitchen-s3cret-topic?priority=high" || n.Title != "kitchen is hot" || n.Message != "31.5 °C" {
		t.Errorf("rendered %+v", n)
	}
	dflt, err := r.Actions[1].Spec.Render(notifyRenderer{e}, []byte("raw payload"))
	if err != nil || dflt.(*actions.Notify).Message != "raw payload" || dflt.(*actions.Notify).Title != "" {
		t.Errorf("without message and title: %+v, %v; want the payload and no title", dflt, err)
	}
}

// TestNotifyTemplatedURL: a templated URL loads, and is checked as the
// service reads it when rendered: a bad one is an error of the action.
func TestNotifyTemplatedURL(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: r
    topic: home/{room}/alert
    actions:
      - notify: {url: "{{ payload.service }}://ntfy.sh/{{ room }}-alerts", title: "a\nb", message: m}
`)
	spec := rs.Rule("r").Actions[0].Spec.(*actions.NotifySpec)
	e := NewEvaluator()
	e.Vars["room"] = "kitchen"
	for _, tc := range []struct{ service, wantURL, wantErr string }{
		{"ntfy", "ntfy://ntfy.sh/kitchen-alerts", ""},
		{"ntfyy", "", `rendered url: unknown service "ntfyy" (did you mean "ntfy"?; supported: discord, generic, gotify, matrix, ntfy, pushover, slack, smtp, teams, telegram)`},
		{"smtp", "", "rendered url: smtp URL: "},
	} {
		e.Vars[VarPayload] = map[string]any{"service": tc.service}
		act, err := spec.Render(notifyRenderer{e}, nil)
		if tc.wantErr == "" {
			if err != nil || act.(*actions.Notify).URL != tc.wantURL {
				t.Errorf("%s: %+v, %v; want %s", tc.service, act, err, tc.wantURL)
			} else if title := act.(*actions.Notify).Title; title != "a b" {
				t.Errorf("title %q: want one line, %q", title, "a b")
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
			t.Errorf("%s: got %v, want %s…", tc.service, err, tc.wantErr)
		}
	}
}
