package engine

import (
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/rules"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/internal/topic"
)

// DefaultMaxRemembered is how many topics the world store keeps by default
// (--max-remembered); beyond it the least recently updated is dropped.
const DefaultMaxRemembered = 100_000

// world keeps the latest message of every remembered topic, for state()
// and states() (docs/world.md). Messages are stored before the rules run
// on them. Reads take a read lock; a message on a remembered topic takes
// the write lock briefly.
type world struct {
	max int

	mu         sync.RWMutex
	remembered topic.Index[struct{}] // what the active set remembers
	filters    []string              // the same, for coverage checks of states()
	entries    map[string]*worldEntry
	lru        worldEntry // ring sentinel: lru.next is the most recently updated
	views      map[string]*worldView
	viewIndex  topic.Index[*worldView]
	dirty      map[string]bool // topics changed since the last save (with --state)

	on atomic.Bool // the set remembers some topic: messages must be offered

	// evicted and size live in the engine's Counters, for the metrics.
	evicted *atomic.Uint64
	size    *atomic.Int64
}

// worldEntry is one remembered topic and its latest message. The message
// fields change under the write lock; value is built at most once per
// message.
type worldEntry struct {
	topic    string
	payload  []byte
	time     time.Time
	retained bool
	value    atomic.Pointer[StateValue] // state()'s value for this message; nil until read
	views    []*worldView               // the states() filters it matches

	prev, next *worldEntry
}

// worldView is the topics one states() filter of the rule set matches,
// sorted, and its result, built when read after a change.
type worldView struct {
	filter  string
	entries []*worldEntry         // sorted by topic
	result  atomic.Pointer[[]any] // nil after a change
}

func newWorld(max int, c *Counters) *world {
	if max <= 0 {
		max = DefaultMaxRemembered
	}
	w := &world{max: max, entries: map[string]*worldEntry{}, views: map[string]*worldView{},
		evicted: &c.rememberedEvicted, size: &c.remembered}
	w.lru.next, w.lru.prev = &w.lru, &w.lru
	return w
}

// setFilters makes the world remember the topics the filters match, and
// keep the states() views of views ready. Topics no filter covers any more
// are forgotten.
func (w *world) setFilters(filters, views []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ix topic.Index[struct{}]
	for _, f := range filters {
		ix.Add(topic.MustParse(f), struct{}{})
	}
	w.remembered, w.filters = ix, slices.Clone(filters)
	w.on.Store(len(filters) > 0)
	var levels []string
	for t, e := range w.entries {
		levels = topic.Split(t, levels[:0])
		if !ix.Any(levels) {
			w.remove(e)
		}
	}
	w.views = map[string]*worldView{}
	w.viewIndex = topic.Index[*worldView]{}
	for _, f := range views {
		v := &worldView{filter: f}
		w.views[f] = v
		w.viewIndex.Add(topic.MustParse(f), v)
	}
	var vs []*worldView
	for _, e := range w.entries {
		levels = topic.Split(e.topic, levels[:0])
		e.views = w.viewIndex.Match(levels, vs[:0:0])
		for _, v := range e.views {
			v.entries = append(v.entries, e)
		}
	}
	for _, v := range w.views {
		slices.SortFunc(v.entries, func(a, b *worldEntry) int { return strings.Compare(a.topic, b.topic) })
	}
}

