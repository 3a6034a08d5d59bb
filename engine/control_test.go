package engine

import (
	"errors"
	"strings"
	"testing"
)

// TestSetEnabled: a run-time disable stops a rule (and drops its state), an
// enable runs a rule its file disables, and a reload that changes the rule
// resets the override.
func TestSetEnabled(t *testing.T) {
	src := `
rules:
  - name: on
    topic: t
    for: 10s
    actions: [{log: "on {{ raw }}"}]
  - name: off
    topic: t
    enabled: false
    actions: [{log: "off {{ raw }}"}]
`
	h := newHarness(t, src)
	if got := h.run("0 t=a", "20"); strings.Join(got, "|") != "10s on log on a" {
		t.Fatalf("before: %q", got)
	}
	if _, err := h.e.SetEnabled("on", false, "mqtt"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.SetEnabled("off", true, "http"); err != nil {
		t.Fatal(err)
	}
	if on, by, _ := h.e.Enabled("off"); !on || by != ByControl {
		t.Errorf("off: enabled %v by %q, want true by control", on, by)
	}
	if got := h.run("30 t=b", "60"); strings.Join(got, "|") != "30s off log off b" {
		t.Errorf("after the overrides: %q", got)
	}
	if _, err := h.e.SetEnabled("nope", true, "http"); !errors.Is(err, ErrNoRule) {
		t.Errorf("unknown rule: %v", err)
	}
	// The same definition reloaded: the overrides stay.
	h.load(src)
	if on, by, _ := h.e.Enabled("on"); on || by != ByControl {
		t.Errorf("after an unchanged reload: on enabled %v by %q, want false by control", on, by)
	}
	// A changed rule: its file decides again.
	h.load(strings.Replace(src, "on {{ raw }}", "ON {{ raw }}", 1))
	if on, by, _ := h.e.Enabled("on"); !on || by != ByFile {
		t.Errorf("after a changed reload: on enabled %v by %q, want true by file", on, by)
	}
}

// TestOverridesPersist: an override survives a restart with --state.
func TestOverridesPersist(t *testing.T) {
	src := "rules: [{name: r, topic: t, actions: [{log: x}]}]"
	store := newMemStore()
	h := newHarness(t, src)
	if _, err := h.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	h.e.SetEnabled("r", false, "mqtt")
	h.e.SaveState(store)
	h2 := newHarness(t, src)
	if _, err := h2.e.Restore(store); err != nil {
		t.Fatal(err)
	}
	if on, by, _ := h2.e.Enabled("r"); on || by != ByControl {
		t.Errorf("after the restart: enabled %v by %q, want false by control", on, by)
	}
	if got := h2.run("1 t=x"); len(got) != 0 {
		t.Errorf("a disabled rule fired: %q", got)
	}
}

// TestRunNow: a control's run fires the actions with the given payload,
// trigger control, whatever the condition says.
func TestRunNow(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: t
    when: "false"
    cooldown: 1h
    actions: [{log: "{{ trigger }} {{ payload.v }} [{{ topic }}] key '{{ key }}'"}]
`)
	if err := h.e.RunNow("r", []byte(`{"v":7}`)); err != nil {
		t.Fatal(err)
	}
	if got := h.tl.take(); strings.Join(got, "|") != "0s r log control 7 [] key ''" {
		t.Errorf("got %q", got)
	}
	if h.e.Counters().Rule("r").Fires.Load() != 1 {
		t.Error("a run is not counted as a firing")
	}
}
