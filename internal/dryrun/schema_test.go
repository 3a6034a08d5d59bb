package dryrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/mqtt-rules/mqtt-rules/actions"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

const schemaPath = "../../docs/rules.schema.json"

// compileSchema compiles docs/rules.schema.json.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("rules.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("rules.schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// validateYAML checks every document of a YAML file against the schema,
// as an editor does: YAML → JSON → validate.
func validateYAML(t *testing.T, sch *jsonschema.Schema, src []byte) error {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if err := sch.Validate(inst); err != nil {
			return err
		}
	}
}

func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	var files []string
	err := filepath.WalkDir("../../examples", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && rules.IsRuleFile(d.Name()) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d example rule files, want them all: %q", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateYAML(t, sch, src); err != nil {
				t.Errorf("%s does not validate against %s:\n%v", f, schemaPath, err)
			}
		})
	}
}

// TestSchemaAgreesWithLoader checks small files against both the schema
// and the loader: the schema accepts what the loader accepts and rejects
// these mistakes as the loader does.
func TestSchemaAgreesWithLoader(t *testing.T) {
	sch := compileSchema(t)
	const head = "rules:\n  - name: r\n    topic: a/{room}/t\n"
	for _, tc := range []struct {
		name  string
		src   string
		valid bool
	}{
		{"minimal", head + "    actions: [{log: hi}]\n", true},
		{"every key", head + `    description: d
    when: payload.value > 30
    key: "{{ room }}"
    clear_when: payload.value < 28
    for: 1m30s
    cooldown: 10m
    enabled: yes
    actions:
      - log: {message: "{{ room }}", level: warn}
      - publish: {topic: "x/{{ room }}", payload: '{"a":1}', qos: 1, retain: true}
      - webhook: {url: "https://h.example/x", method: put, headers: {Authorization: "Bearer t"}, body: "{{ payload }}", timeout: 5s, retries: 0}
    on_clear: [{log: bye}]
`, true},
		{"topic list and anchors", "x-common: &c\n  actions: [{log: hi}]\nrules:\n  - {<<: *c, name: r, topic: [\"a/#\", \"b/+/c\", \"{all...}\"]}\n", true},
		{"absent", head + "    absent: 15m\n    actions: [{log: hi}]\n", true},
		{"windows", head + "    windows:\n      h: {value: payload.h, over: 5m, max_samples: 100}\n    when: windows.h.delta > 10\n    actions: [{log: hi}]\n", true},
		{"a window without over", head + "    windows: {h: {value: payload.h}}\n    actions: [{log: hi}]\n", false},
		{"remember", "remember: [home/mode, \"zigbee2mqtt/+/contact\"]\n" + head + "    when: state(\"home/mode\") != nil\n    actions: [{log: hi}]\n", true},
		{"remember a bad filter", "remember: [a/#/b]\n" + head + "    actions: [{log: hi}]\n", false},
		{"empty rules", "rules:\n", true},
		{"unknown rule key", head + "    actions: [{log: hi}]\n    whne: true\n", false},
		{"unknown top-level key", "rulez: []\n" + head + "    actions: [{log: hi}]\n", false},
		{"no rules key", "x-a: 1\n", false},
		{"missing actions", head, false},
		{"missing name", "rules:\n  - topic: a\n    actions: [{log: hi}]\n", false},
		{"empty actions", head + "    actions: []\n", false},
		{"two kinds in one action", head + "    actions: [{log: hi, publish: {topic: x}}]\n", false},
		{"unknown action", head + "    actions: [{email: {to: x}}]\n", false},
		{"bad duration", head + "    for: 5 minutes\n    actions: [{log: hi}]\n", false},
		{"qos 3", head + "    actions: [{publish: {topic: x, qos: 3}}]\n", false},
		{"publish without topic", head + "    actions: [{publish: {payload: x}}]\n", false},
		{"webhook without url", head + "    actions: [{webhook: {body: x}}]\n", false},
		{"unknown webhook key", head + "    actions: [{webhook: {url: \"https://h.example\", header: {}}}]\n", false},
		{"bad log level", head + "    actions: [{log: {message: x, level: loud}}]\n", false},
		{"bad name", "rules:\n  - name: has space\n    topic: a\n    actions: [{log: hi}]\n", false},
		{"# not last", "rules:\n  - name: r\n    topic: a/#/b\n    actions: [{log: hi}]\n", false},
		{"wildcard inside a level", "rules:\n  - name: r\n    topic: a/b+\n    actions: [{log: hi}]\n", false},
		{"enabled maybe", head + "    enabled: maybe\n    actions: [{log: hi}]\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateYAML(t, sch, []byte(tc.src))
			if (err == nil) != tc.valid {
				t.Errorf("schema: valid = %v, want %v (%v)\n%s", err == nil, tc.valid, err, tc.src)
			}
			_, lerr := rules.NewLoader().LoadSources(rules.Source{Name: "x.yaml", Data: []byte(tc.src)})
			if (lerr == nil) != tc.valid {
				t.Errorf("loader: valid = %v, want %v (%v): the schema and the loader disagree", lerr == nil, tc.valid, lerr)
			}
		})
	}
}

// TestSchemaDescribesEveryRuleKey keeps the schema in step with the rule
// format: every key of a rule and of each action has a description.
func TestSchemaDescribesEveryRuleKey(t *testing.T) {
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	type def struct {
		Properties map[string]map[string]any `json:"properties"`
		OneOf      []struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"oneOf"`
	}
	var doc struct {
		Definitions map[string]def `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	// The rule's keys as the loader knows them, and each action kind's
	// keys as its Kind declares them: a new kind or key without a schema
	// entry fails here.
	want := map[string]string{"rule": strings.Join(rules.Keys(), " ")}
	var kinds []string
	for _, k := range actions.Kinds() {
		want[k.Name] = strings.Join(k.Keys, " ")
		kinds = append(kinds, k.Name)
	}
	want["action"] = strings.Join(append(kinds, "delay"), " ")
	for def, keys := range want {
		d := doc.Definitions[def]
		props := d.Properties
		for _, alt := range d.OneOf { // a kind with a shorthand: the mapping form
			if alt.Properties != nil {
				props = alt.Properties
			}
		}
		for _, k := range strings.Fields(keys) {
			p, ok := props[k]
			if !ok {
				t.Errorf("definitions.%s: no property %q", def, k)
				continue
			}
			if def == "action" {
				continue // each refers to its kind's definition, checked above
			}
			if d, _ := p["description"].(string); d == "" {
				t.Errorf("definitions.%s.%s: no description", def, k)
			}
		}
		if len(props) != len(strings.Fields(keys)) {
			t.Errorf("definitions.%s has %d properties, want %d (%s)", def, len(props), len(strings.Fields(keys)), keys)
		}
	}
}
