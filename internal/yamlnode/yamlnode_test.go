package yamlnode

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// reader returns a Reader whose environment is env and which collects its
// problems as "line:col: owner: msg".
func reader(env map[string]string) (*Reader, *[]string) {
	var problems []string
	r := &Reader{
		LookupEnv: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		Report: func(n *yaml.Node, owner, msg string) {
			problems = append(problems, fmt.Sprintf("%d:%d: %s: %s", n.Line, n.Column, owner, msg))
		},
	}
	return r, &problems
}

// parse returns the top-level node of a one-document YAML text.
func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return doc.Content[0]
}

// field returns the value of key in the top-level mapping of src.
func field(t *testing.T, src, key string) *yaml.Node {
	t.Helper()
	m := parse(t, src)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	t.Fatalf("no key %q in %q", key, src)
	return nil
}

// show lists pairs as key=value, a mapping value as {…}.
func show(ps []Pair) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		v := p.Value.Value
		if p.Value.Kind == yaml.MappingNode {
			v = "{…}"
		}
		out[i] = p.Key.Value + "=" + v
	}
	return out
}

func TestPairs(t *testing.T) {
	for _, tt := range []struct {
		name     string
		src      string
		key      string // the mapping to read: this key's value, or the top level
		want     []string
		problems []string
	}{
		{"plain, in order", "b: 1\na: 2\n", "", []string{"b=1", "a=2"}, nil},
		{"duplicate key: the first counts", "a: 1\nb: 2\na: 3\n", "", []string{"a=1", "b=2"},
			[]string{"3:1: r: a: key given twice"}},
		{"alias value resolved", "x: &v hello\ny: {a: *v}\n", "y", []string{"a=hello"}, nil},
		{"merge key: own keys win, merged keys follow",
			"x: &x {a: 1, b: 2}\ny: {<<: *x, b: 3, c: 4}\n", "y", []string{"b=3", "c=4", "a=1"}, nil},
		{"merge key before or after own keys alike",
			"x: &x {a: 1, b: 2}\ny: {b: 3, <<: *x}\n", "y", []string{"b=3", "a=1"}, nil},
		{"merge list: the earlier mapping wins",
			"x: &x {a: 1}\nz: &z {a: 2, b: 2}\ny: {<<: [*x, *z]}\n", "y", []string{"a=1", "b=2"}, nil},
		{"merge of an inline mapping", "y:\n  <<: {a: 1}\n  b: 2\n", "y", []string{"b=2", "a=1"}, nil},
		{"nested merge", "x: &x {a: 1}\nz: &z {<<: *x, b: 2}\ny: {<<: *z}\n", "y", []string{"b=2", "a=1"}, nil},
		{"merge of a scalar is reported where it is", "s: &s 1\ny: {<<: *s, a: 2}\n", "y", []string{"a=2"},
			[]string{`1:4: r: <<: merges mappings only, not "1"`}},
		{"merge of a list item that is no mapping", "y: {<<: [{a: 1}, x]}\n", "y", []string{"a=1"},
			[]string{`1:18: r: <<: merges mappings only, not "x"`}},
		{"duplicate inside a merged mapping is reported there",
			"x: &x {a: 1, a: 2}\ny: {<<: *x}\n", "y", []string{"a=1"}, []string{"1:14: r: a: key given twice"}},
		{"a merged key repeating an own key is no duplicate",
			"x: &x {a: 1}\ny: {a: 2, <<: *x}\n", "y", []string{"a=2"}, nil},
		{"a quoted << is a key", "y: {\"<<\": 1}\n", "y", []string{"<<=1"}, nil},
		{"mapping values stay nodes", "y: {a: {b: 1}}\n", "y", []string{"a={…}"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, problems := reader(nil)
			m := parse(t, tt.src)
			if tt.key != "" {
				m = Resolve(field(t, tt.src, tt.key))
			}
			if got := show(r.Pairs(m, "r")); !slices.Equal(got, tt.want) {
				t.Errorf("Pairs = %q, want %q", got, tt.want)
			}
			if !slices.Equal(*problems, tt.problems) {
				t.Errorf("problems = %q, want %q", *problems, tt.problems)
			}
		})
	}
}