// update stores a message on a topic whose levels are given, when the set
// remembers it: an empty retained message deletes the topic (MQTT's way
// of clearing a retained value). It reports whether it stored or deleted.
func (w *world) update(m *Message, levels []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.remembered.Any(levels) {
		return false
	}
	e := w.entries[m.Topic]
	if m.Retained && len(m.Payload) == 0 {
		if e != nil {
			w.remove(e)
			w.markDirty(m.Topic)
		}
		return true
	}
	if e == nil {
		if len(w.entries) >= w.max {
			w.remove(w.lru.prev)
			w.evicted.Add(1)
		}
		e = &worldEntry{topic: m.Topic}
		w.entries[m.Topic] = e
		w.size.Add(1)
		e.views = w.viewIndex.Match(levels, nil)
		for _, v := range e.views {
			i, _ := slices.BinarySearchFunc(v.entries, e.topic, func(x *worldEntry, t string) int { return strings.Compare(x.topic, t) })
			v.entries = slices.Insert(v.entries, i, e)
		}
	} else {
		e.prev.next, e.next.prev = e.next, e.prev
	}
	e.payload, e.time, e.retained = m.Payload, m.Time, m.Retained
	e.value.Store(nil)
	for _, v := range e.views {
		v.result.Store(nil)
	}
	e.next, e.prev = w.lru.next, &w.lru
	w.lru.next.prev = e
	w.lru.next = e
	w.markDirty(m.Topic)
	return true
}

// remove forgets a topic; w.mu is held.
func (w *world) remove(e *worldEntry) {
	if e == &w.lru {
		return
	}
	delete(w.entries, e.topic)
	w.size.Add(-1)
	e.prev.next, e.next.prev = e.next, e.prev
	for _, v := range e.views {
		// The view is sorted by topic: find the entry by binary search.
		if i, ok := slices.BinarySearchFunc(v.entries, e.topic, func(x *worldEntry, t string) int { return strings.Compare(x.topic, t) }); ok {
			v.entries = slices.Delete(v.entries, i, i+1)
		}
		v.result.Store(nil)
	}
	w.markDirty(e.topic)
}

func (w *world) markDirty(t string) {
	if w.dirty != nil {
		w.dirty[t] = true
	}
}

// errNotRemembered is a state() or states() argument no remembered filter
// covers: a condition error that names the topic and the fix.
func errNotRemembered(fn, arg string) error {
	return fmt.Errorf("%s(%q): no remember: filter covers %q, so its messages are not kept; add it to a remember: list (or write the topic as a literal string)", fn, arg, arg)
}

// state returns the latest message on exactly the topic: nil when none
// was received, an error when the set does not remember the topic.
func (w *world) state(t string) (any, error) {
	w.mu.RLock()
	e := w.entries[t]
	if e == nil {
		valid := topic.ValidateName(t)
		covered := valid == nil && w.covers(t)
		w.mu.RUnlock()
		if valid != nil {
			return nil, fmt.Errorf("state(%q): not a topic name: %w", t, valid)
		}
		if !covered {
			return nil, errNotRemembered("state", t)
		}
		return nil, nil
	}
	v := e.value.Load()
	if v == nil {
		v = e.build()
	}
	w.mu.RUnlock()
	return v, nil
}

// StateValue is what state() returns for a remembered topic, and what
// states() lists: the topic's latest message (docs/world.md). Rules read
// its fields by their expr names (state("home/mode").payload).
type StateValue struct {
	Topic    string    `expr:"topic" json:"topic"`
	Payload  any       `expr:"payload" json:"payload"` // decoded as JSON when it is JSON, else the text
	Raw      string    `expr:"raw" json:"raw"`
	Time     time.Time `expr:"time" json:"time"` // when the engine received it
	Retained bool      `expr:"retained" json:"retained"`
}

// Field implements rules.Fielder: conditions read a state() value's
// fields by their expr names without reflection.
func (v *StateValue) Field(name string) (any, bool) {
	switch name {
	case "topic":
		return v.Topic, true
	case "payload":
		return v.Payload, true
	case "raw":
		return v.Raw, true
	case "time":
		return v.Time, true
	case "retained":
		return v.Retained, true
	}
	return nil, false
}

var _ rules.Fielder = (*StateValue)(nil)

// build makes state()'s value for the entry's message, decoding the
// payload once; called with w.mu held (read or write).
func (e *worldEntry) build() *StateValue {
	v := &StateValue{Topic: e.topic, Payload: DecodePayload(e.payload), Raw: rawString(e.payload), Time: e.time, Retained: e.retained}
	if !e.value.CompareAndSwap(nil, v) {
		return e.value.Load() // another reader built it first
	}
	return v
}

