package dryrun

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

var t0 = DefaultStart

func load(t *testing.T, src string) *rules.RuleSet {
	t.Helper()
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "test.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatalf("load rules: %v", err)
	}
	return rs
}

// describe renders steps as comparable lines: "+OFFSET trigger topic" and,
// under it, "  rule outcome [on_clear] action...".
func describe(steps []Step) []string {
	var out []string
	for _, s := range steps {
		head := fmt.Sprintf("+%s ", FormatDuration(s.Time.Sub(t0)))
		switch s.Trigger {
		case TriggerTimer:
			head += "timer"
		case TriggerFeedback:
			head += "feedback " + s.Message.Topic + " from " + s.From
		default:
			head += "message " + s.Message.Topic
		}
		out = append(out, head)
		for _, ev := range s.Events {
			l := "  " + ev.Rule + " " + ev.Outcome.String()
			if ev.OnClear {
				l += " on_clear"
			}
			for _, a := range ev.Actions {
				l += " | " + Line(a)
			}
			for _, n := range ev.Notes {
				l += " ! " + n
			}
			out = append(out, l)
		}
	}
	return out
}

func checkLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func msg(at time.Duration, topic, payload string) engine.Message {
	return engine.Message{Topic: topic, Payload: []byte(payload), Time: t0.Add(at)}
}

func TestRunnerTimersFireAtTheirDeadlinesInOrder(t *testing.T) {
	rs := load(t, `
rules:
  - name: open
    topic: door/{d}
    when: payload == "open"
    for: 5m
    actions: [{log: "{{ d }} open"}]
    on_clear: [{log: "{{ d }} closed"}]
`)
	r := New(rs, Options{})
	var steps []Step
	steps = append(steps, r.Send(msg(0, "door/a", "open"))...)
	steps = append(steps, r.Send(msg(2*time.Minute, "door/b", "open"))...)
	steps = append(steps, r.Send(msg(10*time.Minute, "door/a", "closed"))...)
	steps = append(steps, r.Advance(t0.Add(time.Hour))...)
	checkLines(t, describe(steps),
		"+0s message door/a",
		"  open pending",
		"+2m message door/b",
		"  open pending",
		"+5m timer",
		"  open fired | log info: a open",
		"+7m timer",
		"  open fired | log info: b open",
		"+10m message door/a",
		"  open cleared on_clear | log info: a closed",
	)
	if !r.Now().Equal(t0.Add(time.Hour)) {
		t.Errorf("Now = %v, want the time advanced to", r.Now())
	}
}

func TestRunnerTimerBeforeMessageAtTheSameInstant(t *testing.T) {
	rs := load(t, `
rules:
  - name: silent
    topic: s/{id}
    absent: 15m
    actions: [{log: "{{ id }} silent"}]
    on_clear: [{log: "{{ id }} back"}]
`)
	r := New(rs, Options{})
	var steps []Step
	steps = append(steps, r.Send(msg(0, "s/1", "x"))...)
	steps = append(steps, r.Send(msg(15*time.Minute, "s/1", "x"))...)
	checkLines(t, describe(steps),
		"+0s message s/1",
		"  silent heartbeat",
		"+15m timer",
		"  silent fired | log info: 1 silent",
		"+15m message s/1",
		"  silent back on_clear | log info: 1 back",
	)
}

func TestRunnerFeedback(t *testing.T) {
	src := `
rules:
  - name: relay
    topic: in/{x}
    actions: [{publish: {topic: "mid/{{ x }}", payload: "{{ payload }}!", qos: 2, retain: true}}]
  - name: echo
    topic: mid/+
    actions: [{log: "{{ topic }} {{ raw }} qos {{ qos }} retained {{ retained }}"}]
`
	for _, tc := range []struct {
		feedback bool
		want     []string
	}{
		{true, []string{
			"+0s message in/a",
			"  relay fired | publish mid/a qos=2 retain=true payload=hi!",
			"+0s feedback mid/a from relay",
			"  echo fired | log info: mid/a hi! qos 1 retained false",
		}},
		{false, []string{
			"+0s message in/a",
			"  relay fired | publish mid/a qos=2 retain=true payload=hi!",
		}},
	} {
		t.Run(fmt.Sprint("feedback=", tc.feedback), func(t *testing.T) {
			r := New(load(t, src), Options{Feedback: tc.feedback})
			checkLines(t, describe(r.Send(msg(0, "in/a", "hi"))), tc.want...)
		})
	}
}

