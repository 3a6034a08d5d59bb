package httpapi

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// RuleDefinition is a rule as written, for /api/rules/{name} and the status
// page: the sources of its filters, conditions and templates, with secrets
// redacted as in logs (see Define).
type RuleDefinition struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	File        string             `json:"file"`
	Line        int                `json:"line"`
	Enabled     bool               `json:"enabled"`
	Stateful    bool               `json:"stateful"`
	Filters     []string           `json:"filters"`
	When        string             `json:"when,omitempty"` // absent: always
	Key         string             `json:"key,omitempty"`  // absent: the topic
	ClearWhen   string             `json:"clear_when,omitempty"`
	For         string             `json:"for,omitempty"`
	Cooldown    string             `json:"cooldown,omitempty"`
	Absent      string             `json:"absent,omitempty"`
	Schedule    string             `json:"schedule,omitempty"`
	Sun         string             `json:"sun,omitempty"`
	TimeZone    string             `json:"timezone,omitempty"`
	Windows     []string           `json:"windows,omitempty"` // name: value over D
	Mode        string             `json:"mode,omitempty"`    // for a rule with delay steps
	Repeat      string             `json:"repeat,omitempty"`
	MaxRepeats  int                `json:"max_repeats,omitempty"`
	Actions     []ActionDefinition `json:"actions"`
	OnClear     []ActionDefinition `json:"on_clear,omitempty"`
}

// ActionDefinition is one action as written: its kind and its fields, in
// the order its kind shows them (see actions.Spec.Describe).
type ActionDefinition struct {
	Kind   string            `json:"kind"` // publish, webhook, log, …
	Line   int               `json:"line"`
	Fields []FieldDefinition `json:"fields"`
}

