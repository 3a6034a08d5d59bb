package engine

import (
	"container/heap"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/window"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// DefaultMaxKeys is how many keys one rule tracks by default; beyond it the
// least recently seen key is evicted.
const DefaultMaxKeys = 10000

// ruleState is the state a stateful rule keeps, per key. All state of the
// engine is guarded by Engine.stateMu: message handling and timers take it
// only for rules that keep state, so stateless rules never wait for it.
type ruleState struct {
	rt   *ruleRuntime // the runtime currently owning this state (changes on a reload handover)
	keys map[string]*keyState
	// lru is a ring of keys by recency: lru.next is the most recently
	// seen, lru.prev the least; the sentinel holds no key.
	lru  keyState
	dead bool // the rule was removed or changed: ignore its timers
}

// keyState is the state of one (rule, key).
type keyState struct {
	key   string
	owner *ruleState

	prev        *snapshot // the last message seen for the key
	trigger     *snapshot // the environment of a timer firing: the latest true (for) or counting (absent) message
	triggerPrev *snapshot // prev as it was for trigger

	x *keyExtra // what fewer rules use: fired, windows, sequences, repeats; nil until needed

	pendingSince  instant // for: the condition holds since then; zero when not pending
	cooldownUntil instant // no firing before then
	firing        bool    // fired in the current episode (or absence), not yet cleared
	acked         bool    // the current episode was acknowledged: no more repeats

	kt timer // the key's timer (for's end, an absence); unset when none

	lruPrev, lruNext *keyState
}

// keyExtra is the state of a key that only some rules keep, apart so that
// the keys of other rules do not pay for it.
type keyExtra struct {
	fired   *snapshot        // the message that last fired the rule for the key (kept when the rule reads fired)
	windows []*window.Window // the rule's windows for the key, by position
	seqs    []*sequence      // sequences waiting in a delay step, then queued firings (mode: queued), oldest first
	rep     *repeatState     // repeats of the current firing; nil when none
}

// ext returns the key's extra state, creating it.
func (ks *keyState) ext() *keyExtra {
	if ks.x == nil {
		ks.x = &keyExtra{}
	}
	return ks.x
}

// fired returns the message that last fired the rule for the key, or nil.
func (ks *keyState) fired() *snapshot {
	if ks.x == nil {
		return nil
	}
	return ks.x.fired
}

// rep returns the key's repeats, or nil.
func (ks *keyState) rep() *repeatState {
	if ks.x == nil {
		return nil
	}
	return ks.x.rep
}

// snapshot is a message kept in state: what a timer firing or prev needs.
type snapshot struct {
	topic    string
	payload  []byte
	qos      byte
	retained bool
	time     time.Time
	filter   int // which filter of the rule matched it

	decoded    any
	decodedSet bool
}

func snapshotOf(m *Message, filter int) *snapshot {
	return &snapshot{topic: m.Topic, payload: m.Payload, qos: m.QoS, retained: m.Retained, time: m.Time, filter: filter}
}

func (s *snapshot) message() Message {
	return Message{Topic: s.topic, Payload: s.payload, QoS: s.qos, Retained: s.retained, Time: s.time}
}

func (s *snapshot) payloadValue() any {
	if !s.decodedSet {
		s.decoded, s.decodedSet = DecodePayload(s.payload), true
	}
	return s.decoded
}

// prevValue is the environment's `prev` (and `fired`) for a snapshot: nil,
// or a map with payload, raw and time (docs/rules.md, docs/world.md).
func prevValue(s *snapshot) any {
	if s == nil {
		return nil
	}
	return map[string]any{"payload": s.payloadValue(), "raw": string(s.payload), "time": s.time}
}

func newRuleState(rt *ruleRuntime) *ruleState {
	st := &ruleState{rt: rt, keys: map[string]*keyState{}}
	st.lru.lruNext, st.lru.lruPrev = &st.lru, &st.lru
	return st
}

// needsState reports whether the engine keeps per-key state for r: the
// stateful keys of docs/state.md, or a rule that reads prev.
// A disabled rule keeps none (the caller checks): its keys and timers are
// dropped as for a changed rule, so no timer of it fires.
func needsState(r *rules.Rule) bool {
	return r.Stateful() || r.Uses()&(rules.UsesPrev|rules.UsesFired) != 0
}

// get returns the state of key, creating it, and marks it most recently
// seen. Creating a key beyond max evicts the least recently seen one;
// evicted tells whether that happened.
func (e *Engine) getKey(st *ruleState, key string, max int) (ks *keyState, evicted bool) {
	ks = st.keys[key]
	if ks == nil {
		if max > 0 && len(st.keys) >= max {
			old := st.lru.lruPrev
			e.dropKey(st, old)
			evicted = true
		}
		ks = &keyState{key: key, owner: st}
		ks.kt = newTimer(ks)
		st.keys[key] = ks
	} else {
		ks.lruPrev.lruNext, ks.lruNext.lruPrev = ks.lruNext, ks.lruPrev
	}
	ks.lruNext, ks.lruPrev = st.lru.lruNext, &st.lru
	st.lru.lruNext.lruPrev = ks
	st.lru.lruNext = ks
	return ks, evicted
}

// dropKey forgets a key and its timer.
func (e *Engine) dropKey(st *ruleState, ks *keyState) {
	e.cancelKeyTimers(ks)
	e.markDeleted(st, ks)
	ks.lruPrev.lruNext, ks.lruNext.lruPrev = ks.lruNext, ks.lruPrev
	ks.lruPrev, ks.lruNext = nil, nil
	delete(st.keys, ks.key)
}

// instant is a time kept in state: unix nanoseconds, 0 for none. It
// takes 8 bytes where a time.Time takes 24, for every key.
type instant int64

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

func (i instant) isZero() bool { return i == 0 }

func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i))
}

