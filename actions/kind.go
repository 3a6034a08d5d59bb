package actions

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
)

// Kind is one action kind (log, publish, webhook, …), described in one
// place: its file in this package declares its YAML keys, compiles and
// checks them (Compile), and its compiled and rendered types say how it
// renders, runs, and is shown by the HTTP API, the status page, dry runs
// and rule tests. The loader, the engine, the counters and the status page
// work through Kind, Spec and Action and never switch on kinds, so adding
// a kind touches its own file, its tests, the schema and the docs.
type Kind struct {
	// Name is the action's key in rule files and its `action` label in
	// metrics.
	Name string
	// Keys are the keys its mapping takes, in the order docs list them.
	Keys []string
	// Shorthand is the key that a scalar value stands for (log's
	// "message": `- log: text`); "" when the action must be a mapping.
	Shorthand string
	// Synonyms maps keys users write by mistake to the key meant
	// (webhook's "payload" to "body"), for "did you mean" hints beyond
	// spelling.
	Synonyms map[string]string
	// Gate names the command-line flag without which actions of this kind
	// are refused at load ("--allow-exec"); "" for none.
	Gate string
	// GateWhy says what actions of the kind do that needs Gate, to end
	// "exec actions …" in the load error ("run programs on this machine").
	GateWhy string
	// Redact, when set, returns how a field of this kind's actions is
	// shown (see Field.Redact) by its name, or nil when it is shown as it
	// is: rule tests show the values they expect with it.
	Redact func(field string) func(string) string
	// Compile reads one action of this kind and returns it compiled; it
	// reports every problem through d and returns nil when there was one.
	Compile func(d *Decoder) Spec

	id int
}

// String returns the kind's name.
func (k *Kind) String() string {
	if k == nil {
		return "unknown"
	}
	return k.Name
}

// ID is the kind's position among all kinds (0, 1, …; see NumKinds), for
// per-kind counters kept in slices.
func (k *Kind) ID() int { return k.id }

// builtin holds every kind of this package, in registration order. Each
// kind's file registers it with a package-level var, so the list needs no
// editing when a kind is added.
var builtin []*Kind

func register(k *Kind) *Kind {
	k.id = len(builtin)
	builtin = append(builtin, k)
	return k
}

// Kinds returns every action kind, in ID order.
func Kinds() []*Kind { return slices.Clone(builtin) }

// NumKinds returns how many action kinds there are (IDs are below it).
func NumKinds() int { return len(builtin) }

// Gates returns the flags that unlock gated kinds (see Kind.Gate): a dry
// run, which runs nothing, loads with all of them.
func Gates() []string {
	var out []string
	for _, k := range builtin {
		if k.Gate != "" {
			out = append(out, k.Gate)
		}
	}
	return out
}

