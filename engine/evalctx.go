package engine

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf8"
	"unsafe"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// evalCtx is the per-goroutine scratch space of message handling: the
// expression VM and environment, the matcher's buffers. The environment is
// built once per message and shared by every rule the message reaches; the
// names a rule set never reads are never computed.
type evalCtx struct {
	ev      *rules.Evaluator
	matcher rules.Matcher

	rs        *rules.RuleSet
	msg       *Message // &m while a message is handled, nil otherwise
	m         Message  // the message, copied: Handle's argument does not escape
	hop       int      // loop hop of msg (docs/reliability.md, "Loops")
	levels    []string
	pubLevels []string
	set       rules.Uses // message-wide names already in ev.Vars for msg
	wild      []string
	key       string
	filter    int      // the rule's filter that matched; -1 for a timed evaluation
	trig      trigKind // the environment's `trigger`
	repeat    int      // the environment's `repeat`

	// The payload as decoded so far for msg: whole (payloadSet), or as a
	// map of the top-level fields the rules read so far (partial, keys).
	payload    any
	payloadSet bool
	partial    map[string]any
	keys       []string
	spare      map[string]any // reused for partial: nothing keeps a payload past Handle

	e *Engine

	// state and states are the environment's functions over the
	// remembered topics of the rule's broker, bound to this context so
	// that they record the lookups of an evaluation.
	broker  string
	state   func(string) (any, error)
	states  func(string) ([]any, error)
	lookups []Lookup
	winVars map[string]any // the environment's `windows`, reused
	winSeen []WindowValue
}

func newEvalCtx() *evalCtx {
	c := &evalCtx{ev: rules.NewEvaluator()}
	c.state = func(t string) (any, error) {
		v, err := c.world().state(t)
		if len(c.lookups) < maxLookups {
			l := Lookup{Func: rules.FuncState, Arg: t}
			if err != nil {
				l.Err = err.Error()
			} else if sv, ok := v.(*StateValue); ok {
				l.Found = 1
				l.Value = sv.Raw[:cutUTF8(sv.Raw, previewLen)]
			}
			c.lookups = append(c.lookups, l)
		}
		return v, err
	}
	c.states = func(f string) ([]any, error) {
		v, err := c.world().states(f)
		if len(c.lookups) < maxLookups {
			l := Lookup{Func: rules.FuncStates, Arg: f, Found: len(v)}
			if err != nil {
				l.Err = err.Error()
			}
			c.lookups = append(c.lookups, l)
		}
		return v, err
	}
	return c
}

// world returns the remembered topics of the rule being evaluated.
func (c *evalCtx) world() *world {
	if w := c.e.active.Load().world(c.broker); w != nil {
		return w
	}
	return c.e.worlds[""] // cannot happen: every broker of the set has one
}