// Value returns the value of the action's field of that name, or "".
func (a ActionDefinition) Value(name string) string {
	for _, f := range a.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// FieldDefinition is one field of an action as written, secrets redacted.
type FieldDefinition struct {
	Name  string `json:"name"`           // as in rule files; "headers.Authorization" for a key of a mapping
	Value string `json:"value"`          // the source, templates unrendered
	Text  bool   `json:"text,omitempty"` // free text (a payload, a body): shown as a block
	Note  string `json:"note,omitempty"` // stands in for an absent value ("the message's payload")
}

// Define describes r as written, without its secrets: the values of
// webhook headers whose names look secret (actions.RedactHeader's rules:
// Authorization, Cookie, *token*, *key*, …) read "[REDACTED]" — by name,
// because the loader has already replaced ${ENV} references with their
// values —, webhook URLs are redacted as actions.RedactURL does, and, in
// case a secret was written elsewhere (a body, a message), the value of
// every environment variable whose name looks secret is replaced wherever
// it appears.
func Define(r *rules.Rule) RuleDefinition {
	red := NewRedactor().With(r.EnvValues)
	d := RuleDefinition{
		Name:        r.Name,
		Description: red.Text(r.Description),
		File:        r.File,
		Line:        r.Line,
		Enabled:     r.Enabled,
		Stateful:    r.Stateful(),
		Filters:     make([]string, len(r.Filters)),
		For:         duration(r.For),
		Cooldown:    duration(r.Cooldown),
		Absent:      duration(r.Absent),
		Actions:     defineActions(r.Actions, red),
	}
	for i, f := range r.Filters {
		d.Filters[i] = f.Source
	}
	if r.Schedule != nil {
		d.Schedule = r.Schedule.String()
	}
	if r.Sun != nil {
		d.Sun = r.Sun.String()
	}
	if r.TimeZone != nil {
		d.TimeZone = r.TimeZone.String()
	}
	for _, w := range r.Windows {
		d.Windows = append(d.Windows, fmt.Sprintf("%s: %s over %s", w.Name, red.Text(w.Value.Source), actions.FormatDuration(w.Over)))
	}
	if r.HasDelays() {
		d.Mode = r.Mode.String()
	}
	d.Repeat = duration(r.Repeat)
	d.MaxRepeats = r.MaxRepeats
	if r.When != nil {
		d.When = red.Text(r.When.Source)
	}
	if r.Key != nil {
		d.Key = red.Text(r.Key.Source())
	}
	if r.ClearWhen != nil {
		d.ClearWhen = red.Text(r.ClearWhen.Source)
	}
	if len(r.OnClear) > 0 {
		d.OnClear = defineActions(r.OnClear, red)
	}
	return d
}

func defineActions(acts []rules.Action, red Redactor) []ActionDefinition {
	out := make([]ActionDefinition, 0, len(acts))
	for _, a := range acts {
		if a.Spec == nil {
			out = append(out, ActionDefinition{Kind: "delay", Line: a.Line,
				Fields: []FieldDefinition{{Name: "delay", Value: actions.FormatDuration(a.Delay)}}})
			continue
		}
		ad := ActionDefinition{Kind: a.Kind.String(), Line: a.Line, Fields: []FieldDefinition{}}
		for _, f := range a.Spec.Describe() {
			fd := FieldDefinition{Name: f.Name, Text: f.Text, Note: f.Note}
			if f.Note == "" {
				fd.Value = f.Show(f.Value, red.secrets) // masks raw and escaped forms
			}
			ad.Fields = append(ad.Fields, fd)
		}
		out = append(out, ad)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// minSecretLen is the shortest environment value redactor replaces: a
// shorter one would blank out ordinary words and numbers.
const minSecretLen = 6

// Redactor replaces the values of secret-looking environment variables in
// text: those whose names hold token, secret, key, password, auth, … (the
// words of actions.RedactHeader), at least minSecretLen long. Rule files
// get secrets through ${ENV}, and the loader has replaced the references
// with the values by the time a page shows the rules.
type Redactor struct{ secrets []string }

// NewRedactor reads the environment's secret-looking values.
func NewRedactor() Redactor {
	var r Redactor
	for _, kv := range os.Environ() {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || len(value) < minSecretLen {
			continue
		}
		// The header rules decide what a secret name is.
		if actions.RedactHeader(http.Header{name: {""}})[name][0] == actions.Redacted {
			r.secrets = append(r.secrets, value)
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// With returns a Redactor that also replaces values, e.g. a rule's
// rules.Rule.EnvValues (whatever its file took from the environment).
func (r Redactor) With(values []string) Redactor {
	if len(values) == 0 {
		return r
	}
	all := append(append([]string(nil), r.secrets...), values...)
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	return Redactor{secrets: all}
}

// Text returns s with every secret value replaced by "[REDACTED]".
func (r Redactor) Text(s string) string { return actions.Mask(s, r.secrets) }

func (s *Server) apiRule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rule := s.rule(name)
	if rule == nil {
		http.Error(w, fmt.Sprintf("no rule %q in the loaded set", name), http.StatusNotFound)
		return
	}
	writeJSON(w, Define(rule))
}

// KeysResponse is the JSON of /api/rules/{name}/keys: the keys of a
// stateful rule that are pending, firing, in cooldown or awaiting an
// absence, most recently seen first.
type KeysResponse struct {
	Rule    string            `json:"rule"`
	Tracked int               `json:"tracked"` // keys the rule tracks in all, idle ones included
	Keys    []engine.KeyState `json:"keys"`
}

// DefaultKeysLimit is how many keys /api/rules/{name}/keys lists without
// ?limit=; MaxKeysLimit is the most it lists.
const (
	DefaultKeysLimit = 100
	MaxKeysLimit     = 10000
)

func (s *Server) apiKeys(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.rule(name) == nil {
		http.Error(w, fmt.Sprintf("no rule %q in the loaded set", name), http.StatusNotFound)
		return
	}
	limit := DefaultKeysLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxKeysLimit {
			http.Error(w, fmt.Sprintf("limit: want a number from 1 to %d, got %q", MaxKeysLimit, v), http.StatusBadRequest)
			return
		}
		limit = n
	}
	writeJSON(w, KeysOf(s.status, name, limit))
}

// KeysOf returns the active keys of a rule, at most limit of them, with
// their times in UTC.
func KeysOf(st Status, rule string, limit int) KeysResponse {
	keys, tracked := st.Keys(rule, limit)
	resp := KeysResponse{Rule: rule, Tracked: tracked, Keys: make([]engine.KeyState, 0, len(keys))}
	for _, k := range keys {
		k.Deadline, k.CooldownUntil, k.LastSeen = utc(k.Deadline), utc(k.CooldownUntil), utc(k.LastSeen)
		resp.Keys = append(resp.Keys, k)
	}
	return resp
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// rule returns the loaded rule with the given name, or nil.
func (s *Server) rule(name string) *rules.Rule {
	rs := s.status.Rules()
	if rs == nil {
		return nil
	}
	return rs.Rule(name)
}

// TraceOf returns evaluations with their explanations, for
// /api/rules/{name}/trace and the status page.
func TraceOf(evs []engine.Evaluation) []TraceEntry {
	out := make([]TraceEntry, 0, len(evs))
	for _, ev := range evs {
		ev.Time, ev.Until = utc(ev.Time), utc(ev.Until)
		out = append(out, TraceEntry{Evaluation: ev, Explanation: ev.Explain()})
	}
	return out
}

// NotReady returns why the engine is not ready, as /readyz says it, or ""
// when it is.
func NotReady(st Status) string { return notReady(st) }

// ReloadOf describes a load of the rules as /api/status does.
func ReloadOf(lr Reload) ReloadInfo {
	info := ReloadInfo{
		TookMS: float64(lr.Took.Microseconds()) / 1000,
		OK:     lr.Err == nil,
		Errors: errorLines(lr.Err),
		Rules:  lr.Rules,
		Reload: lr.Reload,
	}
	if !lr.At.IsZero() {
		at := lr.At.UTC()
		info.At = &at
	}
	return info
}
