package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
)

var testEnv = map[string]string{"NOTIFY_TOKEN": "s3cret", "ROOM": "kitchen", "EMPTY": ""}

func load(t *testing.T, src string) (*RuleSet, error) {
	t.Helper()
	l := NewLoader()
	l.LookupEnv = func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }
	return l.LoadSources(Source{Name: "rules/home.yaml", Data: []byte(src)})
}

func mustLoad(t *testing.T, src string) *RuleSet {
	t.Helper()
	rs, err := load(t, src)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return rs
}

func TestLoadFullRule(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: kitchen-too-hot
    description: Kitchen above 30 °C
    topic: home/+/temperature
    when: payload.value > 30
    key: "{{ topic }}"
    clear_when: payload.value < 28
    for: 2m
    cooldown: 10m
    enabled: true
    actions:
      - log: "{{ topic }} is {{ payload.value }} °C"
      - publish:
          topic: "alerts/{{ wildcards[0] }}/hot"
          payload: '{"room":"{{ wildcards[0] }}","value":{{ payload.value }}}'
          qos: 1
          retain: false
      - webhook:
          url: "https://hooks.example.com/notify"
          method: post
          headers: {Authorization: "Bearer ${NOTIFY_TOKEN}"}
          body: "{{ toJSON(payload) }}"
          timeout: 5s
          retries: 3
    on_clear:
      - log: "{{ key }} back to normal"
`)
	r := rs.Rule("kitchen-too-hot")
	if r == nil {
		t.Fatal("rule not loaded")
	}
	if r.For != 2*time.Minute || r.Cooldown != 10*time.Minute || r.Absent != 0 {
		t.Errorf("durations = %v %v %v", r.For, r.Cooldown, r.Absent)
	}
	if len(r.Actions) != 3 || len(r.OnClear) != 1 {
		t.Fatalf("actions = %d, on_clear = %d", len(r.Actions), len(r.OnClear))
	}
	w := r.Actions[2].Spec.(*actions.WebhookSpec)
	if w.Method != "POST" || w.Timeout != 5*time.Second || w.Retries != 3 {
		t.Errorf("webhook = %+v", w)
	}
	if len(w.Headers) != 1 || w.Headers[0].Value.Source() != "Bearer s3cret" {
		t.Errorf("headers = %+v, want the token expanded", w.Headers)
	}
	if p := r.Actions[1].Spec.(*actions.PublishSpec); p.QoS != 1 || p.Retain {
		t.Errorf("publish = %+v", p)
	}
	if !r.Stateful() || !r.Episodic() {
		t.Error("rule with for/on_clear is not stateful and episodic")
	}
	if want := UsesTopic | UsesPayload | UsesWildcards | UsesKey; r.Uses() != want {
		t.Errorf("uses = %b, want %b", r.Uses(), want)
	}
	if got := rs.Filters(); !slices.Equal(got, []string{"home/+/temperature"}) {
		t.Errorf("Filters = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the first error, exactly
	}{
		{"typo in when", `
rules:
  - name: kitchen-too-hot
    topic: home/+/temperature
    when: paylod.value > 30
    actions: [{log: hi}]
`, `rules/home.yaml:5:11: rule "kitchen-too-hot": when: unknown name "paylod"`},
		{"error inside when", `
rules:
  - name: r
    topic: a
    when: payload.value > 30 && topc == "x"
    actions: [{log: hi}]
`, `rules/home.yaml:5:33: rule "r": when: unknown name "topc"`},
		{"quoted when", `
rules:
  - name: r
    topic: a
    when: "raw == 1"
    actions: [{log: hi}]
`, `rules/home.yaml:5:16: rule "r": when: invalid operation: == (mismatched types string and int)`},
		{"when not bool", `
rules:
  - name: r
    topic: a
    when: topic
    actions: [{log: hi}]
`, `rules/home.yaml:5:11: rule "r": when: expected bool, but got string`},
		{"template typo", `
rules:
  - name: r
    topic: home/{room}/t
    actions:
      - log: "room {{ rom }}"
`, `rules/home.yaml:6:23: rule "r": actions[0].log: {{ rom }}: unknown name "rom"`},
		{"template in block scalar", `
rules:
  - name: r
    topic: a
    actions:
      - publish:
          topic: out
          payload: |
            {"a": 1,
             "b": {{ payload.x + }}}
`, `rules/home.yaml:10:33: rule "r": actions[0].publish.payload: {{ payload.x + }}: unexpected token EOF`},
		{"unclosed template", `
rules:
  - name: r
    topic: a
    actions: [{log: "x {{ topic"}]
`, `rules/home.yaml:5:24: rule "r": actions[0].log: {{ without a closing }}`},
		{"unknown key", `
rules:
  - name: r
    topic: a
    wehn: x
    actions: [{log: hi}]
`, `rules/home.yaml:5:5: rule "r": unknown key "wehn" (did you mean "when"?)`},
		{"unknown top-level key", `
rule:
  - name: r
`, `rules/home.yaml:2:1: unknown key "rule" (did you mean "rules"?)`},
		{"missing name", `
rules:
  - topic: a
    actions: [{log: hi}]
`, `rules/home.yaml:3:5: rule "#1": name: missing (every rule needs a unique name)`},
		{"bad name", `
rules:
  - name: "my rule"
    topic: a
    actions: [{log: hi}]
`, `rules/home.yaml:3:11: rule "#1": name: "my rule" may hold only letters, digits, _, . and -`},
		{"duplicate name", `
rules:
  - name: r
    topic: a
    actions: [{log: hi}]
  - name: r
    topic: b
    actions: [{log: hi}]
`, `rules/home.yaml:6:11: rule "r": name: already used by the rule at rules/home.yaml:3`},
		{"bad filter", `
rules:
  - name: r
    topic: [ok/+, "sport/tennis#"]
    actions: [{log: hi}]
`, `rules/home.yaml:4:19: rule "r": topic: filter "sport/tennis#": level "tennis#": + and # must fill a whole level`},
		{"hash not last", `
rules:
  - name: r
    topic: a/#/b
    actions: [{log: hi}]
`, `rules/home.yaml:4:12: rule "r": topic: filter "a/#/b": # must be the last level`},
		{"capture shadows", `
rules:
  - name: r
    topic: a/{payload}
    actions: [{log: hi}]
`, `rules/home.yaml:4:12: rule "r": topic: capture {payload} shadows a name of the expression environment; pick another name`},
		{"missing topic", `
rules:
  - name: r
    actions: [{log: hi}]
`, `rules/home.yaml:3:5: rule "r": topic: missing (a topic filter or a list of them; or a schedule: or sun: trigger)`},
		{"missing actions", `
rules:
  - name: r
    topic: a
`, `rules/home.yaml:3:5: rule "r": actions: missing (at least one of ` + actions.NameList() + `)`},
		{"unknown action", `
rules:
  - name: r
    topic: a
    actions:
      - pubish: {topic: x}
`, `rules/home.yaml:6:9: rule "r": actions[0]: unknown action "pubish" (want ` + actions.NameList() + `) (did you mean "publish"?)`},
		{"two actions in one item", `
rules:
  - name: r
    topic: a
    actions:
      - log: a
        publish: {topic: x}
`, `rules/home.yaml:6:9: rule "r": actions[0]: an action has exactly one key (` + actions.NameList() + `), found 2`},
		{"bad qos", `
rules:
  - name: r
    topic: a
    actions:
      - publish: {topic: x, qos: 3}
`, `rules/home.yaml:6:34: rule "r": actions[0].publish.qos: "3" is not a whole number from 0 to 2`},
		{"wildcard in publish topic", `
rules:
  - name: r
    topic: a
    actions:
      - publish: {topic: x/+}
`, `rules/home.yaml:6:26: rule "r": actions[0].publish.topic: topic "x/+" holds a wildcard (+ or #)`},
		{"bad duration", `
rules:
  - name: r
    topic: a
    for: 5 minutes
    actions: [{log: hi}]
`, `rules/home.yaml:5:10: rule "r": for: "5 minutes" is not a duration (write 500ms, 30s, 5m, 1h30m)`},
		{"unset env", `
rules:
  - name: r
    topic: a
    actions:
      - webhook:
          url: http://h/x
          headers: {Authorization: "Bearer ${MISSING_TOKEN}"}
`, `rules/home.yaml:8:36: rule "r": actions[0].webhook.headers.Authorization: environment variable MISSING_TOKEN is not set (write ${MISSING_TOKEN:-default} for a default)`},
		{"bad url", `
rules:
  - name: r
    topic: a
    actions:
      - webhook: {url: "ftp://h/x"}
`, `rules/home.yaml:6:24: rule "r": actions[0].webhook.url: scheme "ftp": want http or https`},
		{"yaml syntax", `
rules:
  - name: r
    topic: a
   actions: []
`, `rules/home.yaml:5:4: did not find expected '-' indicator (actions: is at column 4; its sibling keys, like topic: on line 4, are at column 5)`},
		{"absent with for", `
rules:
  - name: r
    topic: a
    absent: 1m
    for: 1m
    actions: [{log: hi}]
`, `rules/home.yaml:6:10: rule "r": for: cannot be combined with absent (absent fires on silence, for on a condition that holds)`},
		{"duplicate key", `
rules:
  - name: r
    topic: a
    topic: b
    actions: [{log: hi}]
`, `rules/home.yaml:5:5: rule "r": topic: key given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.src)
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("err = %v, want Errors", err)
			}
			if got := es[0].Error(); got != tt.want {
				t.Errorf("first error:\n got %s\nwant %s\n(all: %v)", got, tt.want, err)
			}
		})
	}
}

func TestLoadCollectsEveryError(t *testing.T) {
	_, err := load(t, `
rules:
  - name: a
    topic: x
    when: nope
    actions: [{log: hi}]
  - name: b
    topic: y/#/z
    actions: [{log: hi}]
`)
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("got %v, want two errors", err)
	}
	if es[0].Line != 5 || es[1].Line != 8 {
		t.Errorf("lines %d, %d; want 5, 8", es[0].Line, es[1].Line)
	}
}

func TestEnvExpansion(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${ROOM}/x", want: "kitchen/x"},
		{in: "${UNSET:-dflt}", want: "dflt"},
		{in: "${EMPTY:-dflt}", want: "dflt"},
		{in: "${EMPTY}", want: ""},
		{in: "$${ROOM}", want: "${ROOM}"},
		{in: "a ${ROOM} b ${ROOM}", want: "a kitchen b kitchen"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${ROOM", err: "without a closing }"},
		{in: "${1X}", err: "not an environment variable name"},
		{in: "cost: $5", want: "cost: $5"},
	}
	lookup := func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }
	for _, tt := range tests {
		got, err := ExpandEnv(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expandEnv(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestEnvInCommentsIsIgnored(t *testing.T) {
	mustLoad(t, `
# token: ${NOT_SET_ANYWHERE}
rules:
  - name: r
    topic: a  # ${ALSO_NOT_SET}
    actions: [{log: hi}]
`)
}

func TestMergeKeysAndAliases(t *testing.T) {
	rs := mustLoad(t, `
x-alert: &alert
  topic: sensors/+/temperature
  actions:
    - log: "{{ topic }}"
rules:
  - <<: *alert
    name: a
    when: payload.value > 30
  - <<: *alert
    name: b
    topic: sensors/+/humidity
`)
	a, b := rs.Rule("a"), rs.Rule("b")
	if a == nil || b == nil {
		t.Fatal("rules a and b not both loaded")
	}
	if a.Filters[0].Source != "sensors/+/temperature" || b.Filters[0].Source != "sensors/+/humidity" {
		t.Errorf("filters = %s, %s; want the merged one, and b's own", a.Filters[0].Source, b.Filters[0].Source)
	}
	if len(a.Actions) != 1 || len(b.Actions) != 1 || a.When == nil || b.When != nil {
		t.Error("merge keys did not carry actions, or leaked when")
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "rules: []")
	write("sub/b.yml", "rules: []")
	write("sub/b_test.yaml", "tests: []")
	write("notes.txt", "x")
	write(".hidden.yaml", "rules: []")
	// A Kubernetes ConfigMap mount: the files are symlinks through ..data.
	write("cm/..2026_11_25/c.yaml", "rules: []")
	if err := os.Symlink("..2026_11_25", filepath.Join(dir, "cm/..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/c.yaml", filepath.Join(dir, "cm/c.yaml")); err != nil {
		t.Fatal(err)
	}
	// A symlink loop must not hang the walk.
	if err := os.Symlink("..", filepath.Join(dir, "sub/loop")); err != nil {
		t.Fatal(err)
	}
	got, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i], _ = filepath.Rel(dir, got[i])
	}
	want := []string{"a.yaml", "cm/c.yaml", "sub/b.yml"}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	if _, err := Files(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path error = %v", err)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	good := "rules:\n  - name: r\n    topic: a\n    actions: [{log: hi}]\n"
	bad := "rules:\n  - name: s\n    topic: b\n    when: nope\n    actions: [{log: hi}]\n"
	if err := os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := Load(dir)
	if err != nil || len(rs.Rules) != 1 {
		t.Fatalf("Load = %v, %v", rs, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err = Load(dir)
	if rs != nil || err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "bad.yaml")+":4:11: ") {
		t.Fatalf("Load with a bad file = %v, %v; want nil and an error at bad.yaml:4:11", rs, err)
	}
}

func TestMatch(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: first
    topic: ["home/{room}/temperature", home/#]
    actions: [{log: hi}]
  - name: second
    topic: "#"
    actions: [{log: hi}]
  - name: off
    topic: "#"
    enabled: false
    actions: [{log: hi}]
  - name: sys
    topic: $SYS/#
    actions: [{log: hi}]
`)
	var m Matcher
	tests := []struct {
		topic string
		want  []string // rule:filter
	}{
		// A disabled rule matches too: the engine skips it, and control
		// can enable it at run time.
		{"home/kitchen/temperature", []string{"first:0", "second:0", "off:0"}},
		{"home/kitchen/humidity", []string{"first:1", "second:0", "off:0"}},
		{"home", []string{"first:1", "second:0", "off:0"}},
		{"office/x", []string{"second:0", "off:0"}},
		{"$SYS/uptime", []string{"sys:0"}},
	}
	for _, tt := range tests {
		ms, _ := m.Match(rs, tt.topic)
		var got []string
		for _, x := range ms {
			got = append(got, x.Rule.Name+":"+string(rune('0'+x.Filter)))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
	if got := rs.Filters(); !slices.Equal(got, []string{"#", "$SYS/#", "home/#", "home/+/temperature"}) {
		t.Errorf("Filters = %q (duplicates once)", got)
	}
}

func TestCaptures(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: r
    topic: ["home/{room}/{sensor}", "office/{floor}/{room}"]
    when: room != ""
    actions: [{log: "{{ room }} {{ sensor }} {{ floor }}"}]
`)
	r := rs.Rule("r")
	if !slices.Equal(r.Captures, []string{"room", "sensor", "floor"}) {
		t.Fatalf("Captures = %q", r.Captures)
	}
	e := NewEvaluator()
	r.SetCaptures(e.Vars, 1, []string{"3", "lab"})
	got, err := e.Render(r.Actions[0].Spec.(*actions.LogSpec).Message.(*Template))
	if err != nil || got != "lab  3" {
		t.Errorf("render = %q, %v; want %q (sensor only in the other filter is empty)", got, err, "lab  3")
	}
	if r.Uses()&UsesCaptures == 0 {
		t.Error("uses does not record captures")
	}
}

func TestFingerprint(t *testing.T) {
	base := `
rules:
  - name: r
    topic: a
    when: payload.v > 1
    for: 1m
    actions: [{log: "%s"}]
`
	a := mustLoad(t, strings.Replace(base, "%s", "one", 1)).Rule("r")
	b := mustLoad(t, strings.Replace(base, "%s", "two", 1)).Rule("r")
	c := mustLoad(t, strings.Replace(strings.Replace(base, "%s", "one", 1), "for: 1m", "for: 2m", 1)).Rule("r")
	if a.Fingerprint != b.Fingerprint {
		t.Error("changing an action's text changed the fingerprint")
	}
	if a.Fingerprint == c.Fingerprint {
		t.Error("changing for: kept the fingerprint")
	}
}

func TestActionKinds(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: r
    topic: a
    actions:
      - log: {message: "warned", level: warn}
      - publish: {topic: out}
      - webhook: {url: "http://127.0.0.1:1/x"}
`)
	as := rs.Rule("r").Actions
	kinds := []*actions.Kind{as[0].Kind, as[1].Kind, as[2].Kind}
	if !slices.Equal(kinds, []*actions.Kind{actions.KindLog, actions.KindPublish, actions.KindWebhook}) {
		t.Errorf("kinds = %v", kinds)
	}
	if l := as[0].Spec.(*actions.LogSpec); l.Level.String() != "WARN" {
		t.Errorf("log level = %v", l.Level)
	}
	if as[1].Spec.(*actions.PublishSpec).Payload != nil || as[2].Spec.(*actions.WebhookSpec).Body != nil {
		t.Error("payload and body default to the raw payload (nil template)")
	}
	if w := as[2].Spec.(*actions.WebhookSpec); w.Method != "POST" || w.Timeout != actions.DefaultWebhookTimeout || w.Retries != actions.DefaultWebhookRetries {
		t.Errorf("webhook defaults = %+v", w)
	}
}

func TestLoopAnalysis(t *testing.T) {
	tests := []struct {
		name, src string
		mayLoop   bool
		warnings  int
	}{
		{"alerts elsewhere", `
rules:
  - {name: a, topic: "sensors/+/t", actions: [{publish: {topic: "alerts/{{ wildcards[0] }}"}}]}
`, false, 0},
		{"self loop", `
rules:
  - {name: a, topic: "a/#", actions: [{publish: {topic: "a/{{ topic }}"}}]}
`, true, 1},
		{"through another rule", `
rules:
  - {name: a, topic: "in", actions: [{publish: {topic: "mid"}}]}
  - {name: b, topic: "mid", actions: [{publish: {topic: "out"}}]}
`, true, 0},
		{"expression at the start may render anything", `
rules:
  - {name: a, topic: "x/y", actions: [{publish: {topic: "{{ payload.to }}"}}]}
`, true, 1},
		{"on_clear counts too", `
rules:
  - {name: a, topic: "s", when: "payload > 1", on_clear: [{publish: {topic: s}}], actions: [{log: x}]}
`, true, 1},
		{"$SYS is not matched by a leading wildcard", `
rules:
  - {name: a, topic: "#", actions: [{publish: {topic: "$SYS/x"}}]}
`, false, 0},
	}
	for _, tt := range tests {
		rs := mustLoad(t, tt.src)
		if rs.MayLoop() != tt.mayLoop {
			t.Errorf("%s: MayLoop = %v, want %v", tt.name, rs.MayLoop(), tt.mayLoop)
		}
		if w := rs.Warnings(); len(w) != tt.warnings {
			t.Errorf("%s: warnings %v, want %d", tt.name, w, tt.warnings)
		}
	}
}

func TestPayloadFields(t *testing.T) {
	tests := []struct {
		when, log string
		fields    []string
		all       bool
	}{
		{"payload.value > 30", "x", []string{"value"}, false},
		{"payload.value > 30", "{{ payload.unit }} {{ payload['value'] }}", []string{"value", "unit"}, false},
		{"payload?.ENERGY?.Power > 1", "x", []string{"ENERGY"}, false},
		{"payload.value > 30", "{{ toJSON(payload) }}", nil, true},
		{`type(payload) == "map"`, "x", nil, true},
		{"payload[topic] == 1", "x", nil, true},
		{"true", "{{ $env.payload }}", nil, true},
		{"raw != ''", "x", nil, false},
		{"prev?.payload.value > 1", "x", nil, false},
	}
	for _, tt := range tests {
		rs := mustLoad(t, fmt.Sprintf("rules: [{name: r, topic: t, when: %q, actions: [{log: %q}]}]", tt.when, tt.log))
		fields, all := rs.Rule("r").PayloadFields()
		if all != tt.all || !slices.Equal(fields, tt.fields) {
			t.Errorf("when %q, log %q: fields %q all=%v; want %q all=%v", tt.when, tt.log, fields, all, tt.fields, tt.all)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"rules: [{name: r, topic: a/+, when: payload.v > 1, actions: [{log: '{{ topic }}'}]}]",
		"rules:\n  - name: r\n    topic: [\"a/{x}\", b/#]\n    for: 1m\n    on_clear: [{log: x}]\n    actions: [{publish: {topic: 'o/{{ x }}', qos: 1}}]\n",
		"x-a: &a {topic: t}\nrules: [{<<: *a, name: r, actions: [{webhook: {url: 'http://h/{{ raw }}'}}]}]",
		"rules: [{name: r, topic: '${HOME}', actions: [{log: x}]}]",
		"rules: {}", "- a", "", "rules: [{name: r}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := NewLoader().LoadSources(Source{Name: "f.yaml", Data: b})
		if err == nil {
			if rs == nil {
				t.Fatal("nil set without an error")
			}
			rs.Warnings()
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %v is not a non-empty Errors", err)
		}
		for _, e := range es {
			if e.File != "f.yaml" || e.Msg == "" {
				t.Fatalf("error without its file or message: %#v", e)
			}
		}
	})
}

func TestTopicPattern(t *testing.T) {
	rs := mustLoad(t, `
rules:
  - name: r
    topic: ["zigbee2mqtt/{room}/motion", "x/+/{rest...}"]
    actions:
      - publish: {topic: "zigbee2mqtt/{{ room }}/light/set"}
      - publish: {topic: "a/{{ wildcards[0] }}/b"}
      - publish: {topic: "a/{{ wildcards[1] }}/b"}
      - publish: {topic: "a/{{ segments[2] }}-x/b"}
      - publish: {topic: "a/{{ rest }}/b"}
      - publish: {topic: "a/{{ payload.to }}/b"}
      - publish: {topic: "{{ room }}"}
      - publish: {topic: "plain/topic"}
`)
	r := rs.Rule("r")
	want := []string{"zigbee2mqtt/+/light/set", "a/+/b", "a/#", "a/+/b", "a/#", "a/#", "+", "plain/topic"}
	for i, a := range r.Actions {
		tp := a.Spec.(*actions.PublishSpec).Topic.(*Template)
		if got := TopicPattern(tp, r); got != want[i] {
			t.Errorf("%s: pattern %q, want %q", tp.Source(), got, want[i])
		}
	}
	if w := mustLoad(t, `
rules:
  - name: light
    topic: "zigbee2mqtt/{room}/motion"
    actions: [{publish: {topic: "zigbee2mqtt/{{ room }}/light/set"}}]
`).Warnings(); len(w) != 0 {
		t.Errorf("false loop warning: %v", w)
	}
}

// TestEnvValuesAreRecorded: what a file takes from the environment (at
// least MinEnvValueLen bytes) is kept on its rules, longest first, for
// masking; short values and defaults written in the file are not.
func TestEnvValuesAreRecorded(t *testing.T) {
	l := NewLoader()
	env := map[string]string{"SLACK_URL": "https://hooks.example/services/T0/B0/XYZ", "TOKEN": "0123456789", "ROOM": "kitchen"}
	l.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	rs, err := l.LoadSources(Source{Name: "a.yaml", Data: []byte(`
rules:
  - name: a
    topic: home/${ROOM}/t
    actions: [{webhook: {url: "${SLACK_URL}", headers: {X-Token: "${TOKEN}"}, body: "${UNSET:-a default value}"}}]
  - name: b
    topic: b
    actions: [{log: x}]
`)}, Source{Name: "b.yaml", Data: []byte("rules: [{name: c, topic: c, actions: [{log: x}]}]")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{env["SLACK_URL"], env["TOKEN"]}
	for _, name := range []string{"a", "b"} {
		if got := rs.Rule(name).EnvValues; !slices.Equal(got, want) {
			t.Errorf("rule %s: EnvValues = %q, want %q", name, got, want)
		}
	}
	if got := rs.Rule("c").EnvValues; len(got) != 0 {
		t.Errorf("rule c of a file without ${...}: EnvValues = %q", got)
	}
}

// TestErrorsMaskEnvValues: a load error quotes what it found, which may be
// a value from the environment; errors are logged and shown on the status
// page, so such values are masked in them.
func TestErrorsMaskEnvValues(t *testing.T) {
	l := NewLoader()
	l.LookupEnv = func(string) (string, bool) { return "hunter2hunter2", true }
	for _, src := range []string{
		"rules:\n  - name: a\n    topic: a/b\n    when: payload.k == ${API_TOKEN}\n    actions: [{log: x}]\n",
		"rules:\n  - name: a\n    topic: a/b\n    actions: [{webhook: {url: \"ftp://${API_TOKEN}.example.com/x\"}}]\n",
		"rules:\n  - name: a\n    topic: a/${API_TOKEN}+\n    actions: [{log: x}]\n",
		"rules:\n  - name: a\n    topic: a/b\n    actions: [{publish: {topic: \"x/{{ ${API_TOKEN} }}\"}}]\n",
	} {
		_, err := l.LoadSources(Source{Name: "r.yaml", Data: []byte(src)})
		if err == nil {
			t.Fatalf("%q loaded", src)
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2hunter2") {
			t.Errorf("error shows the value: %s", msg)
		}
	}
}
