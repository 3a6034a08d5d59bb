package dryrun

import (
	"encoding/json"
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Actual is one action a case ran.
type Actual struct {
	At      time.Duration // offset from the case's start
	Rule    string
	OnClear bool
	Request actions.Request
}

// String renders the action on one line: "on_clear: publish …" for an
// on_clear action.
func (a Actual) String() string {
	if a.OnClear {
		return "on_clear: " + Line(a.Request)
	}
	return Line(a.Request)
}

// Result is the outcome of one case.
type Result struct {
	Case   *Case
	Start  time.Time
	Steps  []Step   // everything that happened, for -v
	Actual []Actual // the actions run, in order
	Ops    []Op     // expected and actual actions aligned
	Errors []string // rule names the expectations give that the set has not
	Passed bool
}

// OpKind says how an expected and an actual action line up.
type OpKind uint8

// The kinds of Op.
const (
	OpMatch      OpKind = iota + 1 // the action is as expected
	OpMismatch                     // the expected action (same rule, same kind) differs in Diffs
	OpMissing                      // expected, not run
	OpUnexpected                   // run, not expected
)

// Op is one line of a case's diff.
type Op struct {
	Kind     OpKind
	Expected int // index in Case.Expect; -1 for OpUnexpected
	Actual   int // index in Result.Actual; -1 for OpMissing
	Diffs    []FieldDiff
}

// FieldDiff is one field of an action that is not as expected; Want and
// Got are ready to print (secrets redacted).
type FieldDiff struct {
	Field, Want, Got string
}

// RunCase runs one case against rs, on the engine's default zone and no
// location unless the case sets them.
func RunCase(rs *rules.RuleSet, c *Case) *Result { return RunCaseWith(rs, c, Options{}) }

// RunCaseWith runs one case against rs with the engine options base (its
// TimeZone and Location; the case's own win).
func RunCaseWith(rs *rules.RuleSet, c *Case, base Options) *Result {
	start := c.Start
	if start.IsZero() {
		start = DefaultStart
	}
	res := &Result{Case: c, Start: start}
	for _, e := range c.Expect {
		if e.Rule != "" && rs.Rule(e.Rule) == nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s:%d:%d: rule %q: no rule of that name in the rule set%s",
				c.File, e.Line, e.Col, e.Rule, yamlnode.Suggest(e.Rule, ruleNames(rs))))
		}
	}
	opts := Options{Start: start, Feedback: true, TimeZone: base.TimeZone, Location: base.Location}
	if c.TimeZone != nil {
		opts.TimeZone = c.TimeZone
	}
	if c.Location != nil {
		opts.Location = c.Location
	}
	r := New(rs, opts)
	for _, m := range c.Messages {
		res.Steps = append(res.Steps, r.Send(engine.Message{
			Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retained: m.Retain, Time: start.Add(m.At),
			Broker: m.Broker, Properties: m.Properties,
		})...)
	}
	res.Steps = append(res.Steps, r.Advance(start.Add(c.Until))...)
	for _, s := range res.Steps {
		for _, ev := range s.Events {
			for _, a := range ev.Actions {
				res.Actual = append(res.Actual, Actual{At: ev.Time.Sub(start), Rule: ev.Rule, OnClear: ev.OnClear, Request: a})
			}
		}
	}
	res.Ops = align(c.Expect, res.Actual)
	res.Passed = len(res.Errors) == 0
	for _, op := range res.Ops {
		if op.Kind != OpMatch {
			res.Passed = false
		}
	}
	return res
}

func ruleNames(rs *rules.RuleSet) []string {
	out := make([]string, len(rs.Rules))
	for i, r := range rs.Rules {
		out[i] = r.Name
	}
	return out
}

// align lines up the expected and the actual actions with the fewest
// differences (an edit distance where a mismatch of the same rule and kind
// costs one, a missing or unexpected action one), in order.
func align(exp []Expectation, act []Actual) []Op {
	n, m := len(exp), len(act)
	type cell struct {
		diffs []FieldDiff
		ok    bool // same kind and rule: may pair up
	}
	pairs := make([][]cell, n)
	for i := range exp {
		pairs[i] = make([]cell, m)
		for j := range act {
			d, ok := exp[i].compare(act[j])
			pairs[i][j] = cell{d, ok}
		}
	}
	// cost[i][j]: the fewest differences aligning exp[i:] with act[j:].
	cost := make([][]int, n+1)
	for i := range cost {
		cost[i] = make([]int, m+1)
	}
	for i := n; i >= 0; i-- {
		for j := m; j >= 0; j-- {
			switch {
			case i == n:
				cost[i][j] = m - j
			case j == m:
				cost[i][j] = n - i
			default:
				c := min(cost[i+1][j], cost[i][j+1]) + 1
				if p := pairs[i][j]; p.ok {
					d := 0
					if len(p.diffs) > 0 {
						d = 1
					}
					c = min(c, cost[i+1][j+1]+d)
				}
				cost[i][j] = c
			}
		}
	}
	var ops []Op
	i, j := 0, 0
	for i < n || j < m {
		if i < n && j < m && pairs[i][j].ok {
			d := 0
			if len(pairs[i][j].diffs) > 0 {
				d = 1
			}
			if cost[i][j] == cost[i+1][j+1]+d {
				k := OpMatch
				if d == 1 {
					k = OpMismatch
				}
				ops = append(ops, Op{Kind: k, Expected: i, Actual: j, Diffs: pairs[i][j].diffs})
				i, j = i+1, j+1
				continue
			}
		}
		if i < n && (j == m || cost[i][j] == cost[i+1][j]+1) {
			ops = append(ops, Op{Kind: OpMissing, Expected: i, Actual: -1})
			i++
			continue
		}
		ops = append(ops, Op{Kind: OpUnexpected, Expected: -1, Actual: j})
		j++
	}
	return ops
}

