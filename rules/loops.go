package rules

import (
	"fmt"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// TopicPattern returns an MQTT filter that covers every topic the template
// can render: the template itself when it is literal, else its literal
// levels before the first {{ }} followed by # (an expression may render
// any text, slashes included). It errs on the side of matching more.
func TopicPattern(t *Template) string {
	if t.IsLiteral() {
		return t.Source
	}
	prefix := t.parts[0].text
	full := prefix[:strings.LastIndexByte(prefix, '/')+1] // whole levels only
	return full + "#"
}

// findLoops decides, for every publish action of the set, whether its topic
// can match a filter of the set, and so whether the set can feed its own
// publishes back to itself (SPEC §9). A set that cannot pays nothing per
// message for loop detection.
func (rs *RuleSet) findLoops() {
	for _, r := range rs.Rules {
		for _, acts := range [][]Action{r.Actions, r.OnClear} {
			for i := range acts {
				p := acts[i].Publish
				if p == nil {
					continue
				}
				p.MayLoop = rs.index.Overlaps(TopicPattern(p.Topic))
				rs.mayLoop = rs.mayLoop || p.MayLoop
			}
		}
	}
}

// MayLoop reports whether a publish of the set can match a filter of the
// set, so that the engine must watch for its own messages coming back.
func (rs *RuleSet) MayLoop() bool { return rs.mayLoop }

// Warning is a problem that does not stop a rule set from loading.
type Warning struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: rule %q: %s", w.File, w.Line, w.Rule, w.Msg)
}

// Warnings lists rules whose publish topic can match one of their own
// filters: each firing may trigger the rule again (the engine cuts such
// chains at --max-hops, but it is most likely a mistake).
func (rs *RuleSet) Warnings() []Warning {
	var out []Warning
	for _, r := range rs.Rules {
		var own topic.Index[int]
		for i, f := range r.Filters {
			own.Add(f, i)
		}
		for _, acts := range [][]Action{r.Actions, r.OnClear} {
			for _, a := range acts {
				if a.Publish == nil {
					continue
				}
				pat := TopicPattern(a.Publish.Topic)
				if own.Overlaps(pat) {
					out = append(out, Warning{File: r.File, Line: a.Line, Rule: r.Name,
						Msg: fmt.Sprintf("publish topic %q can match the rule's own topic filter: a loop (cut at --max-hops)", a.Publish.Topic.Source)})
				}
			}
		}
	}
	return out
}

// Reaches reports whether a message on the topic whose levels are given
// would reach an enabled rule of the set.
func (rs *RuleSet) Reaches(levels []string) bool { return rs.index.Any(levels) }
