package rules

import (
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/window"
)

// Names of the expression environment (docs/rules.md, "Conditions"). The engine sets them in an
// Evaluator's Vars before evaluating a rule's programs and templates.
const (
	VarTopic     = "topic"      // string: the message topic
	VarSegments  = "segments"   // []string: the topic split on "/"
	VarWildcards = "wildcards"  // []string: what each wildcard of the matching filter matched
	VarPayload   = "payload"    // any: the payload decoded as JSON, else the payload as a string
	VarRaw       = "raw"        // string: the payload bytes
	VarQoS       = "qos"        // int
	VarRetained  = "retained"   // bool
	VarNow       = "now"        // time.Time: when the engine received the message
	VarRule      = "rule"       // string: the rule's name
	VarKey       = "key"        // string: the state key
	VarPrev      = "prev"       // map[string]any or nil: the previous message with the same key
	VarFired     = "fired"      // map[string]any or nil: the message that last fired the rule for the key
	VarWindows   = "windows"    // map[string]any: the rule's windows for the key, by name (see window.Stats)
	VarTrigger   = "trigger"    // string: what started the evaluation: message, schedule, sun or control
	VarSun       = "sun"        // sun.Value or nil: the sun now, when a location is set
	VarRepeat    = "repeat"     // int: 0 for a firing, 1, 2, … for its repeats
	VarProps     = "properties" // Properties: the message's MQTT 5 properties (empty under 3.1.1)

	// FuncState and FuncStates are functions of the environment:
	// state(TOPIC) and states(FILTER) read the remembered topics (see
	// docs/world.md). The engine sets them as func(string) (any, error)
	// and func(string) ([]any, error).
	FuncState  = "state"
	FuncStates = "states"
)

// Uses is a set of environment names that a rule's expressions read, so
// that the engine computes only those (decoding a payload no rule looks at
// would be wasted work).
type Uses uint32

// The environment names, as bits of Uses.
const (
	UsesTopic Uses = 1 << iota
	UsesSegments
	UsesWildcards
	UsesPayload
	UsesRaw
	UsesQoS
	UsesRetained
	UsesNow
	UsesRule
	UsesKey
	UsesPrev
	UsesCaptures
	UsesFired
	UsesWindows
	UsesWorld // state() or states()
	UsesTrigger
	UsesSun
	UsesRepeat
	UsesProps
	UsesAll Uses = 1<<iota - 1
)

var varUses = map[string]Uses{
	VarTopic:     UsesTopic,
	VarSegments:  UsesSegments,
	VarWildcards: UsesWildcards,
	VarPayload:   UsesPayload,
	VarRaw:       UsesRaw,
	VarQoS:       UsesQoS,
	VarRetained:  UsesRetained,
	VarNow:       UsesNow,
	VarRule:      UsesRule,
	VarKey:       UsesKey,
	VarPrev:      UsesPrev,
	VarFired:     UsesFired,
	VarWindows:   UsesWindows,
	FuncState:    UsesWorld,
	FuncStates:   UsesWorld,
	VarTrigger:   UsesTrigger,
	VarSun:       UsesSun,
	VarRepeat:    UsesRepeat,
	VarProps:     UsesProps,
}

// baseTypes declares the type of every environment name for the checker.
var baseTypes = types.Map{
	VarTopic:     types.String,
	VarSegments:  types.TypeOf([]string{}),
	VarWildcards: types.TypeOf([]string{}),
	VarPayload:   types.Any,
	VarRaw:       types.String,
	VarQoS:       types.Int,
	VarRetained:  types.Bool,
	VarNow:       types.TypeOf(time.Time{}),
	VarRule:      types.String,
	VarKey:       types.String,
	VarPrev:      types.Any,
	VarFired:     types.Any,
	FuncState:    types.TypeOf(func(string) (any, error) { return nil, nil }),
	FuncStates:   types.TypeOf(func(string) ([]any, error) { return nil, nil }),
	VarTrigger:   types.String,
	VarSun:       fieldsType(reflect.TypeOf(sun.Value{})),
	VarRepeat:    types.Int,
	VarProps:     fieldsType(reflect.TypeOf(Properties{})),
}

// Properties is the environment's `properties`: a message's MQTT 5
// properties (docs/mqtt5.md). Under MQTT 3.1.1, and for a timed
// evaluation, every field is empty or nil.
type Properties struct {
	User            map[string]string `expr:"user" json:"user"` // the last value of a repeated name
	ContentType     string            `expr:"content_type" json:"content_type"`
	ResponseTopic   string            `expr:"response_topic" json:"response_topic"`
	CorrelationData string            `expr:"correlation_data" json:"correlation_data"`
	MessageExpiry   any               `expr:"message_expiry" json:"message_expiry"` // seconds (int), or nil
	PayloadFormat   any               `expr:"payload_format" json:"payload_format"` // 0 or 1, or nil
}

// windowsType is the type of `windows` for a rule with windows of the
// given names: a map from each name to its statistics.
func windowsType(names []string) types.Map {
	m := types.Map{}
	for _, n := range names {
		m[n] = statsType
	}
	return m
}

// statsType declares the fields of window.Stats by their expr names: the
// checker then knows windows.NAME.count and refuses windows.NAME.cnt.
var statsType = fieldsType(reflect.TypeOf(window.Stats{}))

