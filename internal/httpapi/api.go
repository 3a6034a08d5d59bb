package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// RulesResponse is the body of /api/rules.
type RulesResponse struct {
	Rules []RuleInfo `json:"rules"`
}

// RuleInfo is one rule of the active set with its counters. The first
// keys (name, filters, enabled, fires, errors, last_fired) are a contract
// (docs/operations.md, HTTP endpoints: /api/rules).
type RuleInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	File        string   `json:"file"`
	Line        int      `json:"line"`
	Filters     []string `json:"filters"`    // as written, captures included
	Enabled     bool     `json:"enabled"`    // whether it runs now: its file's enabled or a control's override
	EnabledBy   string   `json:"enabled_by"` // who decided: "file" or "control" (engine.ByFile, engine.ByControl)
	Stateful    bool     `json:"stateful"`
	For         string   `json:"for,omitempty"` // Go duration syntax; absent when not set
	Cooldown    string   `json:"cooldown,omitempty"`
	Absent      string   `json:"absent,omitempty"`
	Actions     []string `json:"actions"`            // the kinds of the rule's actions, in order
	OnClear     []string `json:"on_clear,omitempty"` // the kinds of its on_clear actions

	Fires           uint64 `json:"fires"`
	Errors          uint64 `json:"errors"` // condition errors plus failed actions
	ConditionErrors uint64 `json:"condition_errors"`
	// ActionResults counts finished actions by kind, for the kinds the rule
	// uses.
	ActionResults map[string]Results `json:"action_results"`
	LoopCutoffs   uint64             `json:"loop_cutoffs"`
	KeysEvicted   uint64             `json:"keys_evicted"`
	LastFired     *time.Time         `json:"last_fired"` // RFC 3339 (UTC); null when it never fired
}

// Results counts outcomes: of one kind of action, or of reloads.
type Results struct {
	OK    uint64 `json:"ok"`
	Error uint64 `json:"error"`
}

// StatusResponse is the body of /api/status.
type StatusResponse struct {
	Version          string            `json:"version"`
	Broker           string            `json:"broker"`    // the default broker's URL
	Connected        bool              `json:"connected"` // to every broker
	Brokers          []BrokerState     `json:"brokers"`   // every broker, the default one first
	Ready            bool              `json:"ready"`
	NotReadyReason   string            `json:"not_ready_reason"` // as /readyz says; "" when ready
	RulesLoaded      int               `json:"rules_loaded"`
	Filters          []string          `json:"filters"` // the MQTT filters of the enabled rules (wildcards for captures), sorted
	MessagesReceived uint64            `json:"messages_received"`
	Drops            map[string]uint64 `json:"drops"` // too_large, queue_full and loop always present
	Reloads          Results           `json:"reloads"`
	LastReload       ReloadInfo        `json:"last_reload"`
}

// ReloadInfo describes the last load of the rules in /api/status.
type ReloadInfo struct {
	At     *time.Time `json:"at"` // null before the first load
	TookMS float64    `json:"took_ms"`
	OK     bool       `json:"ok"`
	Errors []string   `json:"errors"` // one per problem: file:line:col: rule "x": msg
	Rules  int        `json:"rules"`  // rules in the active set afterwards
	Reload bool       `json:"reload"` // false for the load at start
}

func (s *Server) apiRules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, rulesInfo(s.status))
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, statusInfo(s.status, s.opts.Version))
}

