package engine

import (
	"context"
	"slices"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/window"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// StateStore keeps the engine's state across restarts (--state).
// internal/statestore implements it on an embedded database.
type StateStore interface {
	// Load returns every saved key, and the time of the last save (zero
	// when there was none).
	Load() (recs []KeyRecord, savedAt time.Time, err error)
	// Save writes the given keys, deletes the given ones and records at as
	// the time of the last save, atomically.
	Save(put []KeyRecord, del []KeyRef, at time.Time) error
	// LoadWorld returns every saved remembered message (docs/world.md).
	LoadWorld() ([]RememberedMessage, error)
	// SaveWorld writes the given remembered messages and deletes the
	// given topics, atomically.
	SaveWorld(put []RememberedMessage, del []string) error
	// LoadMeta returns the value saved under name (nil when none);
	// SaveMeta replaces it. The engine keeps its rule overrides there.
	LoadMeta(name string) ([]byte, error)
	SaveMeta(name string, value []byte) error
}

// KeyRef names the state of one (rule, key).
type KeyRef struct {
	Rule string
	Key  string
}

// KeyRecord is the saved state of one (rule, key).
type KeyRecord struct {
	KeyRef
	Fingerprint string // the rule's fingerprint when saved: a changed rule starts afresh

	Prev        *SavedMessage `json:",omitempty"`
	Trigger     *SavedMessage `json:",omitempty"`
	TriggerPrev *SavedMessage `json:",omitempty"`

	Fired *SavedMessage `json:",omitempty"`

	// Windows are the key's windows' samples, by window name.
	Windows map[string][]window.Sample `json:",omitempty"`

	// Definition is the rule's definition when saved: waiting sequences
	// resume only when it is the same (their steps are its steps).
	Definition string          `json:",omitempty"`
	Sequences  []SavedSequence `json:",omitempty"`
	Repeat     *SavedRepeat    `json:",omitempty"`
	Acked      bool            `json:",omitempty"`

	PendingSince  time.Time `json:",omitzero"`
	Firing        bool      `json:",omitempty"`
	CooldownUntil time.Time `json:",omitzero"`
	TimerAt       time.Time `json:",omitzero"`

	SavedAt time.Time // when the record was taken: a timer resumes with the time it had left then
	// Seen is when the key last changed: restoring more keys than
	// --max-keys keeps the most recent.
	Seen time.Time `json:",omitzero"`
}

// SavedFiring is the environment of a firing kept for its later steps or
// repeats.
type SavedFiring struct {
	Msg     *SavedMessage
	Prev    *SavedMessage `json:",omitempty"`
	Trigger string        `json:",omitempty"`
	Repeat  int           `json:",omitempty"`
	Hop     int           `json:",omitempty"`
}

// SavedSequence is a waiting sequence: it resumes with the time it had
// left (At − the record's SavedAt); a queued one has no At.
type SavedSequence struct {
	OnClear bool      `json:",omitempty"`
	Next    int       `json:",omitempty"`
	At      time.Time `json:",omitzero"`
	Queued  bool      `json:",omitempty"`
	Firing  SavedFiring
}

// SavedRepeat is a firing key's repeats: the next is due At.
type SavedRepeat struct {
	At     time.Time
	Count  int `json:",omitempty"`
	Firing SavedFiring
}

func savedFiring(f *firing) SavedFiring {
	return SavedFiring{Msg: saved(f.snapshot()), Prev: saved(f.prev), Trigger: f.trig.String(), Repeat: int(f.repeat), Hop: int(f.hop)}
}

func (s *SavedFiring) firing() firing {
	f := firing{filter: -1, prev: s.Prev.snapshot(), trig: parseTrig(s.Trigger), repeat: int32(s.Repeat), hop: int32(s.Hop)}
	if m := s.Msg; m != nil {
		f.topic, f.payload, f.time, f.filter, f.qos, f.retained = m.Topic, m.Payload, instantOf(m.Time), int32(m.Filter), m.QoS, m.Retained
	}
	return f
}

// SavedMessage is a message kept in state.
type SavedMessage struct {
	Topic    string
	Payload  []byte
	QoS      byte `json:",omitempty"`
	Retained bool `json:",omitempty"`
	Time     time.Time
	Filter   int `json:",omitempty"`
}

func saved(s *snapshot) *SavedMessage {
	if s == nil {
		return nil
	}
	return &SavedMessage{Topic: s.topic, Payload: s.payload, QoS: s.qos, Retained: s.retained, Time: s.time, Filter: s.filter}
}

func (m *SavedMessage) snapshot() *snapshot {
	if m == nil {
		return nil
	}
	return &snapshot{topic: m.Topic, payload: m.Payload, qos: m.QoS, retained: m.Retained, time: m.Time, filter: m.Filter}
}

func savedSequences(ks *keyState) []SavedSequence {
	if ks.x == nil {
		return nil
	}
	var out []SavedSequence
	for _, sq := range ks.x.seqs {
		out = append(out, SavedSequence{OnClear: sq.onClear, Next: int(sq.next), At: sq.t.when(), Queued: sq.queued, Firing: savedFiring(&sq.f)})
	}
	return out
}

func savedRepeat(ks *keyState) *SavedRepeat {
	rep := ks.rep()
	if rep == nil || rep.t.ns == 0 {
		return nil
	}
	return &SavedRepeat{At: rep.t.when(), Count: int(rep.count), Firing: savedFiring(&rep.f)}
}

func keyWindows(ks *keyState) []*window.Window {
	if ks.x == nil {
		return nil
	}
	return ks.x.windows
}

// savedWindows returns a key's windows' samples by name; nil without any.
func savedWindows(r *rules.Rule, ws []*window.Window) map[string][]window.Sample {
	if ws == nil {
		return nil
	}
	out := make(map[string][]window.Sample, len(ws))
	for i, w := range ws {
		out[r.Windows[i].Name] = w.Samples(nil)
	}
	return out
}

// restoreWindows rebuilds a key's windows from saved samples; a window
// whose samples cannot be restored starts empty.
func restoreWindows(r *rules.Rule, saved map[string][]window.Sample) []*window.Window {
	if len(r.Windows) == 0 || saved == nil {
		return nil
	}
	out := make([]*window.Window, len(r.Windows))
	for i, spec := range r.Windows {
		out[i], _ = window.New(spec.Over, spec.MaxSamples)
		_ = out[i].Restore(saved[spec.Name]) // bad samples: the window stays empty
	}
	return out
}

// persistence tracks what changed since the last save. Guarded by stateMu.
type persistence struct {
	dirty   map[*keyState]instant // changed keys, with when
	deleted map[KeyRef]struct{}
}

// markDirty records that a key's state changed. Called with stateMu held.
func (e *Engine) markDirty(ks *keyState) {
	if e.persist.dirty != nil {
		e.persist.dirty[ks] = instantOf(e.clock.Now())
	}
}

// markDeleted records that a key's state is gone. Called with stateMu held.
func (e *Engine) markDeleted(st *ruleState, ks *keyState) {
	if e.persist.dirty != nil {
		delete(e.persist.dirty, ks)
		e.persist.deleted[KeyRef{Rule: st.rt.rule.Name, Key: ks.key}] = struct{}{}
	}
}

// Restore loads saved state for the rules of the active set whose
// fingerprint is unchanged, and from then on tracks changes for Persist.
// Call it once, after the first SetRules and before messages flow. Saved
// state of rules that are gone or changed is deleted from the store by the
// next save. A pending for, and an absence timer, resume with the time they
// had left when saved: time the engine was down does not count. Cooldowns
// end at the wall-clock time they were set to.
func (e *Engine) Restore(store StateStore) (restored int, err error) {
	// The remembered topics first: they do not depend on which rules run.
	msgs, err := store.LoadWorld()
	if err != nil {
		return 0, err
	}
	e.tracking.Store(true) // stores a later reload adds track changes too
	if stale := e.restoreWorlds(msgs); len(stale) > 0 {
		if err := store.SaveWorld(nil, stale); err != nil {
			e.log.Warn("remembered topics of brokers no longer used not deleted", "err", err)
		}
	}
	// Then which rules run, before their keys: a rule a control disabled
	// gets none back.
	if err := e.restoreOverrides(store); err != nil {
		return 0, err
	}
	recs, lastSave, err := store.Load()
	if err != nil {
		return 0, err
	}
	now := e.clock.Now()
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	e.persist = persistence{dirty: map[*keyState]instant{}, deleted: map[KeyRef]struct{}{}}
	a := e.active.Load()
	// The store returns records by key; restored least recently seen
	// first, a rule with more saved keys than --max-keys keeps its most
	// recent ones, and its eviction order is the one it had.
	slices.SortStableFunc(recs, func(x, y KeyRecord) int { return lastSeen(&x).Compare(lastSeen(&y)) })
	for _, rec := range recs {
		rt := a.runtime(rec.Rule)
		if rt == nil || rt.st == nil || rt.rule.Fingerprint != rec.Fingerprint {
			e.persist.deleted[rec.KeyRef] = struct{}{}
			continue
		}
		ks, evicted := e.getKey(rt.st, rec.Key, e.maxKeys)
		if evicted {
			rt.stats.KeysEvicted.Add(1)
		}
		ks.prev = rec.Prev.snapshot()
		ks.trigger = rec.Trigger.snapshot()
		ks.triggerPrev = rec.TriggerPrev.snapshot()
		if fired, ws := rec.Fired.snapshot(), restoreWindows(rt.rule, rec.Windows); fired != nil || ws != nil {
			ks.ext().fired, ks.ext().windows = fired, ws
		}
		ks.pendingSince = instantOf(rec.PendingSince)
		ks.firing = rec.Firing
		ks.cooldownUntil = instantOf(rec.CooldownUntil)
		if !rec.TimerAt.IsZero() {
			// The engine was up until its last save, which a key that
			// stayed unchanged was not part of: its timer ran until then.
			upTo := rec.SavedAt
			if lastSave.After(upTo) {
				upTo = lastSave
			}
			left := max(rec.TimerAt.Sub(upTo), 0)
			if !ks.pendingSince.isZero() {
				// Keep for's bookkeeping consistent with the shifted deadline.
				ks.pendingSince = instantOf(now.Add(left - rt.rule.For))
			}
			e.schedule(ks, now.Add(left))
		}
		e.restoreTimed(rt, ks, &rec, lastSave, now)
		restored++
	}
	return restored, nil
}

// savedTimersRunning reports whether a timer whose progress a save records
// is running: a key's, a sequence's or a repeat's. Schedule and sun
// triggers are computed afresh at start, so a set with only those does not
// write the store every second (an SD card's wear). Called with stateMu
// held; it stops at the first such timer.
func (e *Engine) savedTimersRunning() bool {
	for _, t := range e.timers {
		if _, ok := t.owner.(*trigger); !ok {
			return true
		}
	}
	return false
}

// lastSeen is when a saved key last changed (records of older versions:
// when they were saved).
func lastSeen(rec *KeyRecord) time.Time {
	if rec.Seen.IsZero() {
		return rec.SavedAt
	}
	return rec.Seen
}

// Persist saves changed state to store every interval until ctx ends. A
// crash loses at most the last interval of changes. Errors are logged; the
// changes stay pending for the next attempt. For a clean stop, call
// SaveState once more after Run has returned, so that no timer fires
// after the last save.
func (e *Engine) Persist(ctx context.Context, store StateStore, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.SaveState(store)
		case <-ctx.Done():
			return
		}
	}
}