// fieldsType declares a struct's fields by their expr tags (a struct type
// inside a types.Map is not supported by expr's checker); interface fields
// may hold anything, nil included.
func fieldsType(t reflect.Type) types.Map {
	m := types.Map{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Interface {
			m[f.Tag.Get("expr")] = types.Any
		} else {
			m[f.Tag.Get("expr")] = types.TypeOf(reflect.Zero(f.Type).Interface())
		}
	}
	return m
}

// reserved lists names a capture may not take: the environment of docs/rules.md,
// its two added functions and the language's keywords. Other expr
// built-ins (floor, type, count, …) are allowed: a capture named so hides
// that function in its own rule only, and calling it there is a load error.
func reserved(name string) bool {
	if name == FuncState || name == FuncStates {
		return false // functions, as expr's built-ins: a capture may hide them
	}
	if _, ok := baseTypes[name]; ok || name == VarWindows {
		return true
	}
	switch name {
	case "toJSON", "fromJSON", "let", "nil", "true", "false", "in", "not", "and", "or",
		"matches", "contains", "startsWith", "endsWith", "if", "else":
		return true
	}
	return false
}

// toJSON replaces expr's built-in of the same name, which indents: a
// template like {{ toJSON(payload) }} should publish compact JSON.
var toJSONOption = expr.Function("toJSON", func(params ...any) (any, error) {
	b, err := appendJSON(nil, params[0])
	return string(b), err
}, new(func(any) string))

// usage records which environment names an expression reads. It runs as an
// expr patcher, so it sees the tree before compilation; it changes nothing.
type usage struct {
	uses     Uses
	captures map[string]bool

	// payload reads: how often `payload` appears, and the constant
	// top-level fields read from it (payload.value, payload["value"]).
	payloadIdents int
	fieldReads    int
	fields        []string

	// world lists the state()/states() calls with a string literal
	// argument, the topics and filters the rule set remembers.
	world []WorldRef
}

// WorldRef is a state(TOPIC) or states(FILTER) call with a literal
// argument.
type WorldRef struct {
	Filter bool   // states(FILTER); else state(TOPIC)
	Arg    string // the topic or filter
	Off    int    // where the call starts in its expression (bytes)
}

func (u *usage) Visit(node *ast.Node) {
	if c, ok := (*node).(*ast.CallNode); ok {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok && (id.Value == FuncState || id.Value == FuncStates) && !u.captures[id.Value] && len(c.Arguments) == 1 {
			if s, ok := c.Arguments[0].(*ast.StringNode); ok {
				u.world = append(u.world, WorldRef{Filter: id.Value == FuncStates, Arg: s.Value, Off: c.Location().From})
			}
		}
		return
	}
	if m, ok := (*node).(*ast.MemberNode); ok {
		if id, ok := m.Node.(*ast.IdentifierNode); ok && id.Value == VarPayload {
			if s, ok := m.Property.(*ast.StringNode); ok {
				u.fieldReads++
				if !slices.Contains(u.fields, s.Value) {
					u.fields = append(u.fields, s.Value)
				}
			}
		}
		return
	}
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if id.Value == VarPayload {
		u.payloadIdents++
	}
	if b, ok := varUses[id.Value]; ok && !u.captures[id.Value] {
		u.uses |= b
	} else if id.Value == "$env" {
		u.uses |= UsesAll
	} else if u.captures[id.Value] {
		u.uses |= UsesCaptures
	}
}

// payloadNeed says what of the payload some expressions read: nothing, a
// few top-level fields of a JSON object, or all of it.
type payloadNeed struct {
	all    bool
	fields []string
}

func (u *usage) payload() payloadNeed {
	switch {
	case u.uses == UsesAll: // $env
		return payloadNeed{all: true}
	case u.payloadIdents == 0:
		return payloadNeed{}
	case u.payloadIdents > u.fieldReads:
		return payloadNeed{all: true}
	}
	return payloadNeed{fields: u.fields}
}

func (p *payloadNeed) add(q payloadNeed) {
	if p.all = p.all || q.all; p.all {
		p.fields = nil
		return
	}
	for _, f := range q.fields {
		if !slices.Contains(p.fields, f) {
			p.fields = append(p.fields, f)
		}
	}
}

// Evaluator runs a rule set's conditions and templates. It holds a VM and a
// scratch buffer, so it is not safe for concurrent use: keep one per
// goroutine. Vars is the environment; the caller sets the names of docs/rules.md ("Conditions")
// (the Var* constants and the rule's capture names) before each evaluation.
type Evaluator struct {
	Vars map[string]any
	vm   vm.VM
	buf  []byte
}

// NewEvaluator returns an Evaluator with an empty environment.
func NewEvaluator() *Evaluator {
	return &Evaluator{Vars: make(map[string]any, 16)}
}

// Condition evaluates a `when` or `clear_when` program; a nil program holds.
func (e *Evaluator) Condition(p *Program) (bool, error) {
	if p == nil {
		return true, nil
	}
	out, err := e.vm.Run(p.prog, e.Vars)
	if err != nil {
		return false, runError(err)
	}
	b, _ := out.(bool) // expr.AsBool at compile time makes this a bool
	return b, nil
}

// Value evaluates an expression that is not a condition (a window's
// value).
func (e *Evaluator) Value(p *Program) (any, error) {
	out, err := e.vm.Run(p.prog, e.Vars)
	if err != nil {
		return nil, runError(err)
	}
	return out, nil
}

// runError drops expr's multi-line source snippet from a run-time error,
// keeping one line fit for logs and traces.
func runError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}
