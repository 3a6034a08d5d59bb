package engine

import (
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqtt-rules/mqtt-rules/internal/window"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Outcome says what one evaluation of a rule did, and so why it did or did
// not fire.
type Outcome uint8

// The outcomes of an evaluation.
const (
	OutcomeFalse       Outcome = iota + 1 // the condition is false: nothing to do
	OutcomeError                          // the condition (or key) failed: see Err
	OutcomeFired                          // the rule fired: its actions ran
	OutcomePending                        // for: the condition holds; fires at Until unless a false message comes first
	OutcomeCancelled                      // for: a false message cancelled the pending firing
	OutcomeCooldown                       // the rule would fire but the key is in cooldown until Until
	OutcomeEpisode                        // the condition holds but the key already fired in this episode
	OutcomeCleared                        // the episode ended: on_clear ran
	OutcomeStillFiring                    // the condition is false but clear_when does not hold: the episode goes on
	OutcomeHeartbeat                      // absent: a counting message; fires at Until if none follows
	OutcomeNotCounted                     // absent: the message does not count as a heartbeat
	OutcomeBack                           // absent: a counting message after a silence: on_clear ran
	OutcomeQueued                         // mode: queued: the firing waits for the key's earlier sequence
	OutcomeSuppressed                     // mode: single (or a full queue): the firing was ignored
	OutcomeContinued                      // a sequence's delay ended: its next steps ran
)

var outcomeNames = [...]string{
	OutcomeFalse:       "false",
	OutcomeError:       "error",
	OutcomeFired:       "fired",
	OutcomePending:     "pending",
	OutcomeCancelled:   "cancelled",
	OutcomeCooldown:    "cooldown",
	OutcomeEpisode:     "episode",
	OutcomeCleared:     "cleared",
	OutcomeStillFiring: "still_firing",
	OutcomeHeartbeat:   "heartbeat",
	OutcomeNotCounted:  "not_counted",
	OutcomeBack:        "back",
	OutcomeQueued:      "queued",
	OutcomeSuppressed:  "suppressed",
	OutcomeContinued:   "continued",
}

// String returns the outcome's short name, as in JSON traces.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "unknown"
}

// MarshalText makes outcomes readable in JSON.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Fired reports whether the rule fired (its actions ran, or were queued
// to run).
func (o Outcome) Fired() bool { return o == OutcomeFired || o == OutcomeQueued }

// previewLen is how much of a payload a trace keeps.
const previewLen = 64

// Evaluation is one evaluation of one rule: for a message, or for a timer
// (a for that held, an absence).
type Evaluation struct {
	Time    time.Time `json:"time"`
	Rule    string    `json:"rule"`
	Topic   string    `json:"topic"`
	Key     string    `json:"key,omitempty"`
	Timer   bool      `json:"timer,omitempty"`     // fired by a timer, not a message
	Trigger string    `json:"trigger,omitempty"`   // for a timed evaluation: schedule, sun, repeat or delay
	OnClear bool      `json:"on_clear,omitempty"`  // a delay's end continued on_clear's steps
	Cond    *bool     `json:"condition,omitempty"` // the value of `when`, when it was evaluated
	Outcome Outcome   `json:"outcome"`
	Until   time.Time `json:"until,omitzero"` // the deadline of a pending for, a cooldown or an absence
	Err     string    `json:"error,omitempty"`
	Payload string    `json:"payload,omitempty"` // the start of the payload

	// Lookups are the state() and states() calls the evaluation made, in
	// order (at most maxLookups), and Windows the rule's windows as it saw
	// them (docs/world.md).
	Lookups []Lookup      `json:"lookups,omitempty"`
	Windows []WindowValue `json:"windows,omitempty"`

	preview [previewLen]byte
	n       int
}

// Lookup is one state() or states() call of an evaluation and what it
// found.
type Lookup struct {
	Func  string `json:"func"`            // state or states
	Arg   string `json:"arg"`             // the topic or filter
	Found int    `json:"found"`           // state: 1 when the topic has a message; states: how many topics matched
	Value string `json:"value,omitempty"` // state: the start of the payload found
	Err   string `json:"error,omitempty"`
}

// String shows a lookup on one line: state("home/mode") = {"mode":"night"}.
func (l Lookup) String() string {
	call := fmt.Sprintf("%s(%q)", l.Func, l.Arg)
	switch {
	case l.Err != "":
		return call + ": " + l.Err
	case l.Func == "states":
		return fmt.Sprintf("%s = %d %s", call, l.Found, map[bool]string{true: "topic", false: "topics"}[l.Found == 1])
	case l.Found == 0:
		return call + " = nil (no message yet)"
	}
	return call + " = " + l.Value
}

// maxLookups bounds the lookups an evaluation records.
const maxLookups = 8

// WindowValue is one window of a rule as an evaluation saw it.
type WindowValue struct {
	Name  string       `json:"name"`
	Stats window.Stats `json:"stats"`
}