// SaveState writes what changed since the last save. Persist calls it
// periodically; tests and shutdown call it directly.
func (e *Engine) SaveState(store StateStore) {
	e.saveWorld(store)
	e.saveOverrides(store)
	now := e.clock.Now()
	e.stateMu.Lock()
	if len(e.persist.dirty) == 0 && len(e.persist.deleted) == 0 && !e.savedTimersRunning() {
		e.stateMu.Unlock()
		return // nothing changed, and no timer runs whose progress to record
	}
	put := make([]KeyRecord, 0, len(e.persist.dirty))
	for ks, seen := range e.persist.dirty {
		if ks.owner.dead {
			continue
		}
		rt := ks.owner.rt
		put = append(put, KeyRecord{
			KeyRef:        KeyRef{Rule: rt.rule.Name, Key: ks.key},
			Fingerprint:   rt.rule.Fingerprint,
			Prev:          saved(ks.prev),
			Trigger:       saved(ks.trigger),
			TriggerPrev:   saved(ks.triggerPrev),
			Fired:         saved(ks.fired()),
			Windows:       savedWindows(rt.rule, keyWindows(ks)),
			Definition:    rt.rule.Definition,
			Sequences:     savedSequences(ks),
			Repeat:        savedRepeat(ks),
			Acked:         ks.acked,
			PendingSince:  ks.pendingSince.time(),
			Firing:        ks.firing,
			CooldownUntil: ks.cooldownUntil.time(),
			TimerAt:       ks.kt.when(),
			Seen:          seen.time(),
			SavedAt:       now,
		})
	}
	del := make([]KeyRef, 0, len(e.persist.deleted))
	for ref := range e.persist.deleted {
		del = append(del, ref)
	}
	dirty, deleted := e.persist.dirty, e.persist.deleted
	e.persist.dirty, e.persist.deleted = map[*keyState]instant{}, map[KeyRef]struct{}{}
	e.stateMu.Unlock()

	if err := store.Save(put, del, now); err != nil {
		e.log.Error("saving state failed; will retry", "err", err, "keys", len(put), "deleted", len(del))
		e.stateMu.Lock()
		for ks := range dirty {
			if ks.owner.dead || ks.owner.keys[ks.key] != ks {
				continue // evicted or dropped meanwhile: its deletion is pending
			}
			if _, again := e.persist.dirty[ks]; !again {
				e.persist.dirty[ks] = dirty[ks]
			}
		}
		for ref := range deleted {
			e.persist.deleted[ref] = struct{}{}
		}
		e.stateMu.Unlock()
		return
	}
	e.log.Debug("state saved", "keys", len(put), "deleted", len(del))
}

