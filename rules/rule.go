// Package rules loads YAML rule files into an immutable, compiled RuleSet:
// topic filters parsed and indexed, conditions and templates compiled with
// the expression environment of docs/rules.md, every error located at
// file:line:col. A set loads whole or not at all.
package rules

import (
	"slices"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/schedule"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// Rule is one compiled rule. It is immutable once loaded.
type Rule struct {
	Name        string
	Description string
	Broker      string // the broker its topics and state() topics come from (docs/brokers.md); "": the default one
	File        string // where the rule is defined
	Line        int
	Filters     []*topic.Filter
	Captures    []string // every capture name of every filter, in order of first appearance
	When        *Program // nil: always
	Key         *Template
	ClearWhen   *Program
	For         time.Duration
	Cooldown    time.Duration
	Absent      time.Duration
	Enabled     bool
	Actions     []Action
	OnClear     []Action
	Windows     []WindowSpec // sliding windows per key, in written order

	// Timed triggers (docs/time.md): a cron schedule and a sun event, in
	// TimeZone (nil: the engine's --timezone).
	Schedule *schedule.Schedule
	Sun      *SunTrigger
	TimeZone *time.Location

	// Sequences: what a new firing does while an earlier one waits in a
	// delay step, and how many queued firings wait at most.
	Mode      Mode
	MaxQueued int

	// Repeat runs the actions again every Repeat while a key's episode
	// fires, at most MaxRepeats times (0: no limit) (docs/time.md).
	Repeat     time.Duration
	MaxRepeats int

	// Fingerprint identifies the rule's state-relevant definition (name,
	// filters, conditions, key, durations, whether it has on_clear): state
	// of a rule whose fingerprint is unchanged survives a reload. Changing
	// only an action's text keeps state, so an edited message does not
	// re-fire an alert that is already firing.
	Fingerprint string

	// Definition identifies the whole definition as written: it changes
	// with any edit of the rule, actions included (reload logs use it).
	Definition string

	// Index is the rule's position in its RuleSet.
	Index int

	// EnvValues are the values its file took from the environment through
	// ${NAME} (at least MinEnvValueLen bytes, longest first): webhook URLs
	// like Slack's carry a secret where no name says so, so whatever came
	// from the environment is masked wherever the rule's actions are shown
	// — logs, errors, dead letters, the status page, dry runs.
	EnvValues []string

	// NameValue is Name boxed once, for the environment's `rule`.
	NameValue any

	nameLine    int
	nameCol     int
	payload     payloadNeed // what of the payload the expressions read
	uses        Uses        // names read by When, Key, ClearWhen and the actions
	captureWild [][]int     // per filter, per capture: index into that filter's wildcards, or -1
	// captureLevel is, for a patterned filter, per capture the level that
	// binds it (its Prefix and Suffix).
	captureLevel [][]topic.Level
	world        []WorldRef // literal state()/states() arguments of its expressions
	delays       bool       // its actions or on_clear hold a delay step
}

// WindowSpec is one of a rule's windows (docs/world.md, "Windows"): per
// key, the numbers Value gives for the messages of the last Over.
type WindowSpec struct {
	Name       string
	Value      *Program
	Over       time.Duration
	MaxSamples int
}

// scope is what the rule's expressions see beyond the common environment.
func (r *Rule) scope() scope {
	sc := scope{captures: r.Captures}
	if len(r.Windows) > 0 {
		sc.windows = make([]string, len(r.Windows))
		for i, w := range r.Windows {
			sc.windows[i] = w.Name
		}
	}
	return sc
}

// Uses returns the environment names the rule's expressions read.
func (r *Rule) Uses() Uses { return r.uses }

// PayloadFields says what of the payload the rule's expressions read: when
// all is false, only the listed top-level fields of a JSON object payload
// (payload.value, payload["unit"]), so the engine may decode just those;
// otherwise the whole payload.
func (r *Rule) PayloadFields() (fields []string, all bool) {
	return r.payload.fields, r.payload.all
}

// Stateful reports whether the rule keeps state per key (docs/state.md):
// for, cooldown, absent, episodes, windows.
func (r *Rule) Stateful() bool {
	return r.For > 0 || r.Cooldown > 0 || r.Absent > 0 || r.ClearWhen != nil || len(r.OnClear) > 0 ||
		len(r.Windows) > 0 || r.Repeat > 0 || r.delays
}

// Episodic reports whether the rule fires once per episode per key (docs/state.md).
func (r *Rule) Episodic() bool {
	return r.For > 0 || r.ClearWhen != nil || len(r.OnClear) > 0
}

// SetCaptures sets the rule's capture names in vars for a message that
// matched its filter number filter, whose wildcards are given. A capture
// that only another filter defines is "", as is every capture of a timed
// evaluation (filter -1).
func (r *Rule) SetCaptures(vars map[string]any, filter int, wildcards []string) {
	for i, name := range r.Captures {
		if filter < 0 {
			vars[name] = "" // a timed evaluation matched no filter
		} else if w := r.captureWild[filter][i]; w >= 0 {
			v := wildcards[w]
			if r.Filters[filter].Patterned {
				// {room}_motion binds what is between the level's text.
				l := r.captureLevel[filter][i]
				v = v[len(l.Prefix) : len(v)-len(l.Suffix)]
			}
			vars[name] = v
		} else {
			vars[name] = ""
		}
	}
}

// Action is one step of a rule's actions or on_clear: a compiled action of
// some kind (see actions.Kind), or a delay (Kind and Spec nil).
type Action struct {
	Kind  *actions.Kind
	Spec  actions.Spec
	Delay time.Duration // a `- delay: D` step: the steps after it wait D
	Line  int           // where the action is defined

	// MayLoop tells whether the action publishes to a topic that can match
	// a filter of the rule set, so the message may come back to the engine
	// (see RuleSet.MayLoop).
	MayLoop bool
}

// RuleSet is a compiled, indexed set of rules. It is immutable: a reload
// builds a new one.
type RuleSet struct {
	Rules   []*Rule  // in load order: files sorted by path, rules in file order
	Files   []string // the rule files loaded
	index   topic.Index[ref]
	byName  map[string]*Rule
	mayLoop bool

	// Remember are the filters whose topics the engine remembers for
	// state() and states() (docs/world.md) on the default broker: every
	// literal argument of those calls, and every file's remember: list;
	// each once, sorted. RememberOn gives them for any broker.
	Remember []string
	// StatesFilters are the literal arguments of states() calls on the
	// default broker, each once: the engine keeps their matching topics
	// ready. StatesFiltersOn gives them for any broker.
	StatesFilters []string

	remember, states map[string][]string // by broker ("" the default)
}

// Brokers returns the brokers the set's rules use, "" for the default one,
// each once, sorted ("" first).
func (rs *RuleSet) Brokers() []string {
	out := []string{""}
	for _, r := range rs.Rules {
		out = append(out, r.Broker)
	}
	for b := range rs.remember {
		out = append(out, b)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RememberOn returns the remembered filters on a broker ("" the default).
func (rs *RuleSet) RememberOn(broker string) []string { return rs.remember[broker] }

// StatesFiltersOn returns the literal states() filters on a broker.
func (rs *RuleSet) StatesFiltersOn(broker string) []string { return rs.states[broker] }

// FiltersOn returns what the engine subscribes to on a broker ("" the
// default): the filters of the rules on it and its remembered filters,
// each once, sorted.
func (rs *RuleSet) FiltersOn(broker string) []string {
	out := slices.Clone(rs.remember[broker])
	for _, r := range rs.Rules {
		if r.Broker != broker {
			continue
		}
		for _, f := range r.Filters {
			out = append(out, f.MQTT)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type ref struct {
	rule, filter int32
}

// Match is a rule whose filter matched a topic.
type Match struct {
	Rule   *Rule
	Filter int // index in Rule.Filters of the first filter that matched
}

// match appends to dst the rules with a filter matching the topic
// whose levels are given (see topic.Split): each rule once, with its first
// matching filter in written order, in rule set order. refs is scratch
// space, returned for reuse.
func (rs *RuleSet) match(levels []string, dst []Match, refs []ref) ([]Match, []ref) {
	refs = rs.index.Match(levels, refs[:0])
	if len(refs) > 1 {
		slices.SortFunc(refs, func(a, b ref) int {
			if a.rule != b.rule {
				return int(a.rule - b.rule)
			}
			return int(a.filter - b.filter)
		})
	}
	last := int32(-1)
	for _, r := range refs {
		if r.rule == last {
			continue
		}
		rule := rs.Rules[r.rule]
		if f := rule.Filters[r.filter]; f.Patterned && !f.MatchPatterns(levels) {
			continue // {room}_motion: the + matched a level without _motion
		}
		last = r.rule
		dst = append(dst, Match{Rule: rule, Filter: int(r.filter)})
	}
	return dst, refs
}

// Matcher finds the rules a topic reaches. It holds scratch space, so keep
// one per goroutine; the zero value is ready to use.
type Matcher struct {
	refs    []ref
	matches []Match
	levels  []string
}

// Match returns the rules of rs (disabled ones too) with a filter matching the topic,
// each once, with its first matching filter in written order, in rule set
// order; and the topic's levels. Both slices are valid until the next call.
func (m *Matcher) Match(rs *RuleSet, name string) ([]Match, []string) {
	m.levels = topic.Split(name, m.levels[:0])
	m.matches, m.refs = rs.match(m.levels, m.matches[:0], m.refs)
	return m.matches, m.levels
}

// Filters returns what the engine subscribes to on the default broker:
// the MQTT filters of its rules — disabled ones too, which control may
// enable at run time — and its remembered filters (see Remember), each
// once, sorted. FiltersOn gives them for any broker.
func (rs *RuleSet) Filters() []string { return rs.FiltersOn("") }

// Rule returns the rule with the given name, or nil.
func (rs *RuleSet) Rule(name string) *Rule { return rs.byName[name] }