// Lookup returns the kind with the given name, or nil.
func Lookup(name string) *Kind {
	for _, k := range builtin {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Names returns the kinds' names, in ID order.
func Names() []string {
	out := make([]string, len(builtin))
	for i, k := range builtin {
		out[i] = k.Name
	}
	return out
}

// NameList returns the names as prose: "exec, log, notify, publish or webhook".
func NameList() string {
	names := Names()
	slices.Sort(names)
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Spec is a compiled action: what the loader made of one action of a rule
// file. It is immutable and shared by every firing.
type Spec interface {
	// Templates returns every template the action renders, so the loader
	// learns which names of the environment a rule reads.
	Templates() []Template
	// Render evaluates the action's templates for one firing. payload is
	// the triggering message's payload (nil for a timed firing), which
	// kinds send when the rule gives no text of their own.
	Render(r Renderer, payload []byte) (Action, error)
	// Describe returns the action as written, for /api/rules/{name}, the
	// status page and `mqtt-rules test`; secret parts are marked or
	// redacted (see Field).
	Describe() []Field
}

// Action is a rendered action of one firing, ready to run.
type Action interface {
	// Fields returns what dry runs print and rule tests compare, in the
	// order they are shown (see Field).
	Fields() []Field
	// run executes the action on x and reports its outcome once, through
	// x's Reporter, from run itself or later from another goroutine. It
	// must not block on I/O.
	run(x *Executor, req *Request, once *reportOnce)
}

// Field is one named value of an action, for people: dry runs print them,
// rule tests compare them by name, the status page and /api show them.
type Field struct {
	// Name is the key as rule files write it ("topic", "payload"); a value
	// of a mapping key is "key.name" ("headers.Authorization").
	Name string
	// Value is the value; rule tests compare it. It may be a secret: it is
	// shown through Show only.
	Value string
	// Redact, when set, is how any value of this field is shown: a URL
	// with its secret parts hidden, "[REDACTED]" for a secret header.
	Redact func(string) string
	// Bare fields are shown without their name (a publish's topic, a
	// webhook's method and URL, a log's level), first.
	Bare bool
	// Quiet fields are left out of one-line summaries (a webhook's
	// timeout and retries).
	Quiet bool
	// Text marks free text (a payload, a body, a message): shown last and
	// over several lines, compared as JSON when a test gives JSON.
	Text bool
	// JSON marks a value that is JSON (a list of arguments): a test that
	// gives a YAML list or mapping compares it as JSON.
	JSON bool
	// Fold makes rule tests compare the value in any case (an HTTP
	// method, a log level).
	Fold bool
	// Bool marks a true/false value: a rule test may expect it written as
	// YAML allows (yes, on, True).
	Bool bool
	// Note stands in for an absent value ("the message's payload").
	Note string
}

// Show returns value, a value of the field, as displayed: redacted as the
// field says, with every one of secrets masked (see Mask).
func (f Field) Show(value string, secrets []string) string {
	if f.Redact != nil {
		value = f.Redact(value)
	}
	return Mask(value, secrets)
}

// FormatDuration writes a duration the way rule files do: 5m, 1h30m, 30s,
// 1.5s, 0s (Go's String without the trailing zero units).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Template is a compiled template of a rule file ({{ expr }} parts in
// text). The rules package compiles them; a Renderer evaluates them.
type Template interface {
	// Source returns the template as written.
	Source() string
	// IsLiteral reports whether it has no {{ }} parts, so rendering it
	// always gives Source.
	IsLiteral() bool
}

// Renderer evaluates templates in the environment of one firing.
type Renderer interface {
	// Render returns the template rendered.
	Render(t Template) (string, error)
	// Append renders the template onto dst.
	Append(dst []byte, t Template) ([]byte, error)
}

// Decoder reads the YAML of one action for its Kind's Compile: it reports
// problems at their file:line:col, compiles templates, and keeps one root
// cause to one error (a key whose value failed is not also "missing").
type Decoder struct {
	// Node is the action's value (the mapping under `publish:`, or a
	// scalar for a kind with a Shorthand).
	Node *yaml.Node
	// Where is the action's path for messages: "actions[0].publish".
	Where string
	// Brokers are the names of the config's brokers ("default" is
	// always one; docs/brokers.md), and RuleBroker the broker of the
	// action's rule ("" for the default one).
	Brokers    []string
	RuleBroker string
	// AnyBroker accepts any broker name: a dry run connects to none.
	AnyBroker bool

	rule     string
	kind     *Kind
	yr       *yamlnode.Reader
	template func(n *yaml.Node, key string) Template
	report   func(n *yaml.Node, msg string)
	failed   bool
	short    bool // the value is a scalar standing for the kind's Shorthand key

	// What reported problems blame, so that Missing does not report a
	// second error for the same cause: keys whose value failed or that
	// an unknown key was probably meant as, or the whole action.
	blamed []string
	whole  bool
}

// NewDecoder returns a Decoder for one action of kind k whose value is n.
// rule names the rule in messages; yr reads scalars; template compiles a
// template (reporting its own errors, nil on failure); report records an
// error at a node. The rules package calls it.
func NewDecoder(k *Kind, n *yaml.Node, where, rule string, yr *yamlnode.Reader,
	template func(n *yaml.Node, key string) Template, report func(n *yaml.Node, msg string)) *Decoder {
	d := &Decoder{Node: n, Where: where, rule: rule, kind: k, template: template}
	d.report = func(n *yaml.Node, msg string) {
		d.failed = true
		report(n, msg)
	}
	r := *yr
	r.Report = func(n *yaml.Node, _ string, msg string) { d.report(n, msg) }
	d.yr = &r
	return d
}

// Failed reports whether a problem was reported for the action.
func (d *Decoder) Failed() bool { return d.failed }

// Errorf reports a problem at node n, prefixed with the action's path.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	d.report(n, d.Where+": "+fmt.Sprintf(format, args...))
}

// KeyErrorf reports a problem with key's value at node n:
// "actions[0].publish.topic: …".
func (d *Decoder) KeyErrorf(n *yaml.Node, key, format string, args ...any) {
	d.report(n, d.path(key)+": "+fmt.Sprintf(format, args...))
	d.blame(key)
}

// blame records that a reported problem concerns key ("": none).
func (d *Decoder) blame(key string) {
	if key != "" {
		d.blamed = append(d.blamed, key)
	}
}

// blameIf blames key when ok is false (a read of its value failed) and
// returns ok.
func (d *Decoder) blameIf(ok bool, key string) bool {
	if !ok {
		d.failed = true
		d.blame(key)
	}
	return ok
}

// Missing reports that a required key is missing, unless a problem
// already reported explains it: its value failed to read, an unknown key
// was probably meant as it (`topc:`, `cmd:`), or the action is not a
// mapping at all. Other problems of the action do not hide it.
func (d *Decoder) Missing(key, what string) {
	if d.whole || slices.Contains(d.blamed, key) {
		return
	}
	msg := d.Where + ": " + key + " missing"
	if what != "" {
		msg += " (" + what + ")"
	}
	d.report(d.Node, msg)
}

func (d *Decoder) path(key string) string {
	if key == "" || d.short && key == d.kind.Shorthand {
		return d.Where
	}
	return d.Where + "." + key
}

// Pairs returns the pairs of the action's mapping, reporting keys the kind
// does not take — with a suggestion from its keys, its synonyms, or what
// the key means for another kind — and keys given twice. A scalar value
// of a kind with a Shorthand reads as that one key. Anything else is
// reported and gives nil.
func (d *Decoder) Pairs() []yamlnode.Pair {
	n := d.Node
	if n.Kind == yaml.ScalarNode && d.kind.Shorthand != "" && n.Tag != "!!null" {
		d.short = true
		return []yamlnode.Pair{{Key: &yaml.Node{Kind: yaml.ScalarNode, Value: d.kind.Shorthand, Line: n.Line, Column: n.Column}, Value: n}}
	}
	if n.Kind != yaml.MappingNode {
		shape := "a mapping of " + strings.Join(d.kind.Keys, ", ")
		if d.kind.Shorthand != "" {
			shape = "a string (its " + d.kind.Shorthand + ") or " + shape
		}
		d.Errorf(n, "must be %s, not %s", shape, yamlnode.KindName(n))
		d.whole = true
		return nil
	}
	var out []yamlnode.Pair
	for _, kv := range d.yr.Pairs(n, d.rule) {
		if !slices.Contains(d.kind.Keys, kv.Key.Value) {
			d.Errorf(kv.Key, "unknown key %q%s", kv.Key.Value, d.suggest(kv.Key.Value))
			if meant, ok := d.kind.Synonyms[kv.Key.Value]; ok {
				d.blame(meant)
			} else {
				d.blame(yamlnode.Closest(kv.Key.Value, d.kind.Keys))
			}
			continue
		}
		out = append(out, kv)
	}
	return out
}

// suggest returns a hint for an unknown key: a near spelling, a synonym, or
// where another kind takes that key.
func (d *Decoder) suggest(key string) string {
	if s := yamlnode.Suggest(key, d.kind.Keys); s != "" {
		return s
	}
	if meant, ok := d.kind.Synonyms[key]; ok {
		return fmt.Sprintf(" (did you mean %q? %s calls it %s)", meant, d.kind.Name, meant)
	}
	var others []string
	for _, k := range builtin {
		if k != d.kind && slices.Contains(k.Keys, key) {
			others = append(others, k.Name)
		}
	}
	if len(others) > 0 {
		return fmt.Sprintf(" (%s is a key of %s; %s takes %s)", key, strings.Join(others, " and "), d.kind.Name, strings.Join(d.kind.Keys, ", "))
	}
	return fmt.Sprintf(" (%s takes %s)", d.kind.Name, strings.Join(d.kind.Keys, ", "))
}

// Template compiles the value of key (at node n) as a template; nil when
// it failed (reported).
func (d *Decoder) Template(n *yaml.Node, key string) Template {
	t := d.template(n, d.path(key))
	d.blameIf(t != nil, key)
	return t
}

// Str reads key's value as a string (${ENV} expanded).
func (d *Decoder) Str(n *yaml.Node, key string) (string, bool) {
	s, ok := d.yr.Str(n, d.rule, d.path(key))
	return s, d.blameIf(ok, key)
}

// Int reads key's value as a whole number from lo to hi.
func (d *Decoder) Int(n *yaml.Node, key string, lo, hi int) (int, bool) {
	v, ok := d.yr.Int(n, d.rule, d.path(key), lo, hi)
	return v, d.blameIf(ok, key)
}

// Bool reads key's value as true or false.
func (d *Decoder) Bool(n *yaml.Node, key string) (bool, bool) {
	v, ok := d.yr.Bool(n, d.rule, d.path(key))
	return v, d.blameIf(ok, key)
}

// Duration reads key's value as a positive Go duration.
func (d *Decoder) Duration(n *yaml.Node, key string) (time.Duration, bool) {
	v, ok := d.yr.Duration(n, d.rule, d.path(key), false)
	return v, d.blameIf(ok, key)
}

// Broker reads key's value as the name of one of the config's brokers
// ("" for "default").
func (d *Decoder) Broker(n *yaml.Node, key string) (string, bool) {
	s, ok := d.Str(n, key)
	if !ok {
		return "", false
	}
	if s == "default" {
		return "", true
	}
	if !d.AnyBroker && !slices.Contains(d.Brokers, s) {
		known := append([]string{"default"}, d.Brokers...)
		d.KeyErrorf(n, key, "no broker %q in the config (brokers: %s)%s", s, strings.Join(known, ", "), yamlnode.Suggest(s, known))
		return "", false
	}
	return s, true
}

// Mapping returns the pairs of key's value, which must be a mapping.
func (d *Decoder) Mapping(n *yaml.Node, key, what string) ([]yamlnode.Pair, bool) {
	if n.Kind != yaml.MappingNode {
		d.KeyErrorf(n, key, "must be a mapping of %s, not %s", what, yamlnode.KindName(n))
		return nil, false
	}
	return d.yr.Pairs(n, d.rule), true
}

// List returns the items of key's value, which must be a list; a scalar
// reads as a list of one when single is true.
func (d *Decoder) List(n *yaml.Node, key, what string, single bool) ([]*yaml.Node, bool) {
	switch {
	case n.Kind == yaml.SequenceNode:
		out := make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			out[i] = yamlnode.Resolve(c)
		}
		return out, true
	case single && n.Kind == yaml.ScalarNode && n.Tag != "!!null":
		return []*yaml.Node{n}, true
	}
	d.KeyErrorf(n, key, "must be a list of %s, not %s", what, yamlnode.KindName(n))
	return nil, false
}
