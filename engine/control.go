package engine

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Control at run time (docs/homeassistant.md): a rule enabled or disabled
// over MQTT or HTTP overrides its file's `enabled` until a reload changes
// the rule's definition; the override is kept with --state.

// Origins of a rule's enabled state, as /api/rules shows them.
const (
	ByFile    = "file"
	ByControl = "control"
)

// override is a control's enable or disable of a rule, valid while the
// rule's definition is the one it was made on.
type override struct {
	Enabled    bool   `json:"enabled"`
	Definition string `json:"definition"`
	Origin     string `json:"origin"` // mqtt or http
}

// effectiveEnabled returns whether a rule runs given the overrides, and
// who decided. Called with swapMu held.
func (e *Engine) effectiveEnabled(r *rules.Rule) (bool, string) {
	if o, ok := e.overrides[r.Name]; ok && o.Definition == r.Definition {
		return o.Enabled, ByControl
	}
	return r.Enabled, ByFile
}

// Enabled reports whether a rule of the active set runs, and whether its
// file (ByFile) or a control (ByControl) decided.
func (e *Engine) Enabled(rule string) (enabled bool, by string, ok bool) {
	rt := e.active.Load().runtime(rule)
	if rt == nil {
		return false, "", false
	}
	by = ByFile
	if rt.byControl.Load() {
		by = ByControl
	}
	return rt.enabled.Load(), by, true
}

// SetEnabled enables or disables a rule at run time, whatever its file
// says, until a reload changes its definition. origin says who asked
// ("mqtt", "http"). Disabling drops the rule's state and stops its
// timers, as a disabled rule in a file has none; enabling starts afresh.
// It reports whether anything changed.
func (e *Engine) SetEnabled(rule string, on bool, origin string) (changed bool, err error) {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	a := e.active.Load()
	rt := a.runtime(rule)
	if rt == nil {
		return false, fmt.Errorf("%w %q", ErrNoRule, rule)
	}
	if e.overrides == nil {
		e.overrides = map[string]override{}
	}
	prev := rt.enabled.Load()
	if on == rt.rule.Enabled {
		delete(e.overrides, rule) // back to what the file says
	} else {
		e.overrides[rule] = override{Enabled: on, Definition: rt.rule.Definition, Origin: origin}
	}
	e.overridesDirty = true
	_, by := e.effectiveEnabled(rt.rule)
	if prev == on {
		rt.byControl.Store(by == ByControl)
		return false, nil
	}
	// A new runtime for the rule: its state and triggers follow the
	// effective enabled; the counters stay.
	next := &active{rs: a.rs, rules: make([]*ruleRuntime, len(a.rules)), worlds: a.worlds}
	copy(next.rules, a.rules)
	nrt := &ruleRuntime{rule: rt.rule, stats: rt.stats}
	nrt.enabled.Store(on)
	nrt.byControl.Store(by == ByControl)
	e.stateMu.Lock()
	e.stopTriggers(rt)
	if rt.st != nil {
		e.cancelAllSequences(rt.st, "the rule was disabled")
		e.dropState(rt.st)
	}
	if on {
		if needsState(rt.rule) {
			nrt.st = newRuleState(nrt)
		}
		e.startTriggers(nrt, nil, e.clock.Now())
	}
	e.stateMu.Unlock()
	next.rules[rt.rule.Index] = nrt
	e.active.Store(next)
	e.log.Info("rule "+map[bool]string{true: "enabled", false: "disabled"}[on]+" at run time", "rule", rule, "origin", origin)
	return true, nil
}

// RunNow runs a rule's actions now, not its condition, for a control's
// `run` (docs/homeassistant.md): payload is the environment's payload and
// raw, trigger "control", no topic; the key renders from that (default
// "").
func (e *Engine) RunNow(rule string, payload []byte) error {
	a := e.active.Load()
	rt := a.runtime(rule)
	if rt == nil {
		return fmt.Errorf("%w %q", ErrNoRule, rule)
	}
	if !rt.enabled.Load() {
		// A disabled rule keeps no state, which its delays, modes and
		// repeats need: running part of it would mislead.
		return fmt.Errorf("%w: %q (enable it to run it)", ErrDisabled, rule)
	}
	now := e.clock.Now()
	c := e.ctxs.Get().(*evalCtx)
	defer e.ctxs.Put(c)
	msg := Message{Payload: payload, Time: now}
	c.load(a.rs, &msg, &snapshot{payload: payload, time: now, filter: -1})
	c.trig = trigControl
	defer c.end()
	if rt.st != nil {
		e.stateMu.Lock()
		defer e.stateMu.Unlock()
		if rt.st.dead {
			// Disabled or reloaded since the check above: its state is gone.
			return fmt.Errorf("%w: %q (enable it to run it)", ErrDisabled, rule)
		}
	}
	if err := c.setRule(rt.rule, -1); err != nil {
		return err
	}
	var ks *keyState
	if rt.st != nil {
		ks, _ = e.getKey(rt.st, c.key, e.maxKeys)
		c.setKeyVars(rt, ks, now, false)
	}
	ev := Evaluation{Time: now, Rule: rule, Key: c.key, Timer: true, Trigger: trigControl.String()}
	ev.Outcome = e.fire(c, rt, ks, now)
	ev.setPayload(payload)
	e.record(rt, &ev)
	return nil
}

// FiringKeys returns how many keys of a rule are firing (in an episode or
// an absence).
func (e *Engine) FiringKeys(rule string) int {
	rt := e.active.Load().runtime(rule)
	if rt == nil || rt.st == nil {
		return 0
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	n := 0
	for _, ks := range rt.st.keys {
		if ks.firing {
			n++
		}
	}
	return n
}

// overridesKey is where the overrides are kept in the state store.
const overridesKey = "overrides"

// saveOverrides writes the overrides when they changed.
func (e *Engine) saveOverrides(store StateStore) {
	e.swapMu.Lock()
	if !e.overridesDirty {
		e.swapMu.Unlock()
		return
	}
	b, err := json.Marshal(maps.Clone(e.overrides))
	e.overridesDirty = false
	e.swapMu.Unlock()
	if err == nil {
		err = store.SaveMeta(overridesKey, b)
	}
	if err != nil {
		e.log.Error("saving rule overrides failed; will retry", "err", err)
		e.swapMu.Lock()
		e.overridesDirty = true
		e.swapMu.Unlock()
	}
}

// restoreOverrides loads the saved overrides and applies them to the
// active set: an override whose rule changed meanwhile is dropped.
func (e *Engine) restoreOverrides(store StateStore) error {
	b, err := store.LoadMeta(overridesKey)
	if err != nil || len(b) == 0 {
		return err
	}
	var saved map[string]override
	if json.Unmarshal(b, &saved) != nil {
		return nil // unreadable: as if none
	}
	for name, o := range saved {
		rt := e.active.Load().runtime(name)
		if rt == nil || rt.rule.Definition != o.Definition {
			continue
		}
		if _, err := e.SetEnabled(name, o.Enabled, o.Origin); err != nil {
			return err
		}
	}
	return nil
}
