package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// A message stamped after a key's deadline, handled before Run got to the
// timer (a real-clock race), does not decide the outcome: the timer fires
// first.
func TestDueTimerFiresBeforeALaterMessage(t *testing.T) {
	t.Run("for", func(t *testing.T) {
		h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    for: 10s
    actions: [{log: "fire {{ topic }} {{ payload }}"}]
`)
		h.e.Handle(Message{Topic: "t", Payload: []byte("31"), Time: sec(0)})
		h.clock.set(sec(11))
		h.e.Handle(Message{Topic: "t", Payload: []byte("29"), Time: sec(10.5)}) // true for 10.5 s of a 10 s for
		h.e.Advance(sec(11))
		expectLines(t, h.tl.take(), "11s r log fire t 31") // fired once, as the message at 10.5 s was handled (clock at 11 s)
	})
	t.Run("absent", func(t *testing.T) {
		h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    absent: 10s
    actions: [{log: "fire {{ topic }} {{ payload }}"}]
`)
		h.e.Handle(Message{Topic: "t", Payload: []byte("1"), Time: sec(0)})
		h.clock.set(sec(12))
		h.e.Handle(Message{Topic: "t", Payload: []byte("2"), Time: sec(11)}) // 11 s of silence on a 10 s absent
		h.e.Advance(sec(12))
		expectLines(t, h.tl.take(), "12s r log fire t 1")
	})
}

// A rule disabled by a reload keeps no state, so its timers do not fire.
func TestDisabledRuleDropsItsTimers(t *testing.T) {
	src := `
rules:
  - name: r
    topic: "#"
    absent: 10s
    enabled: %v
    actions: [{log: "fire {{ topic }}"}]
`
	h := newHarness(t, fmt.Sprintf(src, true))
	h.run("0 t=1")
	h.load(fmt.Sprintf(src, false))
	if got := h.run("30"); len(got) != 0 {
		t.Errorf("disabled rule fired: %q", got)
	}
}

// absent + cooldown: a silence whose deadline falls in the cooldown is
// reported when the cooldown ends, not never.
func TestAbsentDuringCooldownFiresWhenItEnds(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: r
    topic: "#"
    absent: 10s
    cooldown: 60s
    actions: [{log: "fire {{ topic }}"}]
`)
	got := h.run("0 t=1", "15 t=2", "100")
	expectLines(t, got, "10s r log fire t", "70s r log fire t")
}

// Messages that are false for keys the rule does not know create no key,
// so they cannot evict a key that holds an episode.
func TestFalseMessagesDoNotEvictStatefulKeys(t *testing.T) {
	h := newHarnessWith(t, Config{MaxKeys: 2}, `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    on_clear: [{log: "clear {{ topic }}"}]
    actions: [{log: "fire {{ topic }}"}]
`)
	got := h.run("0 hot=31", "1 a=1", "2 b=1", "3 hot=1")
	expectLines(t, got, "0s r log fire hot", "3s r log clear hot")
}

type failingStore struct {
	fail   bool
	during func()
	recs   map[KeyRef]KeyRecord
}

func (s *failingStore) Load() ([]KeyRecord, time.Time, error)         { return nil, time.Time{}, nil }
func (s *failingStore) LoadWorld() ([]RememberedMessage, error)       { return nil, nil }
func (s *failingStore) SaveWorld([]RememberedMessage, []string) error { return nil }
func (s *failingStore) LoadMeta(string) ([]byte, error)               { return nil, nil }
func (s *failingStore) SaveMeta(string, []byte) error                 { return nil }
func (s *failingStore) Save(put []KeyRecord, del []KeyRef, _ time.Time) error {
	if f := s.during; f != nil {
		s.during = nil
		f()
	}
	if s.fail {
		return errors.New("disk full")
	}
	for _, d := range del {
		delete(s.recs, d)
	}
	for _, p := range put {
		s.recs[p.KeyRef] = p
	}
	return nil
}

// A save that fails while a key is evicted does not bring the key back on
// the retry.
func TestFailedSaveDoesNotResurrectEvictedKey(t *testing.T) {
	h := newHarnessWith(t, Config{MaxKeys: 1}, `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    for: 10s
    actions: [{log: "fire {{ topic }}"}]
`)
	e := h.e
	st := &failingStore{recs: map[KeyRef]KeyRecord{}}
	if _, err := e.Restore(st); err != nil {
		t.Fatal(err)
	}
	h.run("0 a=31")
	st.fail = true
	st.during = func() { h.run("1 b=31") } // evicts a while the save runs
	e.SaveState(st)
	st.fail = false
	e.SaveState(st)
	if _, ok := st.recs[KeyRef{Rule: "r", Key: "a"}]; ok {
		t.Error("the evicted key a is in the store: it would come back pending after a restart")
	}
	if _, ok := st.recs[KeyRef{Rule: "r", Key: "b"}]; !ok {
		t.Error("key b is not in the store")
	}
}

func expectLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