// saveWorld writes the remembered messages of every broker that changed
// since the last save.
func (e *Engine) saveWorld(store StateStore) {
	for b, w := range e.active.Load().worldsOrDefault(e) {
		e.saveWorldOf(store, b, w)
	}
}

// worldsOrDefault returns the worlds of the active set, or the default
// one before the first SetRules.
func (a *active) worldsOrDefault(e *Engine) map[string]*world {
	if a == nil {
		return map[string]*world{}
	}
	return a.worlds
}

// restoreWorlds hands saved remembered messages to their brokers' stores
// and returns the keys of those of brokers the set no longer uses.
func (e *Engine) restoreWorlds(msgs []RememberedMessage) (stale []string) {
	by := map[string][]RememberedMessage{}
	for _, m := range msgs {
		by[m.Broker] = append(by[m.Broker], m)
	}
	for b, w := range e.active.Load().worldsOrDefault(e) {
		w.restore(by[b])
		delete(by, b)
	}
	for _, ms := range by {
		for _, m := range ms {
			stale = append(stale, m.Key())
		}
	}
	return stale
}

// saveWorldOf writes a broker's remembered messages that changed since
// the last save; on failure they stay pending for the next.
func (e *Engine) saveWorldOf(store StateStore, broker string, w *world) {
	w.mu.Lock()
	if len(w.dirty) == 0 {
		w.mu.Unlock()
		return
	}
	var put []RememberedMessage
	var del []string
	for t := range w.dirty {
		if en := w.entries[t]; en != nil {
			put = append(put, RememberedMessage{Broker: broker, Topic: t, Payload: en.payload, Time: en.time, Retained: en.retained})
		} else {
			del = append(del, RememberedMessage{Broker: broker, Topic: t}.Key())
		}
	}
	dirty := w.dirty
	w.dirty = map[string]bool{}
	w.mu.Unlock()
	if err := store.SaveWorld(put, del); err != nil {
		e.log.Error("saving remembered topics failed; will retry", "err", err, "topics", len(put), "deleted", len(del))
		w.mu.Lock()
		for t := range dirty {
			w.dirty[t] = true
		}
		w.mu.Unlock()
		return
	}
	e.log.Debug("remembered topics saved", "topics", len(put), "deleted", len(del))
}

