package statestore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/statestore"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

type sink struct {
	c   *clock
	mu  sync.Mutex
	got []string
}

func (s *sink) Do(q actions.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf("%ds %s %s", int(s.c.Now().Sub(t0)/time.Second), q.Rule, q.Action.(*actions.Log).Message))
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// instance is one engine process: a store, an engine, a clock.
type instance struct {
	t     *testing.T
	e     *engine.Engine
	c     *clock
	out   *sink
	store *statestore.Store
}

// boot starts an engine at second sec on the state file, restoring it.
func boot(t *testing.T, path, src string, sec int) *instance {
	t.Helper()
	c := &clock{now: t0.Add(time.Duration(sec) * time.Second)}
	out := &sink{c: c}
	store, err := statestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.NewLoader().LoadSources(rules.Source{Name: "r.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Config{Actions: out, Clock: c})
	e.SetRules(rs)
	if _, err := e.Restore(store); err != nil {
		t.Fatal(err)
	}
	return &instance{t: t, e: e, c: c, out: out, store: store}
}

// at moves the clock to sec (firing timers each second) and sends msgs.
func (in *instance) at(sec int, msgs ...string) {
	for now := in.c.Now(); !now.After(t0.Add(time.Duration(sec) * time.Second)); now = now.Add(time.Second) {
		in.c.set(now)
		in.e.Advance(now)
	}
	in.c.set(t0.Add(time.Duration(sec) * time.Second))
	for _, m := range msgs {
		topic, payload, _ := strings.Cut(m, "=")
		in.e.Handle(engine.Message{Topic: topic, Payload: []byte(payload), Time: in.c.Now()})
	}
}

// crash saves what a periodic save would have saved, then drops the engine
// without a final save, as kill -9 after the last save does.
func (in *instance) crash(saveFirst bool) {
	if saveFirst {
		in.e.SaveState(in.store)
	}
	in.store.Close()
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

const rule = `
rules:
  - name: r
    topic: "#"
    when: payload > 30
    %s
    actions: [{log: "fire {{ topic }} {{ payload }}{{ prev?.payload }}"}]
`

func TestPendingForResumesWithRemainingTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "for: 10s")
	a := boot(t, path, src, 0)
	a.at(0, "t=31")
	a.at(4)
	a.crash(true)
	// Down for 96 s: the for had 6 s left and resumes with them.
	b := boot(t, path, src, 100)
	b.at(105)
	expect(t, b.out.take())
	b.at(107)
	expect(t, b.out.take(), "106s r fire t 31")
}

func TestChangesAfterTheLastSaveAreLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "for: 10s")
	a := boot(t, path, src, 0)
	a.at(0, "t=31")
	a.crash(false) // killed before the first save
	b := boot(t, path, src, 1)
	b.at(20)
	expect(t, b.out.take())
}

func TestCooldownSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "cooldown: 60s")
	a := boot(t, path, src, 0)
	a.at(0, "t=31")
	expect(t, a.out.take(), "0s r fire t 31")
	a.crash(true)
	b := boot(t, path, src, 30)
	b.at(31, "t=32")
	b.at(60, "t=33")
	expect(t, b.out.take(), "60s r fire t 3332") // prev: the message at 31 s
}

func TestFiringEpisodeSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, `on_clear: [{log: "clear {{ payload }}"}]`)
	a := boot(t, path, src, 0)
	a.at(0, "t=31")
	a.crash(true)
	b := boot(t, path, src, 10)
	b.at(11, "t=35", "t=20", "t=31")
	expect(t, append(a.out.take(), b.out.take()...), "0s r fire t 31", "11s r clear 20", "11s r fire t 3120")
}

func TestAbsenceTimerAndPrevSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "absent: 10s")
	a := boot(t, path, src, 0)
	a.at(0, "t=31")
	a.at(3, "t=32")
	a.crash(true)
	b := boot(t, path, src, 50)
	b.at(60)
	// 10 s left when saved at 3 s... minus nothing: the heartbeat at 3 s set
	// the deadline to 13 s, so 10 s were left at the save.
	expect(t, b.out.take(), "60s r fire t 3231")
}

func TestChangedRuleStartsAfresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a := boot(t, path, fmt.Sprintf(rule, "for: 10s"), 0)
	a.at(0, "t=31")
	a.crash(true)
	b := boot(t, path, fmt.Sprintf(rule, "for: 20s"), 1)
	b.at(40)
	expect(t, b.out.take())
	b.crash(true)
	recs := mustLoad(t, path)
	if len(recs) != 0 {
		t.Errorf("%d records of the changed rule left in the file", len(recs))
	}
}

func mustLoad(t *testing.T, path string) []engine.KeyRecord {
	t.Helper()
	s, err := statestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, _, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := statestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := statestore.Open(path); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open = %v, want an in-use error", err)
	}
}

// atSaving is at with the once-a-second save Persist makes in production.
func (in *instance) atSaving(sec int, msgs ...string) {
	for s := int(in.c.Now().Sub(t0) / time.Second); s <= sec; s++ {
		in.at(s)
		in.e.SaveState(in.store)
	}
	in.at(sec, msgs...)
	in.e.SaveState(in.store)
}

// TestRemainingTimeCountsUptimeOfUnchangedKeys: a key saved once and then
// unchanged still had its timer running while the engine ran; a restart
// resumes it with the time left at the engine's last save, not at the
// key's.
func TestRemainingTimeCountsUptimeOfUnchangedKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "for: 10s")
	a := boot(t, path, src, 0)
	a.atSaving(0, "t=31")
	a.atSaving(9)
	a.crash(false)
	b := boot(t, path, src, 9) // restarted at once: 1 s of the for is left
	b.at(11)
	expect(t, b.out.take(), "10s r fire t 31")
}

// TestAbsentFiresAcrossFrequentRestarts: restarts more often than the
// absence period do not postpone the alert for ever.
func TestAbsentFiresAcrossFrequentRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	src := fmt.Sprintf(rule, "absent: 10s")
	a := boot(t, path, src, 0)
	a.atSaving(0, "t=31")
	a.crash(false)
	var got []string
	for start := 0; start < 40; start += 8 { // a restart every 8 s, no downtime
		b := boot(t, path, src, start)
		b.atSaving(start + 8)
		got = append(got, b.out.take()...)
		b.crash(false)
	}
	expect(t, got, "10s r fire t 31")
}

// TestDamagedFileIsMovedAside: a state file whose pages are damaged (bbolt
// panics on some) or that is not a database at all is renamed aside and a
// new one started, with an error the caller logs — not a crash loop.
func TestDamagedFileIsMovedAside(t *testing.T) {
	damage := map[string]func(t *testing.T, path string){
		"pages": func(t *testing.T, path string) {
			s, err := statestore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			var put []engine.KeyRecord
			for i := range 2000 {
				put = append(put, engine.KeyRecord{KeyRef: engine.KeyRef{Rule: "r", Key: fmt.Sprint("key", i)}, Fingerprint: "x"})
			}
			if err := s.Save(put, nil, t0); err != nil {
				t.Fatal(err)
			}
			s.Close()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for off := 2 * 4096; off+64 < len(data); off += 4096 {
				for j := range 16 {
					data[off+j] ^= 0x5a
				}
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"text": func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("hello, this is not a database\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range damage {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			damage(t, path)
			// (Not Open first: a bbolt panic inside its Open leaves the
			// file locked by this process until it exits.)
			s, moved, err := statestore.OpenOrMoveAside(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := os.Stat(moved); moved == "" || err != nil {
				t.Errorf("damaged file moved to %q: %v", moved, err)
			}
			if recs, _, err := s.Load(); err != nil || len(recs) != 0 {
				t.Errorf("new state file: %d records, %v; want 0, nil", len(recs), err)
			}
		})
	}
}