// timer is one deadline in the engine's heap. One heap serves the whole
// engine — keys' for and absent, repeats, waiting sequences, schedules:
// timers cost no goroutine, and 32 bytes each.
type timer struct {
	ns    int64      // the deadline, unix nanoseconds; 0 when not scheduled
	idx   int32      // position in the heap; -1 when not in it
	owner timerOwner // what to do when it is due
}

// timerOwner is what a timer fires: a key's for or absent deadline, a
// repeat, a sequence's delay, a trigger. due is called with stateMu held;
// now is the clock's time, late true on the real clock (see missedAfter).
type timerOwner interface {
	due(e *Engine, at, now time.Time, late bool)
}

func newTimer(o timerOwner) timer { return timer{idx: -1, owner: o} }

// when returns the deadline, or the zero time when none is set.
func (t *timer) when() time.Time {
	if t.ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, t.ns)
}

// timerHeap orders timers by deadline.
type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].ns < h[j].ns }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = int32(i), int32(j)
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.idx = int32(len(*h))
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

// setTimer sets t's deadline to at, replacing any other, and wakes Run
// when it is the earliest.
func (e *Engine) setTimer(t *timer, at time.Time) {
	t.ns = at.UnixNano()
	if t.ns == 0 {
		t.ns = 1 // 0 means unset; the epoch is not a deadline anyone sets
	}
	if t.idx >= 0 {
		heap.Fix(&e.timers, int(t.idx))
	} else {
		heap.Push(&e.timers, t)
	}
	if t.idx == 0 {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// stopTimer cancels t.
func (e *Engine) stopTimer(t *timer) {
	if t.idx >= 0 {
		heap.Remove(&e.timers, int(t.idx))
	}
	t.ns = 0
}

// schedule sets the key's timer (for, absent) to at, replacing any other.
func (e *Engine) schedule(ks *keyState, at time.Time) { e.setTimer(&ks.kt, at) }

// unschedule cancels the key's timer.
func (e *Engine) unschedule(ks *keyState) { e.stopTimer(&ks.kt) }

// KeyState is what a stateful rule remembers about one key, for display.
type KeyState struct {
	Key           string    `json:"key"`
	Pending       bool      `json:"pending,omitempty"` // a for is running
	Firing        bool      `json:"firing,omitempty"`  // fired in this episode (or absence), not cleared
	Deadline      time.Time `json:"deadline,omitzero"` // when its timer fires: the for's end or the absence
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
	LastSeen      time.Time `json:"last_seen,omitzero"` // the last message for the key

	// Windows are the key's windows now, by name, for a rule with windows.
	Windows map[string]window.Stats `json:"windows,omitempty"`

	// Waiting are the key's sequences waiting in a delay step, or queued
	// (docs/time.md).
	Waiting []WaitingSequence `json:"waiting,omitempty"`
	// Repeats made of the current firing, when the next is due, and
	// whether the episode was acknowledged (no more repeats).
	Repeats    int       `json:"repeats,omitempty"`
	NextRepeat time.Time `json:"next_repeat,omitzero"`
	Acked      bool      `json:"acked,omitempty"`
}

// Keys returns the state of the keys of a rule that are pending, firing,
// in cooldown, waiting for an absence or in a delay, or hold windows, at
// most limit of them (0: all),
// most recently seen first, and how many keys the rule tracks in all.
func (e *Engine) Keys(rule string, limit int) (keys []KeyState, tracked int) {
	a := e.active.Load()
	rt := a.runtime(rule)
	if rt == nil || rt.st == nil {
		return nil, 0
	}
	now := e.clock.Now()
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	st := rt.st
	for ks := st.lru.lruNext; ks != &st.lru; ks = ks.lruNext {
		k := KeyState{
			Key:      ks.key,
			Pending:  !ks.pendingSince.isZero(),
			Firing:   ks.firing,
			Deadline: ks.kt.when(),
		}
		if ks.cooldownUntil.time().After(now) {
			k.CooldownUntil = ks.cooldownUntil.time()
		}
		if ks.prev != nil {
			k.LastSeen = ks.prev.time
		} else if ks.trigger != nil {
			k.LastSeen = ks.trigger.time
		}
		if ks.x != nil && ks.x.windows != nil {
			k.Windows = make(map[string]window.Stats, len(ks.x.windows))
			for i, w := range ks.x.windows {
				w.Expire(now)
				k.Windows[st.rt.rule.Windows[i].Name] = w.Stats()
			}
		}
		k.Waiting = waitingOf(ks)
		if rep := ks.rep(); rep != nil {
			k.Repeats, k.NextRepeat = int(rep.count), rep.t.when()
		}
		k.Acked = ks.acked && ks.firing
		if !k.Pending && !k.Firing && k.Deadline.IsZero() && k.CooldownUntil.IsZero() && k.Windows == nil && k.Waiting == nil {
			continue
		}
		if limit > 0 && len(keys) == limit {
			break
		}
		keys = append(keys, k)
	}
	return keys, len(st.keys)
}