func TestStr(t *testing.T) {
	env := map[string]string{"HOST": "broker.lan", "EMPTY": ""}
	for _, tt := range []struct {
		name, src string
		want      string
		ok        bool
		problem   string
	}{
		{"plain", "k: hello", "hello", true, ""},
		{"number as text", "k: 30", "30", true, ""},
		{"quoted empty", `k: ""`, "", true, ""},
		{"env", "k: tcp://${HOST}:1883", "tcp://broker.lan:1883", true, ""},
		{"env default", "k: ${PORT:-1883}", "1883", true, ""},
		{"literal", "k: $${HOST}", "${HOST}", true, ""},
		{"unset", "k: ${PORT}", "", false, "1:4: o: k: environment variable PORT is not set (write ${PORT:-default} for a default)"},
		{"null", "k:", "", false, "1:3: o: k: empty"},
		{"tilde", "k: ~", "", false, "1:4: o: k: empty"},
		{"mapping", "k: {a: 1}", "", false, "1:4: o: k: must be a string, not a mapping"},
		{"list", "k: [a]", "", false, "1:4: o: k: must be a string, not a list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, problems := reader(env)
			got, ok := r.Str(field(t, tt.src, "k"), "o", "k")
			if got != tt.want || ok != tt.ok {
				t.Errorf("Str = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
			checkProblem(t, *problems, tt.problem)
		})
	}

	t.Run("os environment by default", func(t *testing.T) {
		t.Setenv("YAMLNODE_TEST_VAR", "from os")
		r, _ := reader(nil)
		r.LookupEnv = nil
		if got, ok := r.Str(field(t, "k: ${YAMLNODE_TEST_VAR}", "k"), "", "k"); got != "from os" || !ok {
			t.Errorf("Str = %q, %v; want \"from os\", true", got, ok)
		}
	})
}

// checkProblem checks that problems is want alone, or empty when want is.
func checkProblem(t *testing.T, problems []string, want string) {
	t.Helper()
	switch {
	case want == "" && len(problems) > 0:
		t.Errorf("problems = %q, want none", problems)
	case want != "" && (len(problems) != 1 || problems[0] != want):
		t.Errorf("problems = %q, want [%q]", problems, want)
	}
}

func TestBool(t *testing.T) {
	for _, tt := range []struct {
		src     string
		want    bool
		ok      bool
		problem string
	}{
		{"k: true", true, true, ""},
		{"k: false", false, true, ""},
		{"k: yes", true, true, ""},
		{"k: No", false, true, ""},
		{"k: ON", true, true, ""},
		{"k: off", false, true, ""},
		{`k: "true"`, true, true, ""},
		{"k: ${FLAG}", true, true, ""},
		{"k: maybe", false, false, `1:4: o: k: "maybe" is not true or false`},
		{"k: 1", false, false, `1:4: o: k: "1" is not true or false`},
		{"k:", false, false, "1:3: o: k: empty"},
		{"k: [true]", false, false, "1:4: o: k: must be a string, not a list"},
	} {
		t.Run(tt.src, func(t *testing.T) {
			r, problems := reader(map[string]string{"FLAG": "yes"})
			got, ok := r.Bool(field(t, tt.src, "k"), "o", "k")
			if got != tt.want || ok != tt.ok {
				t.Errorf("Bool = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			checkProblem(t, *problems, tt.problem)
		})
	}
}

func TestInt(t *testing.T) {
	for _, tt := range []struct {
		src     string
		want    int
		ok      bool
		problem string
	}{
		{"k: 0", 0, true, ""},
		{"k: 2", 2, true, ""},
		{"k: ${QOS:-1}", 1, true, ""},
		{"k: 3", 0, false, `1:4: o: k: "3" is not a whole number from 0 to 2`},
		{"k: -1", 0, false, `1:4: o: k: "-1" is not a whole number from 0 to 2`},
		{"k: 1.5", 0, false, `1:4: o: k: "1.5" is not a whole number from 0 to 2`},
		{"k: one", 0, false, `1:4: o: k: "one" is not a whole number from 0 to 2`},
		{"k: {a: 1}", 0, false, "1:4: o: k: must be a string, not a mapping"},
	} {
		t.Run(tt.src, func(t *testing.T) {
			r, problems := reader(nil)
			got, ok := r.Int(field(t, tt.src, "k"), "o", "k", 0, 2)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Int = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
			checkProblem(t, *problems, tt.problem)
		})
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		src       string
		allowZero bool
		want      time.Duration
		ok        bool
		problem   string
	}{
		{"k: 500ms", false, 500 * time.Millisecond, true, ""},
		{"k: 1h30m", false, 90 * time.Minute, true, ""},
		{"k: ${WAIT:-5s}", false, 5 * time.Second, true, ""},
		{"k: 0s", true, 0, true, ""},
		{"k: 0", true, 0, true, ""},
		{"k: 0s", false, 0, false, "1:4: o: k: must be positive, not 0s"},
		{"k: -1s", false, 0, false, "1:4: o: k: must be positive, not -1s"},
		{"k: -1s", true, 0, false, "1:4: o: k: must be zero or more, not -1s"},
		{"k: 5", false, 0, false, `1:4: o: k: "5" is not a duration (write 500ms, 30s, 5m, 1h30m)`},
		{"k: soon", false, 0, false, `1:4: o: k: "soon" is not a duration (write 500ms, 30s, 5m, 1h30m)`},
		{"k: [1s]", false, 0, false, "1:4: o: k: must be a string, not a list"},
	} {
		t.Run(fmt.Sprintf("%s allowZero=%v", tt.src, tt.allowZero), func(t *testing.T) {
			r, problems := reader(nil)
			got, ok := r.Duration(field(t, tt.src, "k"), "o", "k", tt.allowZero)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Duration = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			checkProblem(t, *problems, tt.problem)
		})
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "B": "beta", "EMPTY": ""}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	for _, tt := range []struct {
		in, want, err string
	}{
		{"no reference", "no reference", ""},
		{"a lone $ and {}", "a lone $ and {}", ""},
		{"${A}", "alpha", ""},
		{"x${A}y${B}z", "xalphaybetaz", ""},
		{"${A}${A}", "alphaalpha", ""},
		{"${UNSET:-fallback}", "fallback", ""},
		{"${A:-fallback}", "alpha", ""},
		{"${EMPTY:-fallback}", "fallback", ""}, // the default applies to an empty variable too
		{"[${EMPTY}]", "[]", ""},               // empty without a default: empty
		{"${UNSET:-}", "", ""},
		{"${UNSET:-a:-b}", "a:-b", ""},
		{"${UNSET:-a b}", "a b", ""},
		{"$${A}", "${A}", ""},
		{"$${A} and ${A}", "${A} and alpha", ""},
		{"cost: $$${A}", "cost: $${A}", ""}, // $$ before ${ escapes the ${; the first $ stays
		{"${UNSET}", "", "environment variable UNSET is not set (write ${UNSET:-default} for a default)"},
		{"ok ${A} then ${UNSET}", "", "environment variable UNSET is not set (write ${UNSET:-default} for a default)"},
		{"${A", "", "${ without a closing } (write $${ for a literal ${)"},
		{"${}", "", `${}: "" is not an environment variable name`},
		{"${1A}", "", `${1A}: "1A" is not an environment variable name`},
		{"${A-B}", "", `${A-B}: "A-B" is not an environment variable name`},
		{"${:-x}", "", `${:-x}: "" is not an environment variable name`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ExpandEnv(tt.in, lookup)
			switch {
			case tt.err != "":
				if err == nil || err.Error() != tt.err {
					t.Errorf("ExpandEnv(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
				}
			case err != nil || got != tt.want:
				t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"topic", "when", "actions", "name"}
	for _, tt := range []struct {
		got, want string
	}{
		{"topci", ` (did you mean "topic"?)`},    // a transposition: two edits
		{"tpic", ` (did you mean "topic"?)`},     // one deletion
		{"wehn", ` (did you mean "when"?)`},      // two substitutions
		{"action", ` (did you mean "actions"?)`}, // one insertion
		{"nmae", ` (did you mean "name"?)`},
		{"payload", ""}, // nothing within two edits
		{"tc", ""},      // three edits from topic
		{"", ""},        // four or more from every key
	} {
		if got := Suggest(tt.got, known); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.got, got, tt.want)
		}
	}
	// The nearest key wins; of two as near, the first known.
	if got := Suggest("nama", []string{"names", "name"}); got != ` (did you mean "name"?)` {
		t.Errorf("Suggest(nama, [names name]) = %q, want name (one edit, not two)", got)
	}
	if got := Suggest("ab", []string{"ax", "ay"}); got != ` (did you mean "ax"?)` {
		t.Errorf("Suggest(ab, [ax ay]) = %q, want the first of two as near", got)
	}
	if got := Suggest("topic", nil); got != "" {
		t.Errorf("Suggest with no known keys = %q, want \"\"", got)
	}
}

func TestFormatError(t *testing.T) {
	for _, tt := range []struct {
		file       string
		line, col  int
		kind, name string
		msg, want  string
	}{
		{"rules/home.yaml", 12, 11, "rule", "kitchen-too-hot", `when: unknown name "paylod"`,
			`rules/home.yaml:12:11: rule "kitchen-too-hot": when: unknown name "paylod"`},
		{"rules/home_test.yaml", 3, 5, "test", "hot", "messages: required",
			`rules/home_test.yaml:3:5: test "hot": messages: required`},
		{"a.yaml", 4, 0, "rule", "r", "m", `a.yaml:4: rule "r": m`},
		{"a.yaml", 0, 7, "rule", "r", "m", `a.yaml: rule "r": m`}, // no line: no column either
		{"a.yaml", 2, 3, "rule", "", "rules: required", "a.yaml:2:3: rules: required"},
		{"a.yaml", 0, 0, "", "", "read: permission denied", "a.yaml: read: permission denied"},
		{"a.yaml", 1, 1, "rule", `say "hi"`, "m", `a.yaml:1:1: rule "say \"hi\"": m`},
	} {
		if got := FormatError(tt.file, tt.line, tt.col, tt.kind, tt.name, tt.msg); got != tt.want {
			t.Errorf("FormatError(%q, %d, %d, %q, %q, %q) = %q, want %q", tt.file, tt.line, tt.col, tt.kind, tt.name, tt.msg, got, tt.want)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	if got := JoinErrors([]error{errors.New("a"), errors.New("b")}); got != "a\nb" {
		t.Errorf("JoinErrors = %q, want \"a\\nb\"", got)
	}
	if got := JoinErrors[error](nil); got != "" {
		t.Errorf("JoinErrors(nil) = %q, want \"\"", got)
	}
}

func TestKindName(t *testing.T) {
	for src, want := range map[string]string{
		"k: {a: 1}": "a mapping",
		"k: [a]":    "a list",
		"k:":        "empty",
		"k: ~":      "empty",
		"k: a b":    `"a b"`,
		`k: "x"`:    `"x"`,
	} {
		if got := KindName(field(t, src, "k")); got != want {
			t.Errorf("KindName(%s) = %s, want %s", strings.TrimPrefix(src, "k: "), got, want)
		}
	}
}

func TestIsIdent(t *testing.T) {
	for s, want := range map[string]bool{
		"A": true, "_": true, "MQTT_PASSWORD": true, "a1": true, "_1": true,
		"": false, "1A": false, "A-B": false, "A.B": false, "A B": false, "É": false,
	} {
		if got := IsIdent(s); got != want {
			t.Errorf("IsIdent(%q) = %v, want %v", s, got, want)
		}
	}
}
