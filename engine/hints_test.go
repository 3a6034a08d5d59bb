package engine

import (
	"strings"
	"testing"
)

// TestConditionErrorsSayWhatThePayloadWas: a condition that fails on a
// payload of another shape than the rule expects says what it was and
// how to guard, in the trace (and so in --explain and the log).
func TestConditionErrorsSayWhatThePayloadWas(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: motion
    topic: m
    when: payload.occupancy == true
    actions: [{log: x}]
  - name: raw
    topic: m
    when: raw > "z"
    actions: [{log: y}]
  - name: temp
    topic: t
    when: payload.value > 30
    actions: [{log: z}]
`)
	for _, tc := range []struct{ payload, want string }{
		{"offline", `(payload is the text "offline", not a JSON object; guard with type(payload) == "map" && …)`},
		{"21.5", `(payload is the number 21.5, not a JSON object; guard with type(payload) == "map" && …)`},
		{"[1]", `(payload is a JSON list, not an object; guard with type(payload) == "map" && …)`},
	} {
		h.e.Handle(Message{Topic: "m", Payload: []byte(tc.payload), Time: h.clock.Now()})
		tr := h.e.Trace("motion")
		if last := tr[len(tr)-1]; last.Outcome != OutcomeError || !strings.HasSuffix(last.Err, tc.want) {
			t.Errorf("%s: error %q, want it to end %q", tc.payload, last.Err, tc.want)
		}
	}
	h.e.Handle(Message{Topic: "t", Payload: []byte(`{"battery":9,"v":1}`), Time: h.clock.Now()})
	want := `(payload has no field "value" (it has "battery", "v"); write payload.value ?? DEFAULT, or "value" in payload && …)`
	if tr := h.e.Trace("temp"); len(tr) != 1 || !strings.HasSuffix(tr[0].Err, want) {
		t.Errorf("temp trace %+v, want the error to end %q", tr, want)
	}
	// A rule that does not read the payload gets no hint.
	if tr := h.e.Trace("raw"); len(tr) == 0 || strings.Contains(tr[0].Err, "payload") {
		t.Errorf("raw rule trace %+v", tr)
	}
}
