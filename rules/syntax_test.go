package rules_test

import (
	"errors"
	"testing"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// TestLoadSyntaxErrors pins where a YAML syntax error in a rule file is
// reported, and its hint, for the traps docs/rules.md warns about.
func TestLoadSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the first error, exactly
	}{
		{"value starting with {", `rules:
  - name: door
    topic: {device}/state
    actions:
      - log: open
`, `r.yaml:3:12: did not find expected key (a value starting with { is read as a YAML mapping: quote it, e.g. topic: "{device}/state")`},
		{"{ inside a flow list", `rules:
  - name: temperature
    topic: [home/{room}/t, office/#]
    actions:
      - log: hot
`, `r.yaml:3:18: did not find expected ',' or ']' ({ inside [...] starts a YAML mapping: quote the items, e.g. topic: ["home/{room}/t", "office/#"])`},
		{"tab in indentation", "rules:\n  - name: door\n\ttopic: door/state\n    actions:\n      - log: open\n",
			`r.yaml:3:1: tab character in indentation: YAML indents with spaces only`},
		{"when one space deeper", `rules:
  - name: door
    topic: door/state
     when: payload == "open"
    actions:
      - log: open
`, `r.yaml:4:6: mapping values are not allowed in this context (when: is at column 6; its sibling keys, like topic: on line 3, are at column 5)`},
		{"when one space shallower", `rules:
  - name: door
    topic: door/state
   when: payload == "open"
    actions:
      - log: open
`, `r.yaml:4:4: did not find expected '-' indicator (when: is at column 4; its sibling keys, like topic: on line 3, are at column 5)`},
		{"action key shallower", `rules:
  - name: door
    topic: door/state
    actions:
      - publish:
          topic: alarm/door
         payload: open
`, `r.yaml:7:10: did not find expected key (payload: is at column 10; its sibling keys, like topic: on line 6, are at column 11)`},
		{"quote never closed", `rules:
  - name: door
    topic: "door/state
    actions:
      - log: open
`, `r.yaml:3:12: found unexpected end of stream (the quote opened here is never closed)`},
		{"quote closed by the next one", `rules:
  - name: door
    topic: "door/state
    when: payload == "open"
    actions:
      - log: open
`, `r.yaml:3:12: did not find expected key (the quote opened here is closed only on line 4: is a closing quote missing?)`},
		{"key: value: more", `rules:
  - name: door
    topic: door/state
    actions:
      - log: door: open
`, `r.yaml:5:18: mapping values are not allowed in this context (a value holding ": " must be quoted, e.g. log: "door: open")`},
		{"no hint", `rules:
  - name: door
    topic: door/state
    when: @open
`, `r.yaml:4:11: found character that cannot start any token`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.NewLoader().LoadSources(rules.Source{Name: "r.yaml", Data: []byte(tt.src)})
			var es rules.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("err = %v, want Errors", err)
			}
			if got := es[0].Error(); got != tt.want {
				t.Errorf("first error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