// cutUTF8 returns how much of s, at most n bytes, ends on a rune boundary.
func cutUTF8(s string, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// begin starts a message: it finds the rules the topic reaches.
func (c *evalCtx) begin(rs *rules.RuleSet, msg *Message) []rules.Match {
	c.rs = rs
	c.m = *msg
	c.msg = &c.m
	c.hop = 0
	c.set = 0
	c.trig, c.repeat = trigMessage, 0
	c.payload, c.payloadSet = nil, false
	c.partial, c.keys = nil, c.keys[:0]
	matches, levels := c.matcher.Match(rs, msg.Topic)
	c.levels = levels
	return matches
}

// end drops references to the message. The environment keeps the last
// message's values until the next one overwrites them: each name is set
// before a rule that reads it runs, and clearing the map per message
// would cost more than it saves.
func (c *evalCtx) end() {
	c.msg = nil
	c.m = Message{}
	c.rs = nil
	c.payload = nil
	if c.partial != nil {
		c.spare = c.partial
		c.partial = nil
	}
}

// setRule puts into the environment what rule r reads for the current
// message, matched by r's filter number filter. It fails only when the
// rule's key template fails.
func (c *evalCtx) setRule(r *rules.Rule, filter int) error {
	u := r.Uses()
	vars := c.ev.Vars
	msg := c.msg
	if need := u &^ c.set; need != 0 {
		if need&rules.UsesTopic != 0 {
			vars[rules.VarTopic] = msg.Topic
		}
		if need&rules.UsesSegments != 0 {
			vars[rules.VarSegments] = c.levels
		}
		if need&rules.UsesRaw != 0 {
			vars[rules.VarRaw] = rawString(msg.Payload)
		}
		if need&rules.UsesQoS != 0 {
			vars[rules.VarQoS] = int(msg.QoS)
		}
		if need&rules.UsesRetained != 0 {
			vars[rules.VarRetained] = msg.Retained
		}
		if need&rules.UsesNow != 0 {
			vars[rules.VarNow] = msg.Time
		}
		c.set |= need & (rules.UsesTopic | rules.UsesSegments | rules.UsesRaw |
			rules.UsesQoS | rules.UsesRetained | rules.UsesNow)
	}
	if u&rules.UsesPayload != 0 {
		// Per rule: a later rule may read fields an earlier one did not.
		vars[rules.VarPayload] = c.payloadFor(r)
	}
	if u&rules.UsesRule != 0 {
		vars[rules.VarRule] = r.NameValue
	}
	c.filter = filter
	if u&(rules.UsesWildcards|rules.UsesCaptures) != 0 {
		if filter < 0 {
			c.wild = c.wild[:0] // a timed evaluation: no topic, no captures
		} else {
			c.wild = r.Filters[filter].Wildcards(msg.Topic, c.levels, c.wild[:0])
		}
		if u&rules.UsesWildcards != 0 {
			vars[rules.VarWildcards] = c.wild
		}
		if u&rules.UsesCaptures != 0 {
			r.SetCaptures(vars, filter, c.wild)
		}
	}
	if u&rules.UsesTrigger != 0 {
		vars[rules.VarTrigger] = trigNames[c.trig]
	}
	if u&rules.UsesRepeat != 0 {
		vars[rules.VarRepeat] = c.repeat
	}
	if u&rules.UsesSun != 0 {
		vars[rules.VarSun] = c.sun(r, msg.Time)
	}
	if u&rules.UsesWorld != 0 {
		c.broker = r.Broker
		vars[rules.FuncState], vars[rules.FuncStates] = c.state, c.states
	}
	if u&rules.UsesProps != 0 {
		vars[rules.VarProps] = propertiesValue(msg.Properties)
	}
	if u&rules.UsesFired != 0 {
		vars[rules.VarFired] = nil
	}
	c.key = ""
	if needsState(r) || u&rules.UsesKey != 0 {
		c.key = msg.Topic
		if r.Key != nil {
			k, err := c.ev.Render(r.Key)
			if err != nil {
				return fmt.Errorf("key: %w", err)
			}
			c.key = k
		}
		if u&rules.UsesKey != 0 {
			vars[rules.VarKey] = c.key
		}
	}
	if u&rules.UsesPrev != 0 {
		vars[rules.VarPrev] = nil
	}
	return nil
}

// decoded returns the message payload decoded whole, as docs/rules.md ("Conditions") says,
// decoding it at most once per message.
func (c *evalCtx) decoded() any {
	if !c.payloadSet {
		c.payload, c.payloadSet = DecodePayload(c.msg.Payload), true
	}
	return c.payload
}

// payloadFor returns the payload as rule r reads it. A rule that reads
// only some top-level fields of a JSON object gets a map of those (and of
// the fields earlier rules read), decoded without building the rest; what
// it cannot tell from its fields alone — a payload that is not an object,
// or not JSON — is the same as decoding it whole.
func (c *evalCtx) payloadFor(r *rules.Rule) any {
	fields, all := r.PayloadFields()
	if c.payloadSet || all {
		return c.decoded()
	}
	var missing []string
	for _, f := range fields {
		if !slices.Contains(c.keys, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 && c.partial != nil {
		return c.partial
	}
	if !looksLikeJSON(c.msg.Payload) {
		return c.decoded()
	}
	dst := c.partial
	if dst == nil && c.spare != nil {
		dst = c.spare
		clear(dst)
	}
	m, object, ok := decodeFields(c.msg.Payload, missing, dst)
	if !ok || !object {
		return c.decoded()
	}
	c.partial = m
	c.keys = append(c.keys, missing...)
	return m
}

// DecodePayload returns the payload as JSON when it is valid JSON (objects
// as map[string]any, numbers as float64), otherwise as a string. JSON that
// cannot be represented (a number beyond float64, nesting deeper than
// 10,000) is kept as the string too. Strings in the result may share b's
// bytes: b must not change afterwards.
func DecodePayload(b []byte) any {
	if looksLikeJSON(b) {
		if v, ok := decodeJSON(b); ok {
			return v
		}
	}
	return rawString(b)
}

// looksLikeJSON rejects most text payloads (ON, off, hello) without running
// the JSON decoder.
func looksLikeJSON(b []byte) bool {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	switch c := b[0]; {
	case c == '{', c == '[', c == '"', c == '-', c >= '0' && c <= '9':
		return true
	case c == 't', c == 'f', c == 'n':
		return bytes.HasPrefix(b, []byte("true")) || bytes.HasPrefix(b, []byte("false")) || bytes.HasPrefix(b, []byte("null"))
	}
	return false
}

// rawString views the payload as a string without copying. The engine owns
// the payload and never changes it, so the string stays valid.
func rawString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// render evaluates an action's templates into a request.
func (c *evalCtx) render(a *rules.Action) (actions.Request, error) {
	act, err := a.Spec.Render(renderer{c.ev}, c.msg.Payload)
	return actions.Request{Kind: a.Kind, Action: act}, err
}

// renderer lets an action kind evaluate the rules' templates.
type renderer struct{ ev *rules.Evaluator }

func (r renderer) Render(t actions.Template) (string, error) { return r.ev.Render(t.(*rules.Template)) }

func (r renderer) Append(dst []byte, t actions.Template) ([]byte, error) {
	return r.ev.Append(dst, t.(*rules.Template))
}

// noProperties is `properties` of a message without any.
var noProperties = rules.Properties{User: map[string]string{}}

// propertiesValue is the environment's `properties` for a message's MQTT 5
// properties.
func propertiesValue(p *actions.Properties) rules.Properties {
	if p == nil {
		return noProperties
	}
	v := rules.Properties{User: make(map[string]string, len(p.User)), ContentType: p.ContentType,
		ResponseTopic: p.ResponseTopic, CorrelationData: string(p.CorrelationData)}
	for _, u := range p.User {
		v.User[u.Name] = u.Value // the last value of a repeated name
	}
	if p.MessageExpiry != nil {
		v.MessageExpiry = int(*p.MessageExpiry)
	}
	if p.PayloadFormat != nil {
		v.PayloadFormat = int(*p.PayloadFormat)
	}
	return v
}