// compare tells whether a may be the action e expects (same kind, same
// rule when e gives one) and which of the fields e gives differ.
func (e *Expectation) compare(a Actual) ([]FieldDiff, bool) {
	if a.Request.Kind != e.Kind || (e.Rule != "" && e.Rule != a.Rule) {
		return nil, false
	}
	var diffs []FieldDiff
	add := func(field, want, got string) { diffs = append(diffs, FieldDiff{field, want, got}) }
	if e.At != nil && *e.At != a.At {
		add("at", FormatDuration(*e.At), FormatDuration(a.At))
	}
	if e.OnClear != nil && *e.OnClear != a.OnClear {
		add("on_clear", fmt.Sprint(*e.OnClear), fmt.Sprint(a.OnClear))
	}
	var fields []actions.Field
	if a.Request.Action != nil {
		fields = a.Request.Action.Fields()
	}
	for _, want := range e.Fields {
		compareExpected(fields, want, add)
	}
	return diffs, true
}

// compareExpected compares a field the action has under want's name, or
// else each of want's entries (a mapping written for fields the action
// keeps one per entry: headers, properties.user).
func compareExpected(fields []actions.Field, want ExpectedField, add func(field, want, got string)) {
	if _, ok := field(fields, want.Name); !ok && len(want.Sub) > 0 {
		for _, sub := range want.Sub {
			compareExpected(fields, sub, add)
		}
		return
	}
	compareField(fields, want, add)
}

// field returns the action's field of the given name; the part after a
// "key." prefix (a header name) matches in any case.
func field(fields []actions.Field, name string) (actions.Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	if group, sub, ok := strings.Cut(name, "."); ok {
		for _, f := range fields {
			if g, s, ok := strings.Cut(f.Name, "."); ok && g == group && strings.EqualFold(s, sub) {
				return f, true
			}
		}
	}
	return actions.Field{}, false
}

func compareField(fields []actions.Field, want ExpectedField, add func(field, want, got string)) {
	got, ok := field(fields, want.Name)
	if !ok {
		add(want.Name, want.Value.show(nil), "(not set)")
		return
	}
	if want.Value.matches([]byte(got.Value)) || got.Fold && strings.EqualFold(want.Value.Text, got.Value) || got.Bool && sameBool(want.Value.Text, got.Value) {
		return
	}
	w, g := want.Value.show(got.Redact), got.Show(got.Value, nil)
	if got.Text || want.Value.IsJSON {
		g = Text([]byte(g))
	}
	if w == g || got.Redact != nil && strings.TrimSuffix(w, "  (compared as JSON)") == g {
		g += "  (differs in a secret part, not shown)"
	}
	add(want.Name, w, g)
}

// sameBool reports whether an expected true/false written as YAML allows
// (yes, on, True) is the boolean the action's field holds.
func sameBool(want, got string) bool {
	if got != "true" && got != "false" {
		return false
	}
	switch strings.ToLower(want) {
	case "true", "yes", "on":
		return got == "true"
	case "false", "no", "off":
		return got == "false"
	}
	return false
}

func (v *Value) matches(got []byte) bool {
	if !v.IsJSON {
		return v.Text == string(got)
	}
	var g any
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	return reflect.DeepEqual(v.JSON, g)
}

// show returns the expected value as displayed, redacted as the field it
// is compared with redacts (nil: as it is).
func (v *Value) show(redact func(string) string) string {
	t := v.Text
	if redact != nil {
		t = redact(t)
	}
	if v.IsJSON {
		return t + "  (compared as JSON)"
	}
	return Text([]byte(t))
}