// rulesInfo describes the rules of the active set, in load order.
func rulesInfo(st Status) RulesResponse {
	out := RulesResponse{Rules: []RuleInfo{}}
	rs := st.Rules()
	if rs == nil {
		return out
	}
	cs := st.Counters()
	if cs == nil {
		cs = engine.NewCounters()
	}
	red := NewRedactor()
	for _, r := range rs.Rules {
		s := cs.Rule(r.Name)
		info := RuleInfo{
			Name:            r.Name,
			Description:     red.With(r.EnvValues).Text(r.Description), // a ${ENV} secret would show as written
			File:            r.File,
			Line:            r.Line,
			Filters:         make([]string, len(r.Filters)),
			Enabled:         r.Enabled,
			Stateful:        r.Stateful(),
			For:             duration(r.For),
			Cooldown:        duration(r.Cooldown),
			Absent:          duration(r.Absent),
			Actions:         kinds(r.Actions),
			Fires:           s.Fires.Load(),
			Errors:          s.Errors(),
			ConditionErrors: s.ConditionErrors.Load(),
			ActionResults:   map[string]Results{},
			LoopCutoffs:     s.LoopCutoffs.Load(),
			KeysEvicted:     s.KeysEvicted.Load(),
		}
		info.Enabled, info.EnabledBy = enabled(st, r.Name, r.Enabled)
		for i, f := range r.Filters {
			info.Filters[i] = f.Source
		}
		if len(r.OnClear) > 0 {
			info.OnClear = kinds(r.OnClear)
		}
		for _, k := range actionKinds {
			if uses(r.Actions, k) || uses(r.OnClear, k) {
				ok, failed := s.Actions(k)
				info.ActionResults[k.String()] = Results{OK: ok, Error: failed}
			}
		}
		if t := s.LastFired(); !t.IsZero() {
			t = t.UTC()
			info.LastFired = &t
		}
		out.Rules = append(out.Rules, info)
	}
	return out
}

// statusInfo describes the engine as a whole.
func statusInfo(st Status, version string) StatusResponse {
	out := StatusResponse{
		Version:        version,
		NotReadyReason: notReady(st),
		Filters:        []string{},
		Drops:          map[string]uint64{},
	}
	out.Brokers, out.Broker, out.Connected = BrokerSummary(st)
	out.Ready = out.NotReadyReason == ""
	if rs := st.Rules(); rs != nil {
		out.RulesLoaded = len(rs.Rules)
		out.Filters = append(out.Filters, rs.Filters()...)
	}
	for _, reason := range dropReasons {
		out.Drops[reason] = 0
	}
	if cs := st.Counters(); cs != nil {
		out.MessagesReceived = cs.Received()
		for reason, n := range cs.Drops() {
			out.Drops[reason] = n
		}
		out.Reloads.OK, out.Reloads.Error = cs.Reloads()
	}
	out.LastReload = ReloadOf(st.LastReload())
	return out
}

// errorLines returns the problems of a failed load, one line each.
func errorLines(err error) []string {
	lines := []string{}
	if err == nil {
		return lines
	}
	var es rules.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			lines = append(lines, e.Error())
		}
		return lines
	}
	for l := range strings.Lines(err.Error()) {
		if l = strings.TrimRight(l, "\r\n"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// duration formats d in Go syntax, or "" when it is not set.
func duration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

func kinds(acts []rules.Action) []string {
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = a.Kind.String()
		if a.Spec == nil {
			out[i] = "delay"
		}
	}
	return out
}

func uses(acts []rules.Action, k *actions.Kind) bool {
	for _, a := range acts {
		if a.Kind == k {
			return true
		}
	}
	return false
}

// writeJSON answers 200 with v as indented JSON.
func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// TraceResponse is the JSON of /api/rules/{name}/trace: the rule's last
// evaluations, oldest first, each with why it did or did not fire.
type TraceResponse struct {
	Rule        string       `json:"rule"`
	Evaluations []TraceEntry `json:"evaluations"`
}

// TraceEntry is one evaluation with its explanation.
type TraceEntry struct {
	engine.Evaluation
	Explanation string `json:"explanation"`
}

func (s *Server) apiTrace(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rs := s.status.Rules()
	if rs == nil || rs.Rule(name) == nil {
		http.Error(w, fmt.Sprintf("no rule %q in the loaded set", name), http.StatusNotFound)
		return
	}
	resp := TraceResponse{Rule: name, Evaluations: []TraceEntry{}}
	for _, ev := range s.status.Trace(name) {
		resp.Evaluations = append(resp.Evaluations, TraceEntry{Evaluation: ev, Explanation: ev.Explain()})
	}
	writeJSON(w, resp)
}