// restoreTimed resumes a restored key's waiting sequences and repeats with
// the time they had left when saved. Sequences of a rule whose definition
// changed meanwhile are dropped (logged): their steps are not its steps.
// Called with stateMu held.
func (e *Engine) restoreTimed(rt *ruleRuntime, ks *keyState, rec *KeyRecord, lastSave, now time.Time) {
	upTo := rec.SavedAt
	if lastSave.After(upTo) {
		upTo = lastSave
	}
	left := func(at time.Time) time.Time { return now.Add(max(at.Sub(upTo), 0)) }
	ks.acked = rec.Acked
	if len(rec.Sequences) > 0 {
		if rec.Definition != rt.rule.Definition {
			e.log.Warn("waiting sequences not resumed: the rule changed while the engine was down", "rule", rt.rule.Name, "key", ks.key, "sequences", len(rec.Sequences))
		} else {
			x := ks.ext()
			for _, sv := range rec.Sequences {
				sq := &sequence{ks: ks, onClear: sv.OnClear, queued: sv.Queued, next: int32(sv.Next), f: sv.Firing.firing()}
				sq.t = newTimer(sq)
				x.seqs = append(x.seqs, sq)
				if !sv.Queued {
					e.setTimer(&sq.t, left(sv.At))
				}
			}
		}
	}
	if rec.Repeat != nil && rt.rule.Repeat > 0 && ks.firing && !ks.acked {
		rep := &repeatState{ks: ks, count: int32(rec.Repeat.Count), f: rec.Repeat.Firing.firing()}
		rep.t = newTimer(rep)
		ks.ext().rep = rep
		e.setTimer(&rep.t, left(rec.Repeat.At))
	}
}