// String renders an expectation as the fields it gives, on one line:
// "door-left-open publish topic=alert/door/back payload=…".
func (e *Expectation) String() string {
	var parts []string
	if e.Rule != "" {
		parts = append(parts, e.Rule)
	}
	if e.At != nil {
		parts = append(parts, "at="+FormatDuration(*e.At))
	}
	if e.OnClear != nil && *e.OnClear {
		parts = append(parts, "on_clear:")
	}
	parts = append(parts, e.Kind.String())
	var redact func(name string) func(string) string
	if e.Kind != nil {
		redact = e.Kind.Redact
	}
	for _, f := range e.Fields {
		items := []ExpectedField{f}
		if len(f.Sub) > 0 {
			items = f.Sub
		}
		for _, it := range items {
			var r func(string) string
			if redact != nil {
				r = redact(it.Name)
			}
			t := it.Value.Text
			if r != nil {
				t = r(t)
			}
			if !it.Value.IsJSON {
				t = Text([]byte(t))
			}
			parts = append(parts, it.Name+"="+t)
		}
	}
	return strings.Join(parts, " ")
}

// WriteResult writes a case's report: nothing for a passing case unless
// verbose; for a failing one its name and place, then every expected and
// actual action lined up:
//
//	--- FAIL: door left open (examples/alerting/door-open_test.yaml:4)
//	    ✓ at 5m  door-left-open  publish alert/door/garage qos=1 retain=true payload=…
//	    ✗ at 5m  door-left-open  log warn: garage open for 5 minutes
//	               message  expected: garage open for five minutes
//	                        got:      garage open for 5 minutes
//	    + at 7m  door-left-open  on_clear: publish alert/door/garage …   (unexpected)
//	    - missing  door-left-open publish topic=alert/door/back   (expect at line 21)
//
// With verbose, every message and timer of the case comes first, with the
// rules each reached and why they did or did not fire.
func WriteResult(w io.Writer, rs *rules.RuleSet, res *Result, verbose bool) {
	c := res.Case
	where := fmt.Sprintf("%s:%d", c.File, c.Line)
	if verbose {
		fmt.Fprintf(w, "=== RUN   %s (%s)\n", c.Name, where)
		p := &Printer{W: w, Rules: rs, Start: res.Start, Explain: true, Indent: "    "}
		for _, s := range res.Steps {
			p.Step(s)
		}
	}
	if res.Passed {
		if verbose {
			fmt.Fprintf(w, "--- PASS: %s (%d %s)\n", c.Name, len(res.Actual), plural(len(res.Actual), "action"))
		}
		return
	}
	fmt.Fprintf(w, "--- FAIL: %s (%s)\n", c.Name, where)
	for _, e := range res.Errors {
		fmt.Fprintf(w, "    %s\n", e)
	}
	atWidth, ruleWidth := 0, 0
	for _, a := range res.Actual {
		atWidth = max(atWidth, len(FormatDuration(a.At)))
		ruleWidth = max(ruleWidth, len(a.Rule))
	}
	const mark = "    "
	for _, op := range res.Ops {
		switch op.Kind {
		case OpMatch, OpMismatch, OpUnexpected:
			a := res.Actual[op.Actual]
			sign := map[OpKind]string{OpMatch: "✓", OpMismatch: "✗", OpUnexpected: "+"}[op.Kind]
			tail := ""
			if op.Kind == OpUnexpected {
				tail = "   (unexpected: not in expect)"
			}
			fmt.Fprintf(w, "%s%s at %-*s  %-*s  %s%s\n", mark, sign, atWidth, FormatDuration(a.At), ruleWidth, a.Rule, a, tail)
			if op.Kind == OpMismatch {
				indent := strings.Repeat(" ", len(mark)+2+3+atWidth+2)
				fw := 0
				for _, d := range op.Diffs {
					fw = max(fw, len(d.Field))
				}
				for _, d := range op.Diffs {
					fmt.Fprintf(w, "%s%-*s  expected: %s\n", indent, fw, d.Field, d.Want)
					fmt.Fprintf(w, "%s%-*s  got:      %s\n", indent, fw, "", d.Got)
				}
				fmt.Fprintf(w, "%s(expect at line %d)\n", indent, c.Expect[op.Expected].Line)
			}
		case OpMissing:
			e := &c.Expect[op.Expected]
			fmt.Fprintf(w, "%s- missing: %s   (expect at line %d)\n", mark, e, e.Line)
		}
	}
	if len(res.Ops) == 0 {
		fmt.Fprintf(w, "%s(no action expected, none ran)\n", mark)
	}
	// Errors met while running often say why an action is missing.
	for _, s := range res.Steps {
		for _, ev := range s.Events {
			if ev.Err != "" {
				fmt.Fprintf(w, "%s! at %s  %s: %s\n", mark, Offset(res.Start, ev.Time), ev.Rule, ev.Explain())
			}
			for _, n := range ev.Notes {
				fmt.Fprintf(w, "%s! at %s  %s: %s\n", mark, Offset(res.Start, ev.Time), ev.Rule, n)
			}
		}
	}
	if !verbose {
		fmt.Fprintf(w, "%s(mqtt-rules test -v shows every message and why each rule did or did not fire)\n", mark)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