// String shows a window on one line: humidity: count 3, avg 61.2, ….
func (w WindowValue) String() string {
	s := w.Stats
	if s.Count == 0 {
		return w.Name + ": empty"
	}
	return fmt.Sprintf("%s: count %d, first %v, last %v, min %v, max %v, avg %v, delta %v, rate %v/s, span %s",
		w.Name, s.Count, num(s.First), num(s.Last), num(s.Min), num(s.Max), num(s.Avg), num(s.Delta), num(s.Rate), s.Span)
}

func num(v any) string {
	b, _ := rules.AppendValue(nil, v)
	return string(b)
}

var (
	condTrue  = true
	condFalse = false
)

func condPtr(ok bool) *bool {
	if ok {
		return &condTrue
	}
	return &condFalse
}

// Explain says in a sentence why the rule did or did not fire.
func (ev *Evaluation) Explain() string {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	switch ev.Outcome {
	case OutcomeFalse:
		return "condition false: does not fire"
	case OutcomeError:
		return "condition failed: " + ev.Err
	case OutcomeFired:
		if ev.Timer {
			return "fired by its timer"
		}
		return "condition true: fired"
	case OutcomePending:
		return "condition true: pending for, fires at " + at(ev.Until) + " unless a false message comes first"
	case OutcomeCancelled:
		return "condition false: cancelled the pending for"
	case OutcomeCooldown:
		return "condition true: in cooldown until " + at(ev.Until) + ", does not fire"
	case OutcomeEpisode:
		return "condition true: already fired in this episode, does not fire again until it clears"
	case OutcomeCleared:
		return "episode over: on_clear ran"
	case OutcomeStillFiring:
		return "condition false but clear_when does not hold: still firing"
	case OutcomeHeartbeat:
		return "heartbeat: fires at " + at(ev.Until) + " if no counting message comes before"
	case OutcomeNotCounted:
		return "condition false: not a heartbeat"
	case OutcomeBack:
		return "heartbeat after a silence: on_clear ran; fires at " + at(ev.Until) + " if silent again"
	case OutcomeQueued:
		return "fired: queued behind the key's waiting sequence (mode: queued)"
	case OutcomeSuppressed:
		return "would fire, but the key's earlier sequence still waits: ignored (mode: single, or the queue is full)"
	case OutcomeContinued:
		if ev.OnClear {
			return "delay over: on_clear's next steps ran"
		}
		return "delay over: the next steps ran"
	}
	return fmt.Sprintf("outcome %d", ev.Outcome)
}

// setPayload keeps the start of the payload, cut at a rune boundary.
func (ev *Evaluation) setPayload(p []byte) {
	n := copy(ev.preview[:], p)
	for n > 0 && n < len(p) && !utf8.Valid(ev.preview[:n]) {
		n--
	}
	ev.n = n
}

// finish fills Payload from the preview; traces copy it out only when read.
func (ev Evaluation) finish() Evaluation {
	ev.Payload = string(ev.preview[:ev.n])
	return ev
}

// DefaultTraceLen is how many evaluations per rule the engine keeps.
const DefaultTraceLen = 32

// traceRing keeps the last evaluations of one rule. It is allocated on the
// rule's first evaluation and grows with use up to its size, so a rule that
// never matched costs nothing and one that matched once costs one entry:
// 10,000 rules that each saw a message do not hold 10,000 full rings.
type traceRing struct {
	mu   sync.Mutex
	size int
	buf  []Evaluation
	next int // once len(buf) == size: where the next one goes
}

func (r *traceRing) add(ev *Evaluation) {
	r.mu.Lock()
	if len(r.buf) < r.size {
		r.buf = append(r.buf, *ev)
	} else {
		r.buf[r.next] = *ev
		r.next = (r.next + 1) % r.size
	}
	r.mu.Unlock()
}

func (r *traceRing) list() []Evaluation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Evaluation, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	out = append(out, r.buf[:r.next]...)
	for i := range out {
		out[i] = out[i].finish()
	}
	return out
}

// record keeps an evaluation in the rule's trace and hands it to the
// observer, if any.
func (e *Engine) record(rt *ruleRuntime, ev *Evaluation) {
	if e.traceLen > 0 {
		ring := rt.stats.trace.Load()
		if ring == nil {
			rt.stats.trace.CompareAndSwap(nil, &traceRing{size: e.traceLen, buf: make([]Evaluation, 0, 1)})
			ring = rt.stats.trace.Load()
		}
		ring.add(ev)
	}
	if e.observe != nil {
		e.observe(ev.finish())
	}
}

// Trace returns the last evaluations of the rule with the given name, oldest
// first.
func (e *Engine) Trace(rule string) []Evaluation {
	ring := e.counters.Rule(rule).trace.Load()
	if ring == nil {
		return nil
	}
	return ring.list()
}
