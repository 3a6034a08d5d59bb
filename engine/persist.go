package engine

import (
	"context"
	"time"
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

	PendingSince  time.Time `json:",omitzero"`
	Firing        bool      `json:",omitempty"`
	CooldownUntil time.Time `json:",omitzero"`
	TimerAt       time.Time `json:",omitzero"`

	SavedAt time.Time // when the record was taken: a timer resumes with the time it had left then
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

// persistence tracks what changed since the last save. Guarded by stateMu.
type persistence struct {
	dirty   map[*keyState]struct{}
	deleted map[KeyRef]struct{}
}

// markDirty records that a key's state changed. Called with stateMu held.
func (e *Engine) markDirty(ks *keyState) {
	if e.persist.dirty != nil {
		e.persist.dirty[ks] = struct{}{}
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
	recs, lastSave, err := store.Load()
	if err != nil {
		return 0, err
	}
	now := e.clock.Now()
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	e.persist = persistence{dirty: map[*keyState]struct{}{}, deleted: map[KeyRef]struct{}{}}
	a := e.active.Load()
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
		ks.pendingSince = rec.PendingSince
		ks.firing = rec.Firing
		ks.cooldownUntil = rec.CooldownUntil
		if !rec.TimerAt.IsZero() {
			// The engine was up until its last save, which a key that
			// stayed unchanged was not part of: its timer ran until then.
			upTo := rec.SavedAt
			if lastSave.After(upTo) {
				upTo = lastSave
			}
			left := max(rec.TimerAt.Sub(upTo), 0)
			if !ks.pendingSince.IsZero() {
				// Keep for's bookkeeping consistent with the shifted deadline.
				ks.pendingSince = now.Add(left - rt.rule.For)
			}
			e.schedule(ks, now.Add(left))
		}
		restored++
	}
	return restored, nil
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
	now := e.clock.Now()
	e.stateMu.Lock()
	if len(e.persist.dirty) == 0 && len(e.persist.deleted) == 0 && len(e.timers) == 0 {
		e.stateMu.Unlock()
		return // nothing changed, and no timer runs whose progress to record
	}
	put := make([]KeyRecord, 0, len(e.persist.dirty))
	for ks := range e.persist.dirty {
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
			PendingSince:  ks.pendingSince,
			Firing:        ks.firing,
			CooldownUntil: ks.cooldownUntil,
			TimerAt:       ks.timerAt,
			SavedAt:       now,
		})
	}
	del := make([]KeyRef, 0, len(e.persist.deleted))
	for ref := range e.persist.deleted {
		del = append(del, ref)
	}
	dirty, deleted := e.persist.dirty, e.persist.deleted
	e.persist.dirty, e.persist.deleted = map[*keyState]struct{}{}, map[KeyRef]struct{}{}
	e.stateMu.Unlock()

	if err := store.Save(put, del, now); err != nil {
		e.log.Error("saving state failed; will retry", "err", err, "keys", len(put), "deleted", len(del))
		e.stateMu.Lock()
		for ks := range dirty {
			if ks.owner.dead || ks.owner.keys[ks.key] != ks {
				continue // evicted or dropped meanwhile: its deletion is pending
			}
			e.persist.dirty[ks] = struct{}{}
		}
		for ref := range deleted {
			e.persist.deleted[ref] = struct{}{}
		}
		e.stateMu.Unlock()
		return
	}
	e.log.Debug("state saved", "keys", len(put), "deleted", len(del))
}