func TestRunnerFeedbackLoopIsCut(t *testing.T) {
	rs := load(t, `
rules:
  - name: loop
    topic: a/#
    actions: [{publish: {topic: "a/{{ len(segments) }}", payload: x}}]
`)
	r := New(rs, Options{Feedback: true, MaxHops: 2})
	got := describe(r.Send(msg(0, "a", "x")))
	want := []string{
		"+0s message a",
		"  loop fired | publish a/1 qos=0 retain=false payload=x",
		"+0s feedback a/1 from loop",
		"  loop fired | publish a/2 qos=0 retain=false payload=x",
		"+0s feedback a/2 from loop",
		"  loop fired ! loop cut: the rule's publishes keep coming back to the engine",
	}
	checkLines(t, got, want...)
}

func TestRunnerNotesActionErrors(t *testing.T) {
	rs := load(t, `
rules:
  - name: bad
    topic: t/+
    actions:
      - publish: {topic: "{{ payload.room ?? '' }}", payload: x}
      - log: ok
`)
	r := New(rs, Options{})
	checkLines(t, describe(r.Send(msg(0, "t/1", `{"v":1}`))),
		"+0s message t/1",
		"  bad fired | log info: ok ! publish action: rendered topic: topic is empty",
	)
}

func TestRunnerConditionErrorIsTheEvaluationsError(t *testing.T) {
	rs := load(t, `
rules:
  - name: hot
    topic: t/+
    when: payload.value > 30
    actions: [{log: hot}]
`)
	steps := New(rs, Options{}).Send(msg(0, "t/1", "not json"))
	ev := steps[0].Events[0]
	if ev.Outcome != engine.OutcomeError || ev.Err == "" || len(ev.Notes) != 0 {
		t.Errorf("outcome %v, err %q, notes %q: want an error outcome, its error once", ev.Outcome, ev.Err, ev.Notes)
	}
}

func TestRunnerMakesNoRequest(t *testing.T) {
	called := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		select {
		case called <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	rs := load(t, `
rules:
  - name: hook
    topic: t
    actions: [{webhook: {url: "`+srv.URL+`/x", headers: {Authorization: "Bearer s3cret"}}}]
`)
	steps := New(rs, Options{}).Send(msg(0, "t", "body"))
	reqs := steps[0].Events[0].Actions
	if w, ok := reqs[0].Action.(*actions.Webhook); len(reqs) != 1 || !ok || w.URL != srv.URL+"/x" {
		t.Fatalf("actions = %+v, want the rendered webhook", reqs)
	}
	select {
	case <-called:
		t.Error("the dry run called the webhook")
	default:
	}
}

func TestRunnerStartAndPastTimes(t *testing.T) {
	rs := load(t, "rules:\n  - {name: r, topic: t, actions: [{log: \"{{ now.Hour() }}\"}]}\n")
	start := time.Date(2026, 6, 1, 23, 30, 0, 0, time.FixedZone("", 3600))
	r := New(rs, Options{Start: start})
	got := describe(r.Send(engine.Message{Topic: "t"})) // zero time: now
	if got[1] != "  r fired | log info: 23" {
		t.Errorf("got %q, want now at the start given", got)
	}
	r.Advance(start.Add(time.Minute))
	steps := r.Send(engine.Message{Topic: "t", Time: start}) // in the past: now
	if !steps[0].Time.Equal(start.Add(time.Minute)) {
		t.Errorf("a message in the past ran at %v, want Now", steps[0].Time)
	}
}
