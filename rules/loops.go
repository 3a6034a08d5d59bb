package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// TopicPattern returns an MQTT filter that covers every topic the
// template of rule r can render: a literal template is itself; a level
// holding an expression that renders one level — a {name} capture,
// wildcards[N] of a +, segments[N] — becomes +; from the first expression
// that may render several levels (any other one: it may hold "/") on, #.
// It errs on the side of matching more.
func TopicPattern(t *Template, r *Rule) string {
	if t.IsLiteral() {
		return t.src
	}
	const one, many = "\x00", "\x01" // cannot occur in a valid topic
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.text)
		if p.prog != nil {
			if singleLevel(strings.TrimSpace(p.prog.Source), r) {
				b.WriteString(one)
			} else {
				b.WriteString(many)
			}
		}
	}
	levels := strings.Split(b.String(), "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, many):
			return strings.Join(append(levels[:i:i], "#"), "/")
		case strings.Contains(l, one):
			levels[i] = "+"
		}
	}
	return strings.Join(levels, "/")
}

var indexExpr = regexp.MustCompile(`^(wildcards|segments)\[\s*(\d+)\s*\]$`)

// singleLevel reports whether an expression of rule r renders at most one
// topic level whatever the message: a capture bound to a + level in every
// filter that defines it, wildcards[N] where the Nth wildcard of every
// filter is a +, or segments[N].
func singleLevel(src string, r *Rule) bool {
	if slices.Contains(r.Captures, src) {
		for _, f := range r.Filters {
			for _, l := range f.Levels {
				if l.Name == src && l.Kind == topic.Hash {
					return false
				}
			}
		}
		return true
	}
	m := indexExpr.FindStringSubmatch(src)
	if m == nil {
		return false
	}
	if m[1] == "segments" {
		return true
	}
	n, _ := strconv.Atoi(m[2])
	for _, f := range r.Filters {
		w := 0
		for _, l := range f.Levels {
			if l.Kind == topic.Literal {
				continue
			}
			if w == n && l.Kind == topic.Hash {
				return false
			}
			w++
		}
	}
	return true
}

// findLoops decides, for every publish action of the set, whether its topic
// can match a filter of the set, and so whether the set can feed its own
// publishes back to itself (docs/reliability.md, "Loops"). A set that cannot pays nothing per
// message for loop detection.
func (rs *RuleSet) findLoops() {
	for _, r := range rs.Rules {
		for _, acts := range [][]Action{r.Actions, r.OnClear} {
			for i := range acts {
				t := publishTopic(&acts[i])
				if t == nil {
					continue
				}
				acts[i].MayLoop = rs.index.Overlaps(TopicPattern(t, r))
				rs.mayLoop = rs.mayLoop || acts[i].MayLoop
			}
		}
	}
}

// publishTopic returns the topic an action publishes its message to, when
// its kind publishes to MQTT (see actions.PublishSpec.PublishTopic).
func publishTopic(a *Action) *Template {
	p, ok := a.Spec.(interface{ PublishTopic() actions.Template })
	if !ok {
		return nil
	}
	t, _ := p.PublishTopic().(*Template)
	return t
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
				t := publishTopic(&a)
				if t == nil {
					continue
				}
				pat := TopicPattern(t, r)
				if own.Overlaps(pat) {
					out = append(out, Warning{File: r.File, Line: a.Line, Rule: r.Name,
						Msg: fmt.Sprintf("%s topic %q can match the rule's own topic filter: a loop (cut at --max-hops)", a.Kind, t.src)})
				}
			}
		}
	}
	return out
}

// Reaches reports whether a message on the topic whose levels are given
// would reach an enabled rule of the set.
func (rs *RuleSet) Reaches(levels []string) bool { return rs.index.Any(levels) }