// covers reports whether a remembered filter matches the topic; w.mu is
// held.
func (w *world) covers(t string) bool {
	return topic.ValidateName(t) == nil && w.remembered.Any(topic.Split(t, nil))
}

// states returns the latest message of every remembered topic the filter
// matches, sorted by topic; an error when the set does not remember all
// of them.
func (w *world) states(filter string) ([]any, error) {
	w.mu.RLock()
	if v := w.views[filter]; v != nil {
		if r := v.result.Load(); r != nil {
			w.mu.RUnlock()
			return *r, nil
		}
		out := make([]any, len(v.entries))
		for i, e := range v.entries {
			m := e.value.Load()
			if m == nil {
				m = e.build()
			}
			out[i] = m
		}
		v.result.CompareAndSwap(nil, &out)
		w.mu.RUnlock()
		return out, nil
	}
	defer w.mu.RUnlock()
	f, err := topic.Parse(filter)
	if err != nil {
		return nil, fmt.Errorf("states(%q): %w", filter, err)
	}
	covered := false
	for _, r := range w.filters {
		if topic.Covers(r, f.MQTT) {
			covered = true
			break
		}
	}
	if !covered {
		return nil, errNotRemembered("states", filter)
	}
	// A filter the set does not name literally: a scan of every topic.
	var es []*worldEntry
	for t, e := range w.entries {
		if topic.Match(f.MQTT, t) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *worldEntry) int { return strings.Compare(a.topic, b.topic) })
	out := make([]any, len(es))
	for i, e := range es {
		m := e.value.Load()
		if m == nil {
			m = e.build()
		}
		out[i] = m
	}
	return out, nil
}

// RememberedMessage is a remembered topic's latest message, for display
// and persistence.
type RememberedMessage struct {
	Broker   string `json:",omitempty"` // "" for the default one
	Topic    string
	Payload  []byte
	Time     time.Time
	Retained bool `json:",omitempty"`
}

// Key is what a state store files the message under: its topic, after
// its broker's name for another broker than the default.
func (m RememberedMessage) Key() string {
	if m.Broker == "" {
		return m.Topic
	}
	return m.Broker + "\x00" + m.Topic
}

// RememberedTopics returns the remembered messages whose topic the filter
// matches ("#" for all), sorted by topic, at most limit (0: all).
func (e *Engine) RememberedTopics(filter string, limit int) []RememberedMessage {
	var out []RememberedMessage
	for b, w := range e.active.Load().worldsOrDefault(e) {
		w.mu.RLock()
		for t, en := range w.entries {
			if topic.Match(filter, t) {
				out = append(out, RememberedMessage{Broker: b, Topic: t, Payload: en.payload, Time: en.time, Retained: en.retained})
			}
		}
		w.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b RememberedMessage) int {
		if c := strings.Compare(a.Broker, b.Broker); c != 0 {
			return c
		}
		return strings.Compare(a.Topic, b.Topic)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// restore loads saved remembered messages, oldest first, those the active
// set still remembers, and from then on tracks changes for saving.
func (w *world) restore(msgs []RememberedMessage) {
	slices.SortFunc(msgs, func(a, b RememberedMessage) int { return a.Time.Compare(b.Time) })
	var levels, gone []string
	for i := range msgs {
		m := &msgs[i]
		levels = topic.Split(m.Topic, levels[:0])
		if !w.update(&Message{Topic: m.Topic, Payload: m.Payload, Time: m.Time, Retained: m.Retained}, levels) {
			gone = append(gone, m.Topic) // no longer remembered: deleted by the next save
		}
	}
	w.mu.Lock()
	w.dirty = map[string]bool{}
	for _, t := range gone {
		w.dirty[t] = true
	}
	w.mu.Unlock()
}
